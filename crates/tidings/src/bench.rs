//! `tidings bench`: load generators that drive any server over the standard protocols.
//!
//! - `bench smtp`: N concurrent SMTP sessions each sending M messages of a fixed size; reports
//!   accepted (durable: the server said 250 to DATA) messages per second and latency percentiles.
//! - `bench idle`: opens N connections that say nothing and reports the server's resident memory
//!   per connection (read from `/proc/<pid>/status`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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
            Load::Idle { server, pid, connections } => idle(server, pid, connections).await,
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

async fn idle(server: SocketAddr, pid: u32, connections: usize) -> anyhow::Result<()> {
    let before = rss_kib(pid)?;
    let mut open = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = TcpStream::connect(server).await.with_context(|| format!("cannot connect to {server}"))?;
        // Wait for the greeting so the server has set the session up.
        let mut greeting = [0u8; 512];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut greeting).await?;
        open.push(stream);
    }
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
