//! `bench fill` and `bench fetch`: IMAP loads.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{Latencies, Mode, Report, Until, connect, message_body};

/// Where and as whom the IMAP loads log in.
#[derive(clap::Args, Clone)]
pub struct ImapTarget {
    /// IMAP server address (cleartext; loopback).
    #[arg(long, default_value = "127.0.0.1:1143")]
    server: SocketAddr,
    /// Login name; give it several times to spread sessions over them (round robin).
    #[arg(long, default_values_t = ["ta@mmsys.upenn.edu".to_string()])]
    user: Vec<String>,
    /// Password (the same for every user).
    #[arg(long, default_value = "CIS505")]
    password: String,
    /// Mailbox to work on.
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
}

/// `bench fill` arguments.
#[derive(clap::Args)]
pub struct FillArgs {
    #[command(flatten)]
    target: ImapTarget,
    /// Messages to APPEND to each user's mailbox.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Message size, octets.
    #[arg(long, default_value_t = 10 * 1024)]
    size: usize,
}

/// `bench fetch` arguments.
#[derive(clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    target: ImapTarget,
    /// What each session does: `read` fetches BODY.PEEK[] of every message of the mailbox per
    /// round (latency per round); `login` connects, logs in and out per round; `mix` SELECTs the
    /// mailbox, then per round FETCHes one message's BODY.PEEK[] and STOREs a flag on it (latency
    /// per command).
    #[arg(long, value_enum, default_value = "read")]
    mode: Mode,
    /// First APPEND this many messages of `--size` octets to the first user's mailbox.
    #[arg(long, default_value_t = 0)]
    fill: usize,
    /// Message size for `--fill`, in octets.
    #[arg(long, default_value_t = 10 * 1024)]
    size: usize,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Rounds per session.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Run for this many seconds instead of a number of rounds.
    #[arg(long)]
    duration: Option<f64>,
}

pub(super) async fn fill(args: FillArgs) -> anyhow::Result<Report> {
    let body = message_body(args.size);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for user in &args.target.user {
        let (target, user, body, n) = (args.target.clone(), user.clone(), body.clone(), args.messages);
        tasks.push(tokio::spawn(async move {
            let mut session = ImapSession::login(&target, &user, 0).await?;
            for _ in 0..n {
                session.append(&target.mailbox, &body).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let total = (args.messages * args.target.user.len()) as u64;
    let text = format!(
        "fill: {} messages of {} octets appended to {} mailboxes in {secs:.2} s",
        total,
        args.size,
        args.target.user.len()
    );
    let fields = json!({"load": "fill", "server": args.target.server.to_string(), "size": args.size, "users": args.target.user.len()});
    Ok(Report::new(text, fields, total, secs, None))
}

pub(super) async fn fetch(args: FetchArgs) -> anyhow::Result<Report> {
    if args.connections == 0 || args.target.user.is_empty() {
        bail!("--connections must be at least 1");
    }
    if args.fill > 0 {
        let mut session = ImapSession::login(&args.target, &args.target.user[0], 0).await?;
        let body = message_body(args.size);
        for _ in 0..args.fill {
            session.append(&args.target.mailbox, &body).await?;
        }
    }
    let until = Until::new(args.rounds, args.duration)?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        let (target, mode) = (args.target.clone(), args.mode);
        tasks.push(tokio::spawn(async move { session(target, c, mode, until).await }));
    }
    let (mut operations, mut messages, mut octets) = (0u64, 0u64, 0u64);
    let mut latencies = Latencies::new();
    for task in tasks {
        let (ops, m, o, l) = task.await??;
        operations += ops;
        messages += m;
        octets += o;
        latencies.merge(&l);
    }
    let secs = started.elapsed().as_secs_f64();
    let c = args.connections;
    let (text, ops) = match args.mode {
        Mode::Read => {
            if messages == 0 {
                bail!("the mailbox {} is empty: use --fill or bench fill", args.target.mailbox);
            }
            let text = format!(
                "fetch: {messages} messages ({:.1} MB) of BODY[] over {c} connections in {secs:.2} s: {:.0} messages/s, {:.1} MB/s; latency ms per whole-mailbox FETCH {}",
                octets as f64 / 1e6,
                messages as f64 / secs,
                octets as f64 / 1e6 / secs,
                latencies.text(2),
            );
            (text, messages)
        }
        Mode::Login => {
            let text = format!(
                "fetch: {operations} IMAP logins over {c} connections in {secs:.2} s: {:.0} logins/s; latency ms {}",
                operations as f64 / secs,
                latencies.text(2),
            );
            (text, operations)
        }
        Mode::Mix => {
            let text = format!(
                "fetch: {operations} IMAP commands (FETCH BODY.PEEK[] and STORE, {messages} messages, {:.1} MB) over {c} connections in {secs:.2} s: {:.0} commands/s; latency ms {}",
                octets as f64 / 1e6,
                operations as f64 / secs,
                latencies.text(2),
            );
            (text, operations)
        }
    };
    let fields = json!({
        "load": "fetch",
        "mode": args.mode.name(),
        "server": args.target.server.to_string(),
        "connections": c,
        "users": args.target.user.len(),
        "messages": messages,
        "octets": octets,
        "octets_per_sec": (octets as f64 / secs).round(),
    });
    Ok(Report::new(text, fields, ops, secs, Some(&latencies)))
}

/// One session of `bench fetch`: (operations, messages fetched, literal octets, latencies).
async fn session(
    target: ImapTarget,
    id: usize,
    mode: Mode,
    until: Until,
) -> anyhow::Result<(u64, u64, u64, Latencies)> {
    let user = target.user[id % target.user.len()].clone();
    let mut latencies = Latencies::new();
    let (mut operations, mut messages, mut octets) = (0u64, 0u64, 0u64);
    match mode {
        Mode::Login => {
            let mut done = 0;
            while until.more(done) {
                let begun = Instant::now();
                let mut session = ImapSession::login(&target, &user, id).await?;
                session.command("LOGOUT").await?;
                latencies.record(begun.elapsed());
                done += 1;
            }
            operations = done as u64;
        }
        Mode::Read => {
            let mut session = ImapSession::login(&target, &user, id).await?;
            session.command(&format!("EXAMINE \"{}\"", target.mailbox)).await?;
            let mut done = 0;
            while until.more(done) {
                let begun = Instant::now();
                let (m, o) = session.command("UID FETCH 1:* (BODY.PEEK[])").await?;
                latencies.record(begun.elapsed());
                messages += m;
                octets += o;
                done += 1;
            }
            operations = done as u64;
            session.command("LOGOUT").await?;
        }
        Mode::Mix => {
            let mut session = ImapSession::login(&target, &user, id).await?;
            session.command(&format!("SELECT \"{}\"", target.mailbox)).await?;
            let exists = session.exists.unwrap_or(0);
            if exists == 0 {
                bail!("the mailbox {} is empty: use --fill or bench fill", target.mailbox);
            }
            let mut done = 0;
            while until.more(done) {
                // Walk the mailbox from a different place in each session.
                let n = (id as u64 * 7919 + done as u64) % exists + 1;
                let begun = Instant::now();
                let (m, o) = session.command(&format!("FETCH {n} (BODY.PEEK[])")).await?;
                latencies.record(begun.elapsed());
                messages += m;
                octets += o;
                let sign = if done % 2 == 0 { '+' } else { '-' };
                let begun = Instant::now();
                session.command(&format!("STORE {n} {sign}FLAGS.SILENT (\\Flagged)")).await?;
                latencies.record(begun.elapsed());
                operations += 2;
                done += 1;
            }
            session.command("LOGOUT").await?;
        }
    }
    Ok((operations, messages, octets, latencies))
}

/// A minimal IMAP client for the loads: tagged commands, literals skipped and counted.
struct ImapSession {
    read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
    tag: u64,
    /// The last `* n EXISTS` seen.
    exists: Option<u64>,
}

impl ImapSession {
    async fn login(target: &ImapTarget, user: &str, id: usize) -> anyhow::Result<ImapSession> {
        let stream = connect(target.server, id, 1).await?;
        let (read, write) = stream.into_split();
        let mut session = ImapSession { read: BufReader::new(read), write, tag: 0, exists: None };
        let mut greeting = String::new();
        super::read_line_within(&mut session.read, &mut greeting, 60).await?;
        if !greeting.starts_with("* OK") {
            bail!("unexpected greeting {:?}", greeting.trim_end());
        }
        session
            .command(&format!("LOGIN \"{user}\" \"{}\"", target.password))
            .await
            .with_context(|| format!("LOGIN as {user}"))?;
        Ok(session)
    }

    /// Sends one command and reads its responses up to the tagged OK; returns the number of
    /// FETCH responses and of literal octets received.
    async fn command(&mut self, command: &str) -> anyhow::Result<(u64, u64)> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.write.write_all(format!("{tag} {command}\r\n").as_bytes()).await?;
        self.responses(&tag).await
    }

    async fn append(&mut self, mailbox: &str, message: &[u8]) -> anyhow::Result<()> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let head = format!("{tag} APPEND \"{mailbox}\" {{{}}}\r\n", message.len());
        self.write.write_all(head.as_bytes()).await?;
        let mut line = String::new();
        super::read_line_within(&mut self.read, &mut line, 60).await?;
        if !line.starts_with('+') {
            bail!("APPEND refused: {:?}", line.trim_end());
        }
        self.write.write_all(message).await?;
        self.write.write_all(b"\r\n").await?;
        self.responses(&tag).await.map(|_| ())
    }

    async fn responses(&mut self, tag: &str) -> anyhow::Result<(u64, u64)> {
        let (mut fetches, mut octets) = (0u64, 0u64);
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.read.read_until(b'\n', &mut line).await? == 0 {
                bail!("the server closed the connection");
            }
            if line.starts_with(b"* ") && line.windows(7).any(|w| w == b" FETCH ") {
                fetches += 1;
            }
            if let Some(n) = exists(&line) {
                self.exists = Some(n);
            }
            // A line ending in {n} is followed by n octets of literal, then the rest of the line.
            while let Some(n) = literal_length(&line) {
                let mut skip = (&mut self.read).take(n);
                octets += tokio::io::copy(&mut skip, &mut tokio::io::sink()).await?;
                line.clear();
                self.read.read_until(b'\n', &mut line).await?;
            }
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let status = String::from_utf8_lossy(&line[tag.len() + 1..]).trim_end().to_owned();
                if !status.starts_with("OK") {
                    bail!("{tag}: {status}");
                }
                return Ok((fetches, octets));
            }
        }
    }
}

/// The `n` of a `* n EXISTS` line.
fn exists(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?.strip_prefix("* ")?;
    let (n, rest) = line.split_once(' ')?;
    rest.trim_end().eq_ignore_ascii_case("EXISTS").then(|| n.parse().ok()).flatten()
}

/// The `n` of a line ending in `{n}` CRLF (or `{n+}`).
fn literal_length(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&c| c == b'{')?;
    let digits = line[open + 1..].strip_suffix(b"+").unwrap_or(&line[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn literal_lengths_and_exists_lines_parse() {
        assert_eq!(super::literal_length(b"* 1 FETCH (BODY[] {120}\r\n"), Some(120));
        assert_eq!(super::literal_length(b"* 1 FETCH (BODY[] {7+}\r\n"), Some(7));
        assert_eq!(super::literal_length(b"* 1 FETCH (FLAGS ())\r\n"), None);
        assert_eq!(super::exists(b"* 42 EXISTS\r\n"), Some(42));
        assert_eq!(super::exists(b"* 42 RECENT\r\n"), None);
    }
}
