//! `bench irc`: IRC fan-out (RFC 1459 / RFC 2812 client commands only, so it drives any server).
//!
//! C connections register (NICK, USER), connection i joins channel `#bench{i mod R}`, then every
//! member sends PRIVMSGs to its channel at a fixed rate for the duration (open loop: on schedule,
//! the schedules of the members spread evenly over one interval). Each message's text is
//! `bench <µs> <seq>`, the intended send time in microseconds since the load began, so every
//! receiver measures the end-to-end latency from when the message was due. A message to a
//! channel of m members makes m − 1 deliveries (servers do not echo a PRIVMSG to its sender).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use super::fanout::{self, Outcome, Plan, Shared};
use super::{Gate, Latencies, Report, connect, gate, rss_kib};

/// Seconds to wait for any one reply while registering and joining.
const SETUP_TIMEOUT_SECS: u64 = 60;

/// `bench irc` arguments.
#[derive(clap::Args)]
pub struct IrcArgs {
    /// IRC server address (cleartext).
    #[arg(long, default_value = "127.0.0.1:6667")]
    server: SocketAddr,
    /// Connections (channel members) in all.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Channels the connections are spread over (round robin).
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Messages per second each member sends (0: members only listen, and nothing is measured
    /// but the registration and, with --pid, the memory).
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Octets of filler appended to each message's text.
    #[arg(long, default_value_t = 0)]
    padding: usize,
    /// Registrations in progress at once.
    #[arg(long, default_value_t = 50)]
    parallel_registrations: usize,
    /// The server's process id: report its VmRSS per connection once every member has joined.
    #[arg(long)]
    pid: Option<u32>,
    /// Spread the connections over this many loopback source addresses (127.0.0.1 up).
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Nickname prefix (nicknames are the prefix and the connection's number).
    #[arg(long, default_value = "b")]
    nick_prefix: String,
}

pub(super) async fn run(args: IrcArgs) -> anyhow::Result<Report> {
    let plan = Plan {
        load: "irc",
        server: args.server,
        connections: args.connections,
        rooms: args.rooms,
        rate: args.rate,
        duration_secs: args.duration,
        pid: args.pid,
        sender_copy: false,
    };
    plan.check()?;
    let shared = Shared::new(args.rooms);
    let before = args.pid.map(rss_kib).transpose()?;
    let registering = Arc::new(tokio::sync::Semaphore::new(args.parallel_registrations.max(1)));
    let (opener, gate) = gate(args.connections);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let setup_started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let session = Session {
            shared: Arc::clone(&shared),
            server: args.server,
            sources: args.sources,
            index: i,
            nick: format!("{}{i}", args.nick_prefix),
            room: i % args.rooms,
            offset: plan.offset(i),
            interval: plan.interval(),
            duration: plan.duration(),
            padding: "x".repeat(args.padding),
        };
        let (gate, stop, registering) = (gate.clone(), stop.clone(), Arc::clone(&registering));
        tasks.push(tokio::spawn(session.run(gate, stop, registering)));
    }
    drop(gate);
    let m = fanout::measure(&plan, &shared, opener, tasks, stop_tx, before, setup_started).await?;
    let members = args.connections / args.rooms;
    let headline = format!(
        "irc: {} connections registered and joined {} channels (~{members} members each) in {:.2} s; each sent {}/s for {:.1} s: {} messages, {} deliveries of {} ({} missing) in {:.2} s: {:.0} deliveries/s; latency ms {}",
        args.connections,
        args.rooms,
        m.setup_secs,
        args.rate,
        args.duration,
        m.sent,
        m.delivered,
        m.expected,
        m.missing(),
        m.secs,
        m.delivered as f64 / m.secs,
        m.latencies.text(2),
    );
    Ok(m.report(&plan, headline))
}

/// One member.
struct Session {
    shared: Arc<Shared>,
    server: SocketAddr,
    sources: u8,
    /// The connection's number.
    index: usize,
    nick: String,
    room: usize,
    offset: Duration,
    interval: Option<Duration>,
    duration: Duration,
    padding: String,
}

impl Session {
    async fn run(
        self,
        mut gate: Gate,
        mut stop: tokio::sync::watch::Receiver<bool>,
        registering: Arc<tokio::sync::Semaphore>,
    ) -> anyhow::Result<Outcome> {
        let setup = async {
            let _permit = registering.acquire().await?;
            self.register().await
        }
        .await;
        let setup_ok = setup.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e:#}"));
        let Some(start) = gate.pass(&setup_ok).await else {
            return Ok((0, 0, Latencies::new()));
        };
        let (mut read, mut write) = setup?;
        let channel = format!("#bench{}", self.room);
        let end = start + self.duration;
        let mut next = self.interval.map(|_| start + self.offset).filter(|&t| t < end);
        let mut latencies = Latencies::new();
        let (mut sent, mut delivered) = (0u64, 0u64);
        let mut line = Vec::with_capacity(512);
        let far = start + Duration::from_secs(365 * 24 * 3600);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                // read_until is cancel safe: a partial line stays in `line` for the next call.
                n = read.read_until(b'\n', &mut line) => {
                    if n? == 0 {
                        bail!("{}: the server closed the connection", self.nick);
                    }
                    if let Some(t) = self.handle(&line, &mut write).await? {
                        let now = self.micros_now();
                        latencies.record_micros(now.saturating_sub(t));
                        delivered += 1;
                        self.shared.delivered.fetch_add(1, Ordering::AcqRel);
                        self.shared.last_delivery_micros.fetch_max(now, Ordering::AcqRel);
                    }
                    line.clear();
                }
                _ = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => {
                    let due = next.expect("guarded");
                    let stamp = due.duration_since(self.shared.epoch).as_micros();
                    let message = format!("PRIVMSG {channel} :bench {stamp} {sent}{}\r\n", self.padding);
                    write.write_all(message.as_bytes()).await?;
                    self.shared.sent[self.room].fetch_add(1, Ordering::AcqRel);
                    sent += 1;
                    next = self.interval.map(|d| due + d).filter(|&t| t < end);
                    if next.is_none() {
                        self.shared.senders_done.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
        }
        let _ = write.write_all(b"QUIT :bench done\r\n").await;
        Ok((sent, delivered, latencies))
    }

    fn micros_now(&self) -> u64 {
        self.shared.micros_now()
    }

    /// Connects, registers, joins the member's channel; returns the connection once the server
    /// has sent the channel's end of NAMES (366).
    async fn register(&self) -> anyhow::Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf)> {
        let stream = connect(self.server, self.index, self.sources).await?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let nick = &self.nick;
        write.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :tidings bench\r\n").as_bytes()).await?;
        self.wait_for(&mut read, &mut write, "001").await.with_context(|| format!("{nick}: registering"))?;
        write.write_all(format!("JOIN #bench{}\r\n", self.room).as_bytes()).await?;
        self.wait_for(&mut read, &mut write, "366").await.with_context(|| format!("{nick}: joining"))?;
        // A member with nothing to send (rate 0) is done sending from the start.
        if self.interval.is_none() || self.offset >= self.duration {
            self.shared.senders_done.fetch_add(1, Ordering::AcqRel);
        }
        Ok((read, write))
    }

    /// Reads lines (answering PINGs) until a numeric reply `code`.
    async fn wait_for(
        &self,
        read: &mut BufReader<OwnedReadHalf>,
        write: &mut OwnedWriteHalf,
        code: &str,
    ) -> anyhow::Result<()> {
        let mut line = Vec::with_capacity(512);
        loop {
            line.clear();
            let n = tokio::time::timeout(Duration::from_secs(SETUP_TIMEOUT_SECS), read.read_until(b'\n', &mut line))
                .await
                .with_context(|| format!("no {code} within {SETUP_TIMEOUT_SECS} s"))??;
            if n == 0 {
                bail!("the server closed the connection");
            }
            let text = String::from_utf8_lossy(&line);
            let mut words = text.split_whitespace();
            let first = words.next().unwrap_or("");
            let command = if first.starts_with(':') { words.next().unwrap_or("") } else { first };
            match command {
                c if c == code => return Ok(()),
                // Nickname in use or erroneous, banned, registration refused, channel refused.
                "432" | "433" | "436" | "465" | "471" | "473" | "474" | "475" | "477" | "ERROR" => {
                    bail!("{}", text.trim_end())
                }
                _ => {
                    self.handle(&line, write).await?;
                }
            }
        }
    }

    /// Answers a PING; returns the timestamp of a bench PRIVMSG; fails on ERROR (the server is
    /// closing the link, e.g. for flooding).
    async fn handle(&self, line: &[u8], write: &mut OwnedWriteHalf) -> anyhow::Result<Option<u64>> {
        if let Some(t) = bench_stamp(line) {
            return Ok(Some(t));
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        let rest = match text.strip_prefix(':') {
            Some(r) => r.split_once(' ').map_or("", |(_, r)| r),
            None => text,
        };
        if let Some(token) = rest.strip_prefix("PING") {
            write.write_all(format!("PONG{token}\r\n").as_bytes()).await?;
        } else if rest.starts_with("ERROR") {
            bail!("{}: {text}", self.nick);
        }
        Ok(None)
    }
}

/// The `<µs>` of a `… PRIVMSG <target> :bench <µs> <seq>` line.
fn bench_stamp(line: &[u8]) -> Option<u64> {
    let at = memfind(line, b" PRIVMSG ")?;
    let rest = &line[at + 9..];
    let text = &rest[memfind(rest, b" :bench ")? + 8..];
    let end = text.iter().position(|c| !c.is_ascii_digit())?;
    std::str::from_utf8(&text[..end]).ok()?.parse().ok()
}

fn memfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_stamps_parse_from_privmsgs_only() {
        assert_eq!(super::bench_stamp(b":b1!b1@127.0.0.1 PRIVMSG #bench0 :bench 12345 7\r\n"), Some(12345));
        assert_eq!(super::bench_stamp(b":b1!~b1@localhost PRIVMSG #bench0 :bench 99 0xxxx\r\n"), Some(99));
        assert_eq!(super::bench_stamp(b":b1!b1@h NOTICE #bench0 :bench 12345 7\r\n"), None);
        assert_eq!(super::bench_stamp(b":b1!b1@h PRIVMSG #bench0 :hello\r\n"), None);
    }
}
