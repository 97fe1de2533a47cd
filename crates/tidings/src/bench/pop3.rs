//! `bench pop3`: RETR throughput or logins per second (RFC 1939).

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::{Latencies, Mode, Report, Until, connect, read_line_within};

/// `bench pop3` arguments.
#[derive(clap::Args)]
pub struct Pop3Args {
    /// POP3 server address (cleartext; loopback).
    #[arg(long, default_value = "127.0.0.1:1110")]
    server: SocketAddr,
    /// Login name; give it several times to spread sessions over them (round robin). A server may
    /// lock a maildrop to one session at a time (RFC 1939 §8): give at least one user per
    /// connection.
    #[arg(long, default_values_t = ["ta@mmsys.upenn.edu".to_string()])]
    user: Vec<String>,
    /// Password (the same for every user).
    #[arg(long, default_value = "CIS505")]
    password: String,
    /// `read`: per round, RETR every message of the maildrop (latency per RETR); `login`: per
    /// round, connect, USER, PASS, QUIT (latency per login).
    #[arg(long, value_enum, default_value = "read")]
    mode: Mode,
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

pub(super) async fn run(args: Pop3Args) -> anyhow::Result<Report> {
    if args.connections == 0 || args.user.is_empty() {
        bail!("--connections must be at least 1");
    }
    if args.mode == Mode::Mix {
        bail!("bench pop3 has the modes read and login");
    }
    let until = Until::new(args.rounds, args.duration)?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        let (server, user, password, mode) =
            (args.server, args.user[c % args.user.len()].clone(), args.password.clone(), args.mode);
        tasks.push(tokio::spawn(async move { session(server, &user, &password, c, mode, until).await }));
    }
    let (mut operations, mut octets) = (0u64, 0u64);
    let mut latencies = Latencies::new();
    for task in tasks {
        let (ops, o, l) = task.await??;
        operations += ops;
        octets += o;
        latencies.merge(&l);
    }
    let secs = started.elapsed().as_secs_f64();
    let c = args.connections;
    let text = match args.mode {
        Mode::Login => format!(
            "pop3: {operations} logins over {c} connections in {secs:.2} s: {:.0} logins/s; latency ms {}",
            operations as f64 / secs,
            latencies.text(2)
        ),
        _ => {
            if operations == 0 {
                bail!("the maildrops are empty: fill them first (bench fill, bench smtp)");
            }
            format!(
                "pop3: {operations} messages ({:.1} MB) RETR over {c} connections in {secs:.2} s: {:.0} messages/s, {:.1} MB/s; latency ms per RETR {}",
                octets as f64 / 1e6,
                operations as f64 / secs,
                octets as f64 / 1e6 / secs,
                latencies.text(2)
            )
        }
    };
    let fields = json!({
        "load": "pop3",
        "mode": args.mode.name(),
        "server": args.server.to_string(),
        "connections": c,
        "users": args.user.len(),
        "octets": octets,
        "octets_per_sec": (octets as f64 / secs).round(),
    });
    Ok(Report::new(text, fields, operations, secs, Some(&latencies)))
}

/// One session: (operations, octets received in RETR replies, latencies).
async fn session(
    server: SocketAddr,
    user: &str,
    password: &str,
    id: usize,
    mode: Mode,
    until: Until,
) -> anyhow::Result<(u64, u64, Latencies)> {
    let mut latencies = Latencies::new();
    let (mut operations, mut octets) = (0u64, 0u64);
    let mut rounds = 0;
    if mode == Mode::Login {
        while until.more(rounds) {
            let begun = Instant::now();
            let mut s = Pop3::login(server, user, password, id).await?;
            s.ok("QUIT").await?;
            latencies.record(begun.elapsed());
            rounds += 1;
        }
        return Ok((rounds as u64, 0, latencies));
    }
    let mut s = Pop3::login(server, user, password, id).await?;
    let stat = s.ok("STAT").await?;
    let count: u64 = stat.split_whitespace().nth(1).and_then(|n| n.parse().ok()).context("STAT reply")?;
    while count > 0 && until.more(rounds) {
        for n in 1..=count {
            let begun = Instant::now();
            octets += s.retr(n).await?;
            latencies.record(begun.elapsed());
            operations += 1;
            if !until.more(rounds) {
                break;
            }
        }
        rounds += 1;
    }
    s.ok("QUIT").await?;
    Ok((operations, octets, latencies))
}

/// A minimal POP3 client.
struct Pop3 {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    line: String,
}

impl Pop3 {
    async fn login(server: SocketAddr, user: &str, password: &str, id: usize) -> anyhow::Result<Pop3> {
        let (read, write) = connect(server, id, 1).await?.into_split();
        let mut s = Pop3 { read: BufReader::new(read), write, line: String::new() };
        s.reply().await.context("greeting")?;
        s.ok(&format!("USER {user}")).await?;
        s.ok(&format!("PASS {password}")).await.with_context(|| format!("PASS for {user}"))?;
        Ok(s)
    }

    /// Sends `command` and reads a +OK status line (returned).
    async fn ok(&mut self, command: &str) -> anyhow::Result<String> {
        self.write.write_all(format!("{command}\r\n").as_bytes()).await?;
        self.reply().await
    }

    async fn reply(&mut self) -> anyhow::Result<String> {
        if !read_line_within(&mut self.read, &mut self.line, 60).await? {
            bail!("the server closed the connection");
        }
        if !self.line.starts_with("+OK") {
            bail!("{:?}", self.line.trim_end());
        }
        Ok(self.line.trim_end().to_owned())
    }

    /// RETR `n`: reads the multi-line reply to its terminating ".", returns the octets received.
    async fn retr(&mut self, n: u64) -> anyhow::Result<u64> {
        self.ok(&format!("RETR {n}")).await?;
        let mut octets = 0u64;
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            if self.read.read_until(b'\n', &mut line).await? == 0 {
                bail!("the server closed the connection during RETR");
            }
            if line == b".\r\n" || line == b".\n" {
                return Ok(octets);
            }
            octets += line.len() as u64;
        }
    }
}
