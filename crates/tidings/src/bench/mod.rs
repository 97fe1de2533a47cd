//! `tidings bench`: load generators that drive any server over the standard protocols, so that
//! the same load can be run against tidings and against another server (`bench/` in the
//! repository runs them side by side with Postfix, Dovecot, ngircd and InspIRCd).
//!
//! - `bench smtp`: N concurrent SMTP sessions; closed loop (each waits for 250 before its next
//!   message) or open loop (`--rate`: a fixed offered rate, latency measured from each message's
//!   intended send time); message sizes fixed or drawn from a directory of messages; reports
//!   accepted (durable: the server said 250 to DATA) messages per second and latency percentiles.
//! - `bench fill`: APPENDs messages to mailboxes over IMAP (to give `fetch` and `pop3` something
//!   to read).
//! - `bench fetch`: IMAP: whole-mailbox `UID FETCH 1:* (BODY.PEEK[])` throughput, logins per
//!   second, or a SELECT+FETCH+STORE mix.
//! - `bench pop3`: POP3 RETR throughput or logins per second.
//! - `bench irc`: C IRC connections over R channels, each member sending at a fixed rate with a
//!   timestamp in the text; reports deliveries per second and end-to-end latency.
//! - `bench ws`: the same fan-out over tidings' WebSocket chat API (`/ws`): C sockets logged in
//!   with bearer tokens of the HTTP API, over R rooms.
//! - `bench fanout`: N line-protocol members in one room, one more member posting M lines; reports
//!   deliveries per second and delivery latency, and with `--pid` the server's memory per member.
//! - `bench idle`: opens N connections that say nothing and reports the server's resident memory
//!   per connection (read from `/proc/<pid>/status`).
//!
//! Every load prints one report: a line of text, or with `--json` one JSON object whose fields
//! are `load`, the load's parameters, `operations`, `seconds`, `per_sec` and, where measured,
//! `latency_ms` (`count`, `p50`, `p90`, `p99`, `p999`, `max`, in milliseconds). Latencies are kept
//! in an HdrHistogram of microseconds (3 significant digits, 1 µs to 1 h).

mod fanout;
mod imap;
mod irc;
mod line;
mod pop3;
mod smtp;
mod ws;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A load to generate.
#[derive(Subcommand)]
pub enum Load {
    /// Concurrent SMTP senders: closed loop (each waits for 250 before its next message) or, with
    /// --rate, open loop.
    Smtp(smtp::SmtpArgs),
    /// APPEND messages to each user's mailbox over IMAP (fills mailboxes for fetch and pop3).
    Fill(imap::FillArgs),
    /// IMAP: FETCH BODY[] throughput, logins per second, or a SELECT+FETCH+STORE mix.
    Fetch(imap::FetchArgs),
    /// POP3: RETR throughput or logins per second.
    Pop3(pop3::Pop3Args),
    /// IRC fan-out: C connections over R channels, each member sending PRIVMSGs at a fixed rate;
    /// deliveries per second and end-to-end latency. Works against any IRC server whose flood
    /// limits allow the rate.
    Irc(irc::IrcArgs),
    /// WebSocket chat fan-out (tidings' `/ws` API): C sockets over R rooms, each member sending at
    /// a fixed rate; deliveries per second (a member gets its own messages too) and end-to-end
    /// latency. Each --user signs in once over the HTTP API and its sockets log in with the token
    /// (one account may hold any number of sockets). The server's default request limit,
    /// `[web] flood_requests_per_sec = 10` a socket (bursts of 20), allows rates up to 10 msg/s;
    /// for more, raise it or set it to 0 (off).
    Ws(ws::WsArgs),
    /// Chat fan-out over the line protocol: `members` connections join one group, then a sender
    /// posts `messages` lines; every member must receive every line. The server's line-protocol
    /// flood limit must be off (`[line] flood_lines_per_sec = 0`) for the sender.
    Fanout(line::FanoutArgs),
    /// Idle connections and the server's memory for them.
    Idle(line::IdleArgs),
}

/// Runs a load and prints its report (text, or one JSON object with `json`).
///
/// # Errors
/// When the arguments are out of range, or the server cannot be reached or answers unexpectedly.
pub fn run(load: Load, json: bool) -> anyhow::Result<()> {
    // Every connection the load opens is a descriptor: take all the hard limit allows.
    if let Err(e) = crate::raise_open_files_limit() {
        eprintln!("tidings: cannot raise the open files limit: {e}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        match load {
            Load::Smtp(args) => smtp::run(args).await,
            Load::Fill(args) => imap::fill(args).await,
            Load::Fetch(args) => imap::fetch(args).await,
            Load::Pop3(args) => pop3::run(args).await,
            Load::Irc(args) => irc::run(args).await,
            Load::Ws(args) => ws::run(args).await,
            Load::Fanout(args) => line::fanout(args).await,
            Load::Idle(args) => line::idle(args).await,
        }
    })?;
    if json {
        println!("{}", report.json);
    } else {
        println!("{}", report.text);
    }
    Ok(())
}

/// What a load measured: the text line and the JSON object (see the module documentation).
pub(crate) struct Report {
    text: String,
    json: Value,
}

impl Report {
    /// A report of `operations` done in `seconds`, with the load's own fields in `fields` (a JSON
    /// object) and its latencies, if measured.
    fn new(text: String, mut fields: Value, operations: u64, seconds: f64, latency: Option<&Latencies>) -> Report {
        let object = fields.as_object_mut().expect("report fields are an object");
        object.insert("operations".into(), json!(operations));
        object.insert("seconds".into(), json!(round3(seconds)));
        object.insert("per_sec".into(), json!(round3(operations as f64 / seconds.max(1e-9))));
        if let Some(latency) = latency {
            object.insert("latency_ms".into(), latency.json());
        }
        Report { text, json: fields }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Latencies of one load: an HdrHistogram of microseconds, 1 µs to 1 h, 3 significant digits
/// (values past an hour count as an hour).
pub(crate) struct Latencies(Histogram<u64>);

impl Latencies {
    fn new() -> Latencies {
        Latencies(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }

    fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    fn record_micros(&mut self, micros: u64) {
        self.0.saturating_record(micros.max(1));
    }

    fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0 to 1), milliseconds; 0 when nothing was recorded.
    fn ms(&self, q: f64) -> f64 {
        if self.0.is_empty() { 0.0 } else { self.0.value_at_quantile(q) as f64 / 1000.0 }
    }

    fn max_ms(&self) -> f64 {
        if self.0.is_empty() { 0.0 } else { self.0.max() as f64 / 1000.0 }
    }

    /// `p50 … p90 … p99 … max …` in milliseconds with `precision` decimals.
    fn text(&self, precision: usize) -> String {
        format!(
            "p50 {:.p$} p90 {:.p$} p99 {:.p$} max {:.p$}",
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.max_ms(),
            p = precision
        )
    }

    fn json(&self) -> Value {
        json!({
            "count": self.count(),
            "p50": self.ms(0.5),
            "p90": self.ms(0.9),
            "p99": self.ms(0.99),
            "p999": self.ms(0.999),
            "max": self.max_ms(),
        })
    }
}

/// How long a closed-loop load runs: a number of rounds per session, or a duration.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    Rounds(usize),
    Deadline(tokio::time::Instant),
}

impl Until {
    fn new(rounds: usize, duration_secs: Option<f64>) -> anyhow::Result<Until> {
        match duration_secs {
            Some(secs) if secs > 0.0 && secs.is_finite() => {
                Ok(Until::Deadline(tokio::time::Instant::now() + Duration::from_secs_f64(secs)))
            }
            Some(_) => bail!("--duration must be a positive number of seconds"),
            None if rounds == 0 => bail!("the number of rounds or messages must be at least 1"),
            None => Ok(Until::Rounds(rounds)),
        }
    }

    /// Whether a session that has done `done` rounds goes on.
    fn more(&self, done: usize) -> bool {
        match self {
            Until::Rounds(n) => done < *n,
            Until::Deadline(at) => tokio::time::Instant::now() < *at,
        }
    }
}

/// Which of the protocols' loads a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Read messages (IMAP FETCH BODY.PEEK[] of the whole mailbox; POP3 RETR of every message).
    Read,
    /// Connect, log in, log out, again and again.
    Login,
    /// IMAP only: SELECT, then per message FETCH BODY.PEEK[] and STORE +FLAGS/-FLAGS.
    Mix,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Read => "read",
            Mode::Login => "login",
            Mode::Mix => "mix",
        }
    }
}

/// Connects to `server`, from loopback source address 127.0.0.(1 + `index` mod `sources`) when
/// `sources` > 1 and the server is on IPv4 loopback (spreading many connections over several
/// source addresses passes the 64 Ki ephemeral ports of one, and per-address connection limits).
async fn connect(server: SocketAddr, index: usize, sources: u8) -> anyhow::Result<TcpStream> {
    let stream = match server.ip() {
        IpAddr::V4(ip) if sources > 1 && ip.is_loopback() => {
            let socket = TcpSocket::new_v4()?;
            let last = 1 + (index % usize::from(sources)) as u8;
            socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0))?;
            socket.connect(server).await
        }
        _ => TcpStream::connect(server).await,
    };
    let stream = stream.with_context(|| format!("cannot connect to {server}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads one line within `secs` seconds; `Ok(false)` at end of stream.
async fn read_line_within<R: AsyncBufReadExt + Unpin>(
    read: &mut R,
    line: &mut String,
    secs: u64,
) -> anyhow::Result<bool> {
    line.clear();
    match tokio::time::timeout(Duration::from_secs(secs), read.read_line(line)).await {
        Ok(n) => Ok(n? > 0),
        Err(_) => bail!("no answer from the server within {secs} s"),
    }
}

/// A message of exactly `size` octets (51, the header alone, or more than 52), every line ending in CRLF: a few
/// header fields, then lines of up to 78 octets.
fn message_body(size: usize) -> Vec<u8> {
    const LINE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd";
    let mut m = b"From: bench@example.org\r\nSubject: tidings bench\r\n\r\n".to_vec();
    while m.len() < size {
        // Each line takes what is left, up to 78 octets, but never leaves a single octet over
        // (a line needs at least its CRLF).
        let left = size - m.len();
        let take = if left <= LINE.len() + 2 {
            left
        } else if left == LINE.len() + 3 {
            40
        } else {
            LINE.len() + 2
        };
        let take = take.max(2);
        m.extend_from_slice(&LINE[..take - 2]);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// The sizes of the regular files under `dir` (recursively; `README*` files left out), in a fixed
/// order. At most 100,000 files.
fn corpus_sizes(dir: &Path) -> anyhow::Result<Vec<usize>> {
    const FILES_MAX: usize = 100_000;
    let mut sizes = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> =
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let kind = e.file_type()?;
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() && !e.file_name().to_string_lossy().starts_with("README") {
                sizes.push(usize::try_from(e.metadata()?.len())?);
                if sizes.len() >= FILES_MAX {
                    return Ok(sizes);
                }
            }
        }
    }
    if sizes.is_empty() {
        bail!("no files under {}", dir.display());
    }
    Ok(sizes)
}

/// Lets the server finish the work the connections caused and its allocator return what that work
/// freed, so the resident size read next is what the connections hold.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// The resident size of process `pid`, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("no process {pid}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn bench_messages_have_the_exact_size_and_only_crlf_line_ends() {
        for size in [0, 60, 128, 204, 1000, 10_240, 10_241, 65_536] {
            let m = super::message_body(size);
            assert_eq!(m.len(), size.max(51), "size {size}");
            let unix = m.windows(2).filter(|w| w[1] == b'\n' && w[0] != b'\r').count();
            let mac = m.windows(2).filter(|w| w[0] == b'\r' && w[1] != b'\n').count();
            assert_eq!((unix, mac), (0, 0), "size {size}");
            assert!(m.ends_with(b"\r\n"));
        }
    }

    #[test]
    fn latencies_report_percentiles_in_milliseconds() {
        let mut a = super::Latencies::new();
        let mut b = super::Latencies::new();
        for ms in 1..=50 {
            a.record(Duration::from_millis(ms));
        }
        for ms in 51..=100 {
            b.record(Duration::from_millis(ms));
        }
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert!((a.ms(0.5) - 50.0).abs() < 0.1, "{}", a.ms(0.5));
        assert!((a.ms(0.99) - 99.0).abs() < 0.1, "{}", a.ms(0.99));
        assert!((a.max_ms() - 100.0).abs() < 0.1);
        assert_eq!(super::Latencies::new().ms(0.5), 0.0);
        let json = a.json();
        assert_eq!(json["count"], 100);
    }

    #[test]
    fn corpus_sizes_skip_readmes_and_find_every_message() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/mail");
        let sizes = super::corpus_sizes(&dir).unwrap();
        assert!(sizes.len() > 10, "{}", sizes.len());
        assert!(sizes.iter().all(|&s| s > 0));
    }
}

/// The sessions' side of a start gate: each session says it is ready (connected, logged in), then
/// waits for the common start instant, so that setting up connections is not in the measurement.
#[derive(Clone)]
pub(crate) struct Gate {
    ready: tokio::sync::mpsc::UnboundedSender<Result<(), String>>,
    start: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
}

/// The load's side of a start gate.
pub(crate) struct GateOpener {
    sessions: usize,
    ready: tokio::sync::mpsc::UnboundedReceiver<Result<(), String>>,
    start: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
}

/// A gate for `sessions` sessions.
pub(crate) fn gate(sessions: usize) -> (GateOpener, Gate) {
    let (ready_tx, ready) = tokio::sync::mpsc::unbounded_channel();
    let (start, start_rx) = tokio::sync::watch::channel(None);
    (GateOpener { sessions, ready, start }, Gate { ready: ready_tx, start: start_rx })
}

impl Gate {
    /// Reports this session ready (or failed) and waits for the start; `None` when the load gave
    /// up (another session failed).
    async fn pass(&mut self, setup: &anyhow::Result<()>) -> Option<tokio::time::Instant> {
        let _ = self.ready.send(setup.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
        setup.as_ref().ok()?;
        let start = self.start.wait_for(Option::is_some).await.ok()?;
        *start
    }
}

impl GateOpener {
    /// Waits until every session is ready, then starts them all at once.
    ///
    /// # Errors
    /// The first session's setup failure.
    async fn open(&mut self) -> anyhow::Result<tokio::time::Instant> {
        self.wait_ready().await?;
        Ok(self.start())
    }

    /// Waits until every session is ready.
    ///
    /// # Errors
    /// The first session's setup failure.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        for _ in 0..self.sessions {
            match self.ready.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => bail!("{e}"),
                None => bail!("a session ended before it was ready"),
            }
        }
        Ok(())
    }

    /// Starts every session now.
    fn start(&self) -> tokio::time::Instant {
        let start = tokio::time::Instant::now();
        let _ = self.start.send(Some(start));
        start
    }
}
