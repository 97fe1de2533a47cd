//! `bench fanout` (the line protocol's one-room fan-out) and `bench idle` (memory per idle
//! connection, any protocol).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;
use serde_json::json;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Latencies, Report, connect, read_line_within, rss_kib, settle};

/// `bench fanout` arguments.
#[derive(clap::Args)]
pub struct FanoutArgs {
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
    /// Spread the connections over this many loopback source addresses (127.0.0.1 up).
    #[arg(long, default_value_t = 1)]
    sources: u8,
}

/// `bench idle` arguments.
#[derive(clap::Args)]
pub struct IdleArgs {
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
    /// IRC: each connection registers (NICK idleN, USER) and waits for the welcome (001) instead
    /// of waiting for a greeting (an IRC server sends none).
    #[arg(long, conflicts_with = "join_group")]
    irc: bool,
    /// Spread the connections over this many loopback source addresses (127.0.0.1 up): past
    /// about 28,000 connections to one server port, one source address runs out of ports.
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Connections being opened (and registered) at once.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
}

pub(super) async fn idle(args: IdleArgs) -> anyhow::Result<Report> {
    let IdleArgs { server, pid, connections, join_group, irc, sources, parallel } = args;
    if parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let join_group: Option<Arc<str>> = join_group.map(Into::into);
    let mut open = Vec::with_capacity(connections);
    let mut opening = tokio::task::JoinSet::new();
    let mut next = 0;
    while open.len() < connections {
        while next < connections && opening.len() < parallel {
            opening.spawn(open_idle(server, next, sources, join_group.clone(), irc));
            next += 1;
        }
        let opened = opening.join_next().await.expect("a connection is being opened");
        open.push(opened??);
    }
    let secs = started.elapsed().as_secs_f64();
    settle().await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / connections.max(1) as f64;
    let text = format!(
        "idle: {connections} connections; server VmRSS {before} KiB -> {after} KiB: {:.0} octets ({:.2} KiB) per idle connection",
        per,
        per / 1024.0
    );
    drop(open);
    let fields = json!({
        "load": "idle",
        "server": server.to_string(),
        "connections": connections,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "octets_per_connection": per.round(),
    });
    Ok(Report::new(text, fields, connections as u64, secs, None))
}

/// Opens idle connection `i` and waits until the server has set its session up: the greeting, the
/// line protocol's own join, or IRC's welcome (001).
async fn open_idle(
    server: SocketAddr,
    i: usize,
    sources: u8,
    join_group: Option<Arc<str>>,
    irc: bool,
) -> anyhow::Result<TcpStream> {
    let mut stream = connect(server, i, sources).await?;
    if let Some(group) = &join_group {
        stream.write_all(format!("JOIN {group} idle{i}\n").as_bytes()).await?;
        let own = format!("idle{i} has joined");
        let mut read = BufReader::new(&mut stream);
        let mut line = String::new();
        while line.trim_end() != own {
            if !read_line_within(&mut read, &mut line, 60).await? {
                bail!("idle{i}: the server closed the connection while joining");
            }
        }
    } else if irc {
        stream.write_all(format!("NICK idle{i}\r\nUSER idle{i} 0 * :idle\r\n").as_bytes()).await?;
        let mut read = BufReader::new(&mut stream);
        let mut line = String::new();
        loop {
            if !read_line_within(&mut read, &mut line, 60).await? {
                bail!("idle{i}: the server closed the connection while registering");
            }
            let rest = line.strip_prefix(':').and_then(|l| l.split_once(' ')).map_or(line.as_str(), |(_, r)| r);
            if rest.starts_with("001 ") {
                break;
            }
            if let Some(token) = rest.strip_prefix("PING") {
                read.get_mut().write_all(format!("PONG{}\r\n", token.trim_end()).as_bytes()).await?;
            }
        }
    } else {
        // Wait for the greeting so the server has set the session up.
        let mut greeting = [0u8; 512];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut greeting).await?;
    }
    Ok(stream)
}

pub(super) async fn fanout(args: FanoutArgs) -> anyhow::Result<Report> {
    let FanoutArgs { server, group, members, messages, pid, sources } = args;
    if members == 0 || messages == 0 {
        bail!("--members and --messages must be at least 1");
    }
    let before = pid.map(rss_kib).transpose()?;
    let mut readers = Vec::with_capacity(members);
    let started = Instant::now();
    for i in 0..members {
        let stream = connect(server, i, sources).await?;
        let (read, mut write) = stream.into_split();
        write.write_all(format!("JOIN {group} member{i}\n").as_bytes()).await?;
        let mut read = BufReader::new(read);
        // Wait for our own join, so the next member joins a room that has us in it.
        let own = format!("member{i} has joined");
        let mut line = String::new();
        loop {
            if !read_line_within(&mut read, &mut line, 60).await? {
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
    let sent_at = Arc::new(Mutex::new(vec![None::<Instant>; messages]));
    let mut tasks = Vec::with_capacity(members);
    for (mut read, write) in readers {
        let sent_at = Arc::clone(&sent_at);
        tasks.push(tokio::spawn(async move {
            let _keep = write;
            let mut latencies = Latencies::new();
            let mut line = String::new();
            let mut seen = 0;
            while seen < messages {
                if !read_line_within(&mut read, &mut line, 60).await? {
                    bail!("a member was disconnected");
                }
                if let Some(n) = line.trim_end().strip_prefix("sender: m").and_then(|n| n.parse::<usize>().ok()) {
                    let at = sent_at.lock().expect("lock")[n.min(messages - 1)];
                    if let Some(at) = at {
                        latencies.record(at.elapsed());
                    }
                    seen += 1;
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let stream = connect(server, members, sources).await?;
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
            if !read_line_within(&mut read, &mut line, 60).await? {
                bail!("the sender was disconnected (is [line] flood_lines_per_sec = 0?)");
            }
            if line.trim_end() == echo {
                break;
            }
        }
    }
    let mut latencies = Latencies::new();
    for task in tasks {
        latencies.merge(&task.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let deliveries = (members * messages) as u64;
    let mut text = format!(
        "fanout: {members} members joined in {joined_secs:.2} s; {messages} messages -> {deliveries} deliveries in {secs:.3} s: {:.0} deliveries/s; latency ms {}",
        deliveries as f64 / secs,
        latencies.text(2),
    );
    let mut per_member = None;
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.saturating_sub(before) as f64 * 1024.0 / members as f64;
        per_member = Some(per.round());
        text.push_str(&format!(
            "\nfanout: server VmRSS {before} KiB -> {after} KiB with {members} joined members: {per:.0} octets ({:.2} KiB) per member",
            per / 1024.0
        ));
    }
    let fields = json!({
        "load": "fanout",
        "server": server.to_string(),
        "members": members,
        "messages": messages,
        "joined_secs": joined_secs,
        "octets_per_member": per_member,
    });
    Ok(Report::new(text, fields, deliveries, secs, Some(&latencies)))
}
