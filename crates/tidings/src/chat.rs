//! `tidings chat-server` and `tidings chat-client`: a server of a classic UDP chat cluster and its
//! client (PROTOCOLS.md §2).

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{info, warn};

use tidings_chat::udp::cluster::CLUSTER_FILE_BYTES_MAX;
use tidings_chat::udp::{Cluster, EventLog, OrderingMode, ServerIndex, Solo, UdpCore, UdpService};
use tidings_net::ShutdownController;
use tidings_store::{SqliteStore, Store};

use crate::config::Config;
use crate::serve::{lock_data_dir, wait_for_signal};

/// `tidings chat-server`'s arguments.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The cluster file: one line per server, `IP:port` or `forwardIP:port,bindIP:port`.
    cluster: PathBuf,
    /// Which server this is: 1 is the first line of the cluster file.
    index: ServerIndex,
    /// Ordering mode of the cluster: unordered, fifo, causal or total (every server of a cluster
    /// runs the same one).
    #[arg(short = 'o', long = "order", default_value = "unordered", value_name = "MODE")]
    order: OrderingMode,
    /// TOML configuration file: `[udp]` limits (its address is not used: the cluster file gives
    /// it), `[chat]` and `[store]`. Without it every setting has its documented default.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Data directory for this server's rooms and messages. Default: `tidings-chat-S<index>` in
    /// the working directory, the index with at least two digits (`tidings-chat-S01`).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// The default data directory of server `index`.
fn default_data_dir(index: ServerIndex) -> PathBuf {
    PathBuf::from(format!("tidings-chat-S{index:02}"))
}

/// Reads a cluster file of at most [`CLUSTER_FILE_BYTES_MAX`] octets.
fn read_cluster(path: &Path) -> anyhow::Result<Cluster> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read the cluster file {}", path.display()))?;
    let mut text = String::new();
    file.take(CLUSTER_FILE_BYTES_MAX as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read the cluster file {} as UTF-8 text", path.display()))?;
    Cluster::parse(&text).with_context(|| format!("invalid cluster file {}", path.display()))
}

/// Runs server `index` of the cluster until SIGINT or SIGTERM. With `verbose`, logs one line per
/// event to standard output.
///
/// # Errors
/// A bad cluster file or index, a bad configuration, a data directory in use, an address that
/// cannot be bound.
pub fn run_server(args: ServerArgs, verbose: bool) -> anyhow::Result<()> {
    let cluster = read_cluster(&args.cluster)?;
    let me = cluster.server(args.index).with_context(|| format!("in {}", args.cluster.display()))?;
    let config = Config::load(args.config.as_deref())?;
    let data = args.data.clone().unwrap_or_else(|| default_data_dir(args.index));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let _lock = lock_data_dir(&data)?;
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&data, &config.store)
                .with_context(|| format!("cannot open the store in {}", data.display()))?,
        );
        let hub = tidings_chat::Hub::new(store, config.chat.hub_limits());
        let socket = tidings_chat::udp::bind(me.bind, config.udp.socket_buffer_bytes)
            .await
            .with_context(|| format!("cannot bind UDP {} (server {} of the cluster file)", me.bind, args.index))?;
        if cluster.len() > 1 {
            warn!(
                servers = cluster.len(),
                "this version exchanges no messages between servers: clients see only the messages of this server's \
                 clients"
            );
        }
        let core = UdpCore::new(config.udp.core_settings(), cluster, args.index, Box::new(Solo::new(args.order)));
        let controller = ShutdownController::new();
        let log = if verbose { EventLog::Stdout } else { EventLog::Off };
        let service = UdpService::new(hub, socket, core, log);
        info!(index = args.index, address = %me.bind, mode = %args.order, data = %data.display(), "chat server is ready");
        let task = tokio::spawn(service.run(controller.token()));
        wait_for_signal().await?;
        controller.shutdown(Duration::from_secs(5)).await;
        let _ = task.await;
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Longest line the client sends: the largest UDP payload over IPv4.
const LINE_BYTES_MAX: usize = 65_507;

/// Runs the chat client: each line of standard input (without its CR/LF) is one datagram to
/// `server`; each datagram from `server` is printed on a line of its own. At end of input, on
/// SIGINT (Ctrl+C) or SIGTERM it sends `/quit` and exits.
///
/// # Errors
/// When no UDP socket can be opened or a datagram cannot be sent.
pub fn run_client(server: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(client(server));
    // The stdin thread may be blocked in a read; the process exits without waiting for it.
    runtime.shutdown_background();
    result
}

async fn client(server: SocketAddr) -> anyhow::Result<()> {
    let local: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local).await.context("cannot open a UDP socket")?;
    let (lines_tx, mut lines) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || read_lines(lines_tx));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut buffer = vec![0u8; 65_536];
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    socket.send_to(&line, server).await.with_context(|| format!("cannot send to {server}"))?;
                }
                None => break,
            },
            received = socket.recv_from(&mut buffer) => {
                // ICMP errors (no server yet) surface here on some systems: keep listening.
                if let Ok((n, from)) = received
                    && from_server(from, server)
                {
                    let mut out = std::io::stdout().lock();
                    let text = String::from_utf8_lossy(&buffer[..n]);
                    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
            },
            _ = &mut ctrl_c => break,
            _ = term.recv() => break,
        }
    }
    socket.send_to(b"/quit", server).await.with_context(|| format!("cannot send to {server}"))?;
    Ok(())
}

/// Whether a datagram from `from` is the server's: from its address, or, when the server was
/// given as an unspecified IP (`0.0.0.0:8000`, reached on a local address), from its port.
fn from_server(from: SocketAddr, server: SocketAddr) -> bool {
    from == server || (server.ip().is_unspecified() && from.port() == server.port())
}

/// Reads standard input line by line (a last line without LF counts) and sends each without its
/// CR/LF; a line longer than [`LINE_BYTES_MAX`] is reported and skipped. Ends at end of input.
fn read_lines(lines: mpsc::Sender<Vec<u8>>) {
    let mut input = std::io::BufReader::new(std::io::stdin().lock());
    loop {
        let mut line = Vec::new();
        match (&mut input).take(LINE_BYTES_MAX as u64 + 2).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let complete = line.last() == Some(&b'\n');
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.len() > LINE_BYTES_MAX {
            eprintln!("tidings: a line longer than {LINE_BYTES_MAX} bytes does not fit in a datagram; not sent");
            if !complete && skip_line(&mut input).is_err() {
                return;
            }
            continue;
        }
        if lines.blocking_send(line).is_err() {
            return;
        }
    }
}

/// Skips input up to and including the next LF.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        if let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            input.consume(end + 1);
            return Ok(());
        }
        let n = buffer.len();
        input.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_data_directories_carry_the_two_digit_index() {
        assert_eq!(default_data_dir(2), PathBuf::from("tidings-chat-S02"));
        assert_eq!(default_data_dir(123), PathBuf::from("tidings-chat-S123"));
    }

    #[test]
    fn only_the_servers_datagrams_are_printed() {
        let server: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        assert!(from_server(server, server));
        assert!(!from_server("127.0.0.1:8001".parse().unwrap(), server));
        assert!(!from_server("127.0.0.2:8000".parse().unwrap(), server));
        assert!(from_server(server, "0.0.0.0:8000".parse().unwrap()));
    }

    #[test]
    fn skipping_a_long_line_stops_after_its_lf() {
        let mut input = std::io::BufReader::with_capacity(4, &b"0123456789\nnext\n"[..]);
        skip_line(&mut input).unwrap();
        let mut rest = String::new();
        input.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "next\n");
    }
}
