//! `tidings bench`: load generators that drive any server over the standard protocols.
//!
//! - `bench smtp`: N concurrent SMTP sessions each sending M messages of a fixed size; reports
//!   accepted (durable: the server said 250 to DATA) messages per second and latency percentiles.
//! - `bench fetch`: N concurrent IMAP sessions each fetching BODY.PEEK[] of every message of a
//!   mailbox, repeatedly; reports messages and octets per second.
//! - `bench idle`: opens N connections that say nothing and reports the server's resident memory
//!   per connection (read from `/proc/<pid>/status`).
//! - `bench fanout`: N line-protocol members in one room, one more member posting M lines; reports
//!   deliveries per second (members × lines, until every member has every line) and delivery
//!   latency percentiles, and with `--pid` the server's memory per joined member.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A load to generate.
#[derive(Subcommand)]
pub enum Load {
    /// Concurrent SMTP senders (closed loop: each waits for 250 before its next message).
    Smtp {
        /// SMTP server address.
        #[arg(long, default_value = "127.0.0.1:2525")]
        server: SocketAddr,
        /// Envelope recipient; give it several times to spread sessions over them (round robin).
        #[arg(long, default_values_t = ["ta@mmsys.upenn.edu".to_string()])]
        to: Vec<String>,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// Messages per session.
        #[arg(long, default_value_t = 20)]
        messages: usize,
        /// Message size in octets.
        #[arg(long, default_value_t = 10 * 1024)]
        size: usize,
    },
    /// IMAP FETCH throughput: sessions each fetching every message's BODY.PEEK[] of a mailbox,
    /// again and again (closed loop).
    Fetch {
        /// IMAP server address (cleartext; loopback).
        #[arg(long, default_value = "127.0.0.1:1143")]
        server: SocketAddr,
        /// Login name.
        #[arg(long, default_value = "ta@mmsys.upenn.edu")]
        user: String,
        /// Password.
        #[arg(long, default_value = "CIS505")]
        password: String,
        /// Mailbox to fetch from.
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        /// First APPEND this many messages of `--size` octets to the mailbox.
        #[arg(long, default_value_t = 0)]
        fill: usize,
        /// Message size for `--fill`, in octets.
        #[arg(long, default_value_t = 10 * 1024)]
        size: usize,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Times each session fetches the whole mailbox.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Chat fan-out over the line protocol: `members` connections join one group, then a sender
    /// posts `messages` lines; every member must receive every line. The server's line-protocol
    /// flood limit must be off (`[line] flood_lines_per_sec = 0`) for the sender.
    Fanout {
        /// Line-protocol server address.
        #[arg(long, default_value = "127.0.0.1:5555")]
        server: SocketAddr,
        /// Group (room `#group`).
        #[arg(long, default_value = "bench")]
        group: String,
        /// Receiving members.
        #[arg(long, default_value_t = 2000)]
        members: usize,
        /// Lines the sender posts (one at a time: each waits for its own echo).
        #[arg(long, default_value_t = 20)]
        messages: usize,
        /// The server's process id: report its VmRSS per joined member.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Idle connections and the server's memory for them.
    Idle {
        /// Server address to connect to.
        #[arg(long, default_value = "127.0.0.1:2525")]
        server: SocketAddr,
        /// The server's process id (its VmRSS is read before and after).
        #[arg(long)]
        pid: u32,
        /// Connections to open.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Line protocol: each connection joins this group (as `idleN`) and waits to see its own
        /// join, instead of waiting for a greeting.
        #[arg(long)]
        join_group: Option<String>,
    },
}

/// Runs a load and prints its report.
///
/// # Errors
/// When the server cannot be reached or answers unexpectedly.
pub fn run(load: Load) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match load {
            Load::Smtp { server, to, connections, messages, size } => {
                smtp(server, &to, connections, messages, size).await
            }
            Load::Fetch { server, user, password, mailbox, fill, size, connections, rounds } => {
                let login = ImapLogin { server, user, password, mailbox };
                fetch(&login, fill, size, connections, rounds).await
            }
            Load::Idle { server, pid, connections, join_group } => {
                idle(server, pid, connections, join_group.as_deref()).await
            }
            Load::Fanout { server, group, members, messages, pid } => {
                fanout(server, &group, members, messages, pid).await
            }
        }
    })
}

async fn smtp(
    server: SocketAddr,
    to: &[String],
    connections: usize,
    messages: usize,
    size: usize,
) -> anyhow::Result<()> {
    let body = message_body(size);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let (to, body) = (to[c % to.len()].clone(), body.clone());
        tasks.push(tokio::spawn(async move { smtp_session(server, &to, c, messages, &body).await }));
    }
    let mut latencies = Vec::with_capacity(connections * messages);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "smtp: {} messages of {} octets over {} connections to {} recipients in {:.2} s: {:.0} messages/s durable; latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        latencies.len(),
        size,
        connections,
        to.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
    );
    Ok(())
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

async fn smtp_session(
    server: SocketAddr,
    to: &str,
    id: usize,
    messages: usize,
    body: &[u8],
) -> anyhow::Result<Vec<Duration>> {
    let stream = TcpStream::connect(server).await.with_context(|| format!("cannot connect to {server}"))?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, "220").await?;
    write.write_all(b"EHLO bench.example\r\n").await?;
    expect(&mut read, "250").await?;
    let mut latencies = Vec::with_capacity(messages);
    for n in 0..messages {
        let started = Instant::now();
        // Pipelined per RFC 2920: the envelope and DATA go in one write.
        let envelope = format!("MAIL FROM:<bench{id}.{n}@example.org>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        write.write_all(envelope.as_bytes()).await?;
        expect(&mut read, "250").await?;
        expect(&mut read, "250").await?;
        expect(&mut read, "354").await?;
        write.write_all(body).await?;
        write.write_all(b".\r\n").await?;
        expect(&mut read, "250").await?;
        latencies.push(started.elapsed());
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok(latencies)
}

/// Reads one (possibly multi-line) reply and checks its code.
async fn expect<R: AsyncBufReadExt + Unpin>(read: &mut R, code: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            bail!("server closed the connection, expected {code}");
        }
        if !line.starts_with(code) {
            bail!("expected {code}, got {:?}", line.trim_end());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// Where and as whom an IMAP load logs in.
struct ImapLogin {
    server: SocketAddr,
    user: String,
    password: String,
    mailbox: String,
}

async fn fetch(login: &ImapLogin, fill: usize, size: usize, connections: usize, rounds: usize) -> anyhow::Result<()> {
    if connections == 0 || rounds == 0 {
        bail!("--connections and --rounds must be at least 1");
    }
    if fill > 0 {
        let mut session = ImapSession::login(login).await?;
        let body = message_body(size);
        for _ in 0..fill {
            session.append(&login.mailbox, &body).await?;
        }
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let login = ImapLogin {
            mailbox: login.mailbox.clone(),
            user: login.user.clone(),
            password: login.password.clone(),
            ..*login
        };
        tasks.push(tokio::spawn(async move {
            let mut session = ImapSession::login(&login).await?;
            session.command(&format!("EXAMINE \"{}\"", login.mailbox)).await?;
            let (mut messages, mut octets) = (0u64, 0u64);
            for _ in 0..rounds {
                let (m, o) = session.command("UID FETCH 1:* (BODY.PEEK[])").await?;
                messages += m;
                octets += o;
            }
            anyhow::Ok((messages, octets))
        }));
    }
    let (mut messages, mut octets) = (0u64, 0u64);
    for task in tasks {
        let (m, o) = task.await??;
        messages += m;
        octets += o;
    }
    let secs = started.elapsed().as_secs_f64();
    if messages == 0 {
        bail!("the mailbox {} is empty: use --fill", login.mailbox);
    }
    println!(
        "fetch: {messages} messages ({:.1} MB) of BODY[] over {connections} connections in {secs:.2} s: {:.0} messages/s, {:.1} MB/s",
        octets as f64 / 1e6,
        messages as f64 / secs,
        octets as f64 / 1e6 / secs,
    );
    Ok(())
}

/// A minimal IMAP client for the loads: tagged commands, literals skipped and counted.
struct ImapSession {
    read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
    tag: u64,
}

impl ImapSession {
    async fn login(login: &ImapLogin) -> anyhow::Result<ImapSession> {
        let stream =
            TcpStream::connect(login.server).await.with_context(|| format!("cannot connect to {}", login.server))?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let mut session = ImapSession { read: BufReader::new(read), write, tag: 0 };
        let mut greeting = String::new();
        session.read.read_line(&mut greeting).await?;
        if !greeting.starts_with("* OK") {
            bail!("unexpected greeting {:?}", greeting.trim_end());
        }
        session.command(&format!("LOGIN \"{}\" \"{}\"", login.user, login.password)).await?;
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
        self.read.read_line(&mut line).await?;
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

/// The `n` of a line ending in `{n}` CRLF (or `{n+}`).
fn literal_length(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&c| c == b'{')?;
    let digits = line[open + 1..].strip_suffix(b"+").unwrap_or(&line[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

async fn idle(server: SocketAddr, pid: u32, connections: usize, join_group: Option<&str>) -> anyhow::Result<()> {
    let before = rss_kib(pid)?;
    let mut open = Vec::with_capacity(connections);
    for i in 0..connections {
        let mut stream = TcpStream::connect(server).await.with_context(|| format!("cannot connect to {server}"))?;
        if let Some(group) = join_group {
            stream.write_all(format!("JOIN {group} idle{i}\n").as_bytes()).await?;
            let own = format!("idle{i} has joined");
            let mut read = BufReader::new(&mut stream);
            let mut line = String::new();
            while line.trim_end() != own {
                line.clear();
                if read.read_line(&mut line).await? == 0 {
                    bail!("idle{i}: the server closed the connection while joining");
                }
            }
        } else {
            // Wait for the greeting so the server has set the session up.
            let mut greeting = [0u8; 512];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut greeting).await?;
        }
        open.push(stream);
    }
    settle().await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / connections as f64;
    println!(
        "idle: {connections} connections; server VmRSS {before} KiB -> {after} KiB: {:.0} octets ({:.2} KiB) per idle connection",
        per,
        per / 1024.0
    );
    drop(open);
    Ok(())
}

async fn fanout(
    server: SocketAddr,
    group: &str,
    members: usize,
    messages: usize,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let before = pid.map(rss_kib).transpose()?;
    let mut readers = Vec::with_capacity(members);
    let started = Instant::now();
    for i in 0..members {
        let stream = TcpStream::connect(server).await.with_context(|| format!("cannot connect to {server}"))?;
        let (read, mut write) = stream.into_split();
        write.write_all(format!("JOIN {group} member{i}\n").as_bytes()).await?;
        let mut read = BufReader::new(read);
        // Wait for our own join, so the next member joins a room that has us in it.
        let own = format!("member{i} has joined");
        let mut line = String::new();
        loop {
            line.clear();
            if read.read_line(&mut line).await? == 0 {
                bail!("member{i}: the server closed the connection while joining");
            }
            if line.trim_end() == own {
                break;
            }
        }
        readers.push((read, write));
    }
    let joined_secs = started.elapsed().as_secs_f64();
    if pid.is_some() {
        settle().await;
    }
    let after = pid.map(rss_kib).transpose()?;
    // Every member counts the sender's lines and notes when each arrived.
    let sent_at = std::sync::Arc::new(std::sync::Mutex::new(vec![None::<Instant>; messages]));
    let mut tasks = Vec::with_capacity(members);
    for (mut read, write) in readers {
        let sent_at = std::sync::Arc::clone(&sent_at);
        tasks.push(tokio::spawn(async move {
            let _keep = write;
            let mut latencies = Vec::with_capacity(messages);
            let mut line = String::new();
            while latencies.len() < messages {
                line.clear();
                if read.read_line(&mut line).await? == 0 {
                    bail!("a member was disconnected: {}", line.trim_end());
                }
                if let Some(n) = line.trim_end().strip_prefix("sender: m").and_then(|n| n.parse::<usize>().ok()) {
                    let at = sent_at.lock().expect("lock")[n.min(messages - 1)];
                    latencies.push(at.map_or(0, |t| t.elapsed().as_micros() as u64));
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let stream = TcpStream::connect(server).await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(format!("JOIN {group} sender\n").as_bytes()).await?;
    let start = Instant::now();
    let mut line = String::new();
    for n in 0..messages {
        sent_at.lock().expect("lock")[n] = Some(Instant::now());
        write.write_all(format!("m{n}\n").as_bytes()).await?;
        let echo = format!("sender: m{n}");
        loop {
            line.clear();
            if read.read_line(&mut line).await? == 0 {
                bail!("the sender was disconnected (is [line] flood_lines_per_sec = 0?)");
            }
            if line.trim_end() == echo {
                break;
            }
        }
    }
    let mut latencies = Vec::with_capacity(members * messages);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let deliveries = members * messages;
    println!(
        "fanout: {members} members joined in {joined_secs:.2} s; {messages} messages -> {deliveries} deliveries in {secs:.3} s: {:.0} deliveries/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        deliveries as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.saturating_sub(before) as f64 * 1024.0 / members as f64;
        println!(
            "fanout: server VmRSS {before} KiB -> {after} KiB with {members} joined members: {per:.0} octets ({:.2} KiB) per member",
            per / 1024.0
        );
    }
    Ok(())
}

/// Lets the server finish the work the connections caused and its allocator return what that work
/// freed, so the resident size read next is what the connections hold.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

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
}
