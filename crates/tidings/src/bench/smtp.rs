//! `bench smtp`: concurrent SMTP senders, closed or open loop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

use super::{Gate, Latencies, Report, Until, connect, corpus_sizes, gate, message_body};

/// `bench smtp` arguments.
#[derive(clap::Args)]
pub struct SmtpArgs {
    /// SMTP server address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: SocketAddr,
    /// Envelope recipient; give it several times to spread sessions over them (round robin).
    #[arg(long, default_values_t = ["ta@mmsys.upenn.edu".to_string()])]
    to: Vec<String>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Messages per session (closed loop); with --rate, messages in all.
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Run for this many seconds instead of a number of messages.
    #[arg(long)]
    duration: Option<f64>,
    /// Message size in octets (ignored with --corpus).
    #[arg(long, default_value_t = 10 * 1024)]
    size: usize,
    /// Draw message sizes from the files under this directory (one per message, in turn): each
    /// message sent is a generated one of that file's size.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Wait for each envelope reply before the next command instead of pipelining MAIL, RCPT and
    /// DATA in one write (RFC 2920).
    #[arg(long)]
    no_pipelining: bool,
    /// Open loop: offer this many messages per second in all, on schedule whether or not earlier
    /// ones were answered; latency counts from each message's intended send time, so it includes
    /// any wait for a free session.
    #[arg(long)]
    rate: Option<f64>,
    /// Spread the connections over this many loopback source addresses (127.0.0.1 up).
    #[arg(long, default_value_t = 1)]
    sources: u8,
}

/// What every session shares.
struct Shared {
    server: SocketAddr,
    bodies: Vec<Vec<u8>>,
    pipelining: bool,
    sources: u8,
    /// The next message's number (which body; in open loop, which send slot).
    next: AtomicU64,
    /// Open loop: the interval between send slots, and how many slots there are (`None`: until
    /// the deadline).
    schedule: Option<(Duration, Option<u64>)>,
}

pub(super) async fn run(args: SmtpArgs) -> anyhow::Result<Report> {
    if args.connections == 0 || args.to.is_empty() {
        bail!("--connections must be at least 1");
    }
    let sizes = match &args.corpus {
        Some(dir) => corpus_sizes(dir)?,
        None => vec![args.size],
    };
    let schedule = match args.rate {
        Some(r) if r > 0.0 && r.is_finite() => {
            let total = args.duration.is_none().then_some(args.messages as u64);
            Some((Duration::from_secs_f64(1.0 / r), total))
        }
        Some(_) => bail!("--rate must be a positive number of messages per second"),
        None => None,
    };
    let shared = Arc::new(Shared {
        server: args.server,
        bodies: sizes.iter().map(|&s| message_body(s)).collect(),
        pipelining: !args.no_pipelining,
        sources: args.sources,
        next: AtomicU64::new(0),
        schedule,
    });
    let rounds = if schedule.is_some() { usize::MAX } else { args.messages };
    // Validated now; the deadline itself is set when the gate opens.
    Until::new(rounds, args.duration)?;
    let (opener, gate) = gate(args.connections);
    let mut tasks = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        let (shared, to, gate) = (Arc::clone(&shared), args.to[c % args.to.len()].clone(), gate.clone());
        let duration = args.duration;
        tasks.push(tokio::spawn(async move { session(shared, to, c, gate, rounds, duration).await }));
    }
    drop(gate);
    let mut opener = opener;
    let started = opener.open().await?;
    let mut latencies = Latencies::new();
    let (mut messages, mut octets) = (0u64, 0u64);
    for task in tasks {
        let (l, m, o) = task.await??;
        latencies.merge(&l);
        messages += m;
        octets += o;
    }
    let secs = started.elapsed().as_secs_f64();
    let size_text = match &args.corpus {
        Some(dir) => format!("{} octets on average (sizes of {})", octets / messages.max(1), dir.display()),
        None => format!("{} octets", args.size),
    };
    let mut text = format!(
        "smtp: {messages} messages of {size_text} over {} connections to {} recipients in {secs:.2} s: {:.0} messages/s durable; latency ms {}",
        args.connections,
        args.to.len(),
        messages as f64 / secs,
        latencies.text(1),
    );
    if let Some(rate) = args.rate {
        text.push_str(&format!("; open loop, offered {rate} messages/s"));
    }
    let fields = json!({
        "load": "smtp",
        "server": args.server.to_string(),
        "connections": args.connections,
        "recipients": args.to.len(),
        "size": if args.corpus.is_some() { None } else { Some(args.size) },
        "mean_size": octets / messages.max(1),
        "pipelining": !args.no_pipelining,
        "open_loop_rate": args.rate,
        "octets": octets,
    });
    Ok(Report::new(text, fields, messages, secs, Some(&latencies)))
}

/// One SMTP session: connects, says EHLO, passes the gate, then sends until its rounds, the
/// deadline or (open loop) the schedule end; returns its latencies, messages and octets.
async fn session(
    shared: Arc<Shared>,
    to: String,
    id: usize,
    mut gate: Gate,
    rounds: usize,
    duration: Option<f64>,
) -> anyhow::Result<(Latencies, u64, u64)> {
    let setup = async {
        let stream = connect(shared.server, id, shared.sources).await?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        expect(&mut read, "220").await?;
        write.write_all(b"EHLO bench.example\r\n").await?;
        expect(&mut read, "250").await?;
        anyhow::Ok((read, write))
    }
    .await;
    let setup_ok = setup.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e:#}"));
    let Some(start) = gate.pass(&setup_ok).await else {
        return Ok((Latencies::new(), 0, 0));
    };
    let (mut read, mut write) = setup?;
    let until = match duration {
        Some(secs) => Until::Deadline(start + Duration::from_secs_f64(secs)),
        None => Until::Rounds(rounds),
    };
    let mut latencies = Latencies::new();
    let (mut sent, mut octets) = (0usize, 0u64);
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        let begun = match shared.schedule {
            Some((interval, total)) => {
                let intended = start + interval.mul_f64(k as f64);
                let past_end = match until {
                    Until::Deadline(end) => intended >= end,
                    Until::Rounds(_) => total.is_some_and(|t| k >= t),
                };
                if past_end {
                    break;
                }
                tokio::time::sleep_until(intended).await;
                intended
            }
            None => {
                if !until.more(sent) {
                    break;
                }
                Instant::now()
            }
        };
        let body = &shared.bodies[k as usize % shared.bodies.len()];
        let mail = format!("MAIL FROM:<bench{id}.{sent}@example.org>\r\n");
        let rcpt = format!("RCPT TO:<{to}>\r\n");
        if shared.pipelining {
            write.write_all(format!("{mail}{rcpt}DATA\r\n").as_bytes()).await?;
            expect(&mut read, "250").await?;
            expect(&mut read, "250").await?;
            expect(&mut read, "354").await?;
        } else {
            write.write_all(mail.as_bytes()).await?;
            expect(&mut read, "250").await?;
            write.write_all(rcpt.as_bytes()).await?;
            expect(&mut read, "250").await?;
            write.write_all(b"DATA\r\n").await?;
            expect(&mut read, "354").await?;
        }
        // The generated bodies have no line starting with '.': nothing to dot-stuff.
        write.write_all(body).await?;
        write.write_all(b".\r\n").await?;
        expect(&mut read, "250").await?;
        latencies.record(begun.elapsed());
        sent += 1;
        octets += body.len() as u64;
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok((latencies, sent as u64, octets))
}

/// Reads one (possibly multi-line) reply and checks its code.
async fn expect<R: AsyncBufReadExt + Unpin>(read: &mut R, code: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        if !super::read_line_within(read, &mut line, 60).await? {
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
