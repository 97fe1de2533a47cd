//! `tidings`: one program for a mail and chat service.
//!
//! `tidings serve` runs a node; `tidings account` manages accounts in a data directory (safe while
//! the node runs); `tidings bench` drives a server with load; `tidings mail` is a mail client for
//! any IMAP and SMTP submission server; `tidings chat-server` and `tidings chat-client` are a
//! server of a classic UDP chat cluster and its client.

mod account;
mod bench;
mod chat;
mod config;
mod mail;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a server's mix of small message buffers and large
/// reply buffers across many threads fragments glibc's heap until the process holds hundreds of
/// megabytes it no longer uses; mimalloc keeps the resident size near what is live.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Octets of free memory at the top of a C-library heap that glibc keeps instead of giving back.
///
/// SQLite allocates through the C library's malloc, not the allocator above. glibc returns a
/// thread arena's free top to the kernel (`madvise`) whenever it exceeds the trim threshold
/// (128 KiB by default); a shard writer crossed it about once per commit, and every such call
/// makes each core flush its TLB: 8,000 calls a second at 8,000 chat posts a second. With 4 MiB
/// kept per arena, none is made under that load.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_TRIM_THRESHOLD: libc::c_int = 4 << 20;

/// Sets [`MALLOC_TRIM_THRESHOLD`] (glibc `mallopt(M_TRIM_THRESHOLD)`), before any thread starts.
fn tune_c_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator; it is called before any other
    // thread exists, and its failure (0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
    }
}
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// tidings: a distributed mail and chat service in one program.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// More output: -v adds a protocol transcript per connection ("[id] C: …" / "[id] S: …",
    /// passwords never shown), and for chat-server its event log on standard output; -vv adds
    /// debug logs.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration and the data live (shared by the subcommands that use a data directory).
#[derive(clap::Args, Clone)]
struct Location {
    /// TOML configuration file; without it every setting has its documented default.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Data directory (overrides `[server] data_dir`).
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: SMTP, submission, POP3, IMAP and chat (line protocol, UDP) on the embedded store.
    Serve {
        #[command(flatten)]
        location: Location,
        /// Demo node: domain mmsys.upenn.edu (alias localhost) with accounts instructor, ta and
        /// cis505, password CIS505; binds loopback addresses only.
        #[arg(long)]
        demo: bool,
        /// Write the bound addresses (TOML) to this file once every listener is up.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Manage accounts in the data directory (one last served with --demo: with the demo domains,
    /// so that x@localhost means x@mmsys.upenn.edu, as it does to the node).
    Account {
        #[command(flatten)]
        location: Location,
        #[command(subcommand)]
        action: account::Action,
    },
    /// Load generators for measuring a server.
    Bench {
        /// Print each report as one JSON object on a line of its own instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        load: bench::Load,
    },
    /// A mail client for IMAP and SMTP submission: send, list, read, delete, move, folders, and
    /// import or export mbox files and Maildir folders.
    Mail(mail::MailArgs),
    /// Run server INDEX of a classic UDP chat cluster (PROTOCOLS.md §2) on the address the
    /// cluster file gives it; -v logs one line per event to standard output.
    ChatServer(chat::ServerArgs),
    /// The classic UDP chat client: sends each line of standard input as a datagram to the
    /// server, prints each datagram it receives; end of input or Ctrl+C sends /quit.
    ChatClient {
        /// The server's address, IP:port.
        server: std::net::SocketAddr,
    },
}

fn main() -> ExitCode {
    tune_c_malloc();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Serve { location, demo, ready_file } => {
            load(&location).and_then(|(config, data)| serve::run(config, data, demo, ready_file))
        }
        Command::Account { location, action } => {
            load(&location).and_then(|(config, data)| account::run(&config, &data, action))
        }
        Command::Bench { json, load } => bench::run(load, json),
        Command::Mail(args) => mail::run(args),
        Command::ChatServer(args) => chat::run_server(args, cli.verbose > 0),
        Command::ChatClient { server } => chat::run_client(server),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidings: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises this process's soft limit on open files (RLIMIT_NOFILE) to its hard limit: every
/// connection is a descriptor, and distributions ship a soft limit of 1,024. Returns the soft limit
/// now in force; the hard limit itself can only be raised by the administrator (`ulimit -Hn`,
/// systemd's `LimitNOFILE=`).
///
/// # Errors
/// When getrlimit or setrlimit fails.
pub(crate) fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

fn load(location: &Location) -> anyhow::Result<(config::Config, PathBuf)> {
    let config = config::Config::load(location.config.as_deref())?;
    let data = location.data.clone().unwrap_or_else(|| config.server.data_dir.clone());
    Ok((config, data))
}

fn init_tracing(verbose: u8) {
    // imap-next opens an INFO span around every fragment it reads or writes, which the fmt layer
    // records (fields formatted into a new string) whether or not an event is ever logged in it:
    // 7% of the IMAP server's instructions under load. Its events are warnings.
    let quiet = Targets::new().with_default(LevelFilter::INFO).with_target("imap_next", LevelFilter::WARN);
    let filter = match verbose {
        0 => quiet,
        1 => quiet.with_target("tidings::transcript", LevelFilter::DEBUG),
        _ => Targets::new().with_default(LevelFilter::DEBUG),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_target(false))
        .with(filter)
        .init();
}
