//! `tidings serve`: opens the store, binds every listener, serves until SIGINT or SIGTERM, then
//! shuts down gracefully (idle sessions are told, transactions in flight may finish).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tracing::{info, warn};

use tidings_chat::udp::{Cluster, EventLog, OrderingMode, Solo, UdpCore, UdpService};
use tidings_core::Address;
use tidings_imap::server::{ImapService, ImapSettings};
use tidings_net::{Admissions, DriveOptions, ListenOptions, ShutdownController, TlsAcceptor};
use tidings_pop3::server::{MaildropLocks, Pop3Service, Pop3Settings};
use tidings_smtp::proto::Mode;
use tidings_smtp::server::{SmtpService, SmtpSettings};
use tidings_store::{AccountError, Directory, SqliteStore, Store, StoreError};

use crate::config::{Config, DEMO_DOMAIN, DEMO_PASSWORD, DEMO_USERS, Service, TlsMode};

/// Runs the node until a signal stops it.
///
/// # Errors
/// Start-up failures: a data directory in use or unusable, a port that cannot be bound, a bad
/// certificate.
pub fn run(mut config: Config, data: PathBuf, demo: bool, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    if demo {
        config.apply_demo()?;
    }
    // A bare local part signs up in the first local domain (the demo domain under --demo).
    if config.web.signup_domain.is_empty() {
        config.web.signup_domain = config.mail.domains.first().cloned().unwrap_or_default();
    }
    match crate::raise_open_files_limit() {
        Ok(limit) => info!(limit, "open files limit (connections and store files share it)"),
        Err(e) => warn!(error = %e, "cannot read or raise the open files limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(serve(config, &data, demo, ready_file));
    // Sessions still running after the grace period are dropped here; the store's writers finish
    // the ops already queued before the process exits.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

async fn serve(config: Config, data: &Path, demo: bool, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let _lock = lock_data_dir(data)?;
    record_demo(data, demo)?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(data, &config.store)
            .with_context(|| format!("cannot open the store in {}", data.display()))?,
    );
    let directory = Arc::new(Directory::new(Arc::clone(&store), &config.mail).map_err(anyhow::Error::msg)?);
    if demo {
        create_demo_accounts(&directory).await?;
    } else {
        check_demo_passwords(&directory, &config).await?;
    }
    let hub = tidings_chat::Hub::new(Arc::clone(&store), config.chat.hub_limits());
    // One IRC service for every IRC listener, so nicknames are unique across plain and TLS ports.
    let irc = tidings_chat::irc::IrcService::new(
        Arc::clone(&hub),
        tidings_chat::irc::IrcSettings {
            hostname: config.server.hostname.clone(),
            config: config.irc.clone(),
            logins: Arc::clone(&directory) as Arc<dyn tidings_chat::irc::Logins>,
            plaintext_auth: config.auth.plaintext,
            auth_failure_delay: Duration::from_millis(config.auth.failure_delay_ms),
        },
    );
    let tls_config = tidings_net::tls::server_config(&config.tls, data, &config.server.hostname)?;
    let acceptor = TlsAcceptor::from(tls_config);

    let controller = ShutdownController::new();
    let drive = DriveOptions {
        // Each service sets its own read timeouts from its config section.
        idle_timeout: Duration::from_secs(300),
        content_timeout: Duration::from_secs(300),
        write_timeout: Duration::from_secs(config.server.write_timeout_secs),
        tls: None,
        read_buffer_bytes: 16 * 1024,
        handshake_timeout: Duration::from_secs(config.server.handshake_timeout_secs),
    };
    let mut admissions: BTreeMap<Service, Arc<Admissions>> = BTreeMap::new();
    // One `Web` (sessions, throttles) shared by every HTTP listener.
    let mut web: Option<Arc<tidings_web::Web>> = None;
    let mut bound = Vec::new();
    let maildrop_locks = MaildropLocks::default();
    for listener in &config.listeners {
        let socket = TcpListener::bind(listener.address)
            .await
            .with_context(|| format!("cannot listen on {} for {}", listener.address, listener.service.name()))?;
        let address = socket.local_addr()?;
        let limits = match listener.service {
            Service::Smtp | Service::Submission => config.smtp.connection_limits(),
            Service::Pop3 => config.pop3.connection_limits(),
            Service::Imap => config.imap.connection_limits(),
            Service::Line | Service::Irc | Service::Http => config.chat.connection_limits(),
        };
        let admissions = Arc::clone(admissions.entry(listener.service).or_insert_with(|| Admissions::new(limits)));
        let starttls = (listener.tls == TlsMode::Starttls).then(|| acceptor.clone());
        let implicit_tls = (listener.tls == TlsMode::Implicit).then(|| acceptor.clone());
        let drive = DriveOptions { tls: starttls, ..drive.clone() };
        let token = controller.token();
        let options = ListenOptions { admissions, implicit_tls, handshake_timeout: drive.handshake_timeout };
        let (hostname, directory) = (config.server.hostname.clone(), Arc::clone(&directory));
        let (plaintext_auth, auth_failure_delay) =
            (config.auth.plaintext, Duration::from_millis(config.auth.failure_delay_ms));
        match listener.service {
            Service::Smtp | Service::Submission => {
                let mode = if listener.service == Service::Smtp { Mode::Mx } else { Mode::Submission };
                let config = config.smtp.clone();
                let service = SmtpService::new(SmtpSettings {
                    mode,
                    hostname,
                    config,
                    directory,
                    plaintext_auth,
                    auth_failure_delay,
                    drive,
                });
                tokio::spawn(tidings_net::serve(socket, options, token, service));
            }
            Service::Pop3 => {
                let (config, locks) = (config.pop3.clone(), maildrop_locks.clone());
                let service = Pop3Service::new(Pop3Settings {
                    hostname,
                    config,
                    directory,
                    plaintext_auth,
                    auth_failure_delay,
                    drive,
                    locks,
                });
                tokio::spawn(tidings_net::serve(socket, options, token, service));
            }
            Service::Imap => {
                let config = config.imap.clone();
                let service = ImapService::new(ImapSettings {
                    hostname,
                    config,
                    directory,
                    plaintext_auth,
                    auth_failure_delay,
                    drive,
                });
                tokio::spawn(tidings_net::serve(socket, options, token, service));
            }
            Service::Line => {
                let service = tidings_chat::line::LineService::new(Arc::clone(&hub), config.line.clone());
                tokio::spawn(tidings_net::serve(socket, options, token, service));
            }
            Service::Http => {
                let web = web.get_or_insert_with(|| {
                    tidings_web::Web::new(tidings_web::WebSettings {
                        config: config.web.clone(),
                        hub: Arc::clone(&hub),
                        directory,
                        plaintext_auth,
                        auth_failure_delay,
                        hostname,
                        outbound: config.outbound.clone(),
                        message_bytes_max: config.smtp.message_bytes_max,
                    })
                });
                let service = tidings_web::HttpService::new(Arc::clone(web));
                tokio::spawn(tidings_net::serve(socket, options, token, service));
            }
            Service::Irc => {
                tokio::spawn(tidings_net::serve(socket, options, token, Arc::clone(&irc)));
            }
        }
        info!(service = listener.service.name(), %address, tls = ?listener.tls, "listening");
        bound.push((listener.service.name(), address, listener.tls));
    }
    let mut udp_bound = None;
    if let Some(address) = config.udp.bind_address().map_err(anyhow::Error::msg)? {
        let socket = tidings_chat::udp::bind(address, config.udp.socket_buffer_bytes)
            .await
            .with_context(|| format!("cannot bind UDP {address} for the UDP chat server ([udp] address)"))?;
        let address = socket.local_addr()?;
        let core = UdpCore::new(
            config.udp.core_settings(),
            Cluster::single(address),
            1,
            Box::new(Solo::new(OrderingMode::default())),
        );
        let log = if tracing::enabled!(target: "tidings::transcript", tracing::Level::DEBUG) {
            EventLog::Transcript
        } else {
            EventLog::Off
        };
        let service = UdpService::new(Arc::clone(&hub), socket, core, log);
        tokio::spawn(service.run(controller.token()));
        info!(service = "udp", %address, "listening");
        udp_bound = Some(address);
    }
    if let Some(path) = ready_file {
        write_ready_file(&path, &bound, udp_bound)?;
    }
    info!(hostname = %config.server.hostname, data = %data.display(), "tidings is ready");

    wait_for_signal().await?;
    info!("shutting down: refusing new connections, finishing transactions in flight");
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    tokio::select! {
        finished = controller.shutdown(grace) => if !finished {
            warn!(grace_secs = grace.as_secs(), "sessions still running after the grace period are dropped");
        },
        _ = wait_for_signal() => warn!("second signal: stopping now, dropping sessions still running"),
    }
    info!("stopped");
    Ok(())
}

/// Holds an exclusive lock on `<data>/serve.lock` so that two nodes never serve one directory.
pub(crate) fn lock_data_dir(data: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let path = data.join("serve.lock");
    let file = File::options().create(true).truncate(false).write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("{} is in use by another tidings serve", data.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Marks `data` as a demo node's directory (or unmarks it), so that `tidings account` on it applies
/// the demo domains: without them `account add ta@localhost` would create an account the node
/// never delivers to (it maps `localhost` to the demo domain), and a second `ta` that makes the
/// bare login name `ta` ambiguous.
pub fn record_demo(data: &Path, demo: bool) -> anyhow::Result<()> {
    let path = data.join(DEMO_MARKER);
    let result = if demo {
        std::fs::write(&path, "This directory was last served with `tidings serve --demo`.\n")
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    };
    result.with_context(|| format!("cannot update {}", path.display()))
}

/// Whether `data` was last served with `--demo` (see [`record_demo`]).
pub fn is_demo_data_dir(data: &Path) -> bool {
    data.join(DEMO_MARKER).is_file()
}

/// The marker file of a demo node's data directory.
const DEMO_MARKER: &str = "demo";

/// Creates the demo accounts that do not exist yet (existing ones keep their password).
async fn create_demo_accounts(directory: &Directory) -> anyhow::Result<()> {
    for user in DEMO_USERS {
        let address = Address::from_parts(user, DEMO_DOMAIN);
        match directory.create_account(&address, DEMO_PASSWORD).await {
            Ok(()) => info!(%address, "created demo account"),
            Err(AccountError::Store(StoreError::AccountExists(_))) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create demo account {address}")),
        }
    }
    Ok(())
}

/// A directory once served with `--demo` keeps its demo accounts and their well-known password.
/// Served without `--demo` on anything but loopback, that would be an open door: refuse to start
/// until the password is changed or the accounts are removed. On loopback only, warn.
async fn check_demo_passwords(directory: &Directory, config: &Config) -> anyhow::Result<()> {
    let mut exposed = Vec::new();
    for user in DEMO_USERS {
        let address = Address::from_parts(user, DEMO_DOMAIN);
        if directory.authenticate(&address.to_string(), DEMO_PASSWORD).await.is_ok() {
            exposed.push(address.to_string());
        }
    }
    if exposed.is_empty() {
        return Ok(());
    }
    let accounts = exposed.join(", ");
    if config.listeners.iter().any(|l| !l.address.ip().is_loopback()) {
        bail!(
            "{accounts} still have the public demo password and this node listens beyond loopback; \
             change it (tidings account passwd ADDRESS) or remove them (tidings account remove ADDRESS)"
        );
    }
    warn!(accounts, "demo accounts still have the public demo password");
    Ok(())
}

/// Writes the bound listeners as TOML, atomically (temporary file, then rename), so a reader
/// polling for the file never sees half of it. Each TCP listener is a `[[listener]]` with its
/// service name, address and TLS mode; the UDP chat server, when on, is `[udp] address`.
fn write_ready_file(path: &Path, bound: &[(&str, SocketAddr, TlsMode)], udp: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut text = format!("pid = {}\n", std::process::id());
    for (service, address, tls) in bound {
        let tls = match tls {
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::None => "none",
        };
        text.push_str(&format!("\n[[listener]]\nservice = \"{service}\"\naddress = \"{address}\"\ntls = \"{tls}\"\n"));
    }
    if let Some(address) = udp {
        text.push_str(&format!("\n[udp]\naddress = \"{address}\"\n"));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub(crate) async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_marker_follows_the_last_serve_mode() {
        let dir = std::env::temp_dir().join(format!("tidings-demo-marker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!is_demo_data_dir(&dir));
        record_demo(&dir, false).unwrap();
        assert!(!is_demo_data_dir(&dir), "unmarking an unmarked directory is fine");
        record_demo(&dir, true).unwrap();
        record_demo(&dir, true).unwrap();
        assert!(is_demo_data_dir(&dir));
        record_demo(&dir, false).unwrap();
        assert!(!is_demo_data_dir(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
