//! IRC (RFC 1459, RFC 2812, modern.ircdocs.horse and IRCv3) on ports 6667 and 6697 (TLS): the
//! rooms of the [`Hub`] as channels, for clients such as irssi and WeeChat.
//!
//! - [`message`]: the message grammar (tags, source, command, parameters) with the input limits
//!   (512 octets, plus 4,096 of client tags; 417 ERR_INPUTTOOLONG past them).
//! - [`numeric`]: reply numerics by name.
//! - [`text`]: nicknames, names of other front-ends' members made valid for IRC, masks,
//!   server-time stamps, base64 and SASL PLAIN.
//! - `session`: one connection's protocol state (registration, capabilities, commands, the
//!   rendering of hub events), a [`LineSession`](crate::session::LineSession) run by the line
//!   driver.
//!
//! Channel `#g` is the hub's room `#g` (ASCII case-folded), shared with the line protocol's group
//! `g` and every other front-end. Members of other front-ends appear under a valid nickname (each
//! character a nickname may not hold becomes `_`); line-protocol users have the user name `line`.
//! Nicknames are unique among IRC connections and do not take a name another front-end's member
//! is using at the time (433).
//!
//! Logins: `PASS account:password` (or `PASS password` with the nickname as the account's local
//! part) before registration, or SASL PLAIN after `CAP REQ :sasl` (IRCv3 SASL 3.1). Passwords are
//! taken only where `[auth] plaintext` allows them (TLS, else the policy); a failed login waits
//! `[auth] failure_delay_ms` before the answer. Without a login a client is a guest, when
//! `[irc] guests` allows it.
//!
//! IRCv3: `CAP LS 302`, `message-tags`, `server-time`, `echo-message`, `account-tag`, `batch`,
//! `draft/chathistory` (LATEST, BEFORE, AFTER, AROUND, BETWEEN with `msgid=` and `timestamp=`),
//! `sasl`, `cap-notify`, `multi-prefix`, `away-notify`, `userhost-in-names`. Client-only tags
//! (`+…`) and TAGMSG are accepted and not relayed: the hub carries no tags. A room message longer
//! than one IRC line holds (another front-end's, up to `[chat] body_bytes_max`) is sent as several
//! PRIVMSGs, the first with the message's `msgid`.

pub mod message;
pub mod numeric;
mod registry;
mod session;
pub mod text;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidings_core::Address;
use tidings_net::{Accepted, PlaintextAuth, Service};
use tidings_store::{Directory, LoginError};

use crate::Hub;
use crate::session::{LineOptions, run};
use registry::Registry;
use session::Session;

/// `[irc]`: the IRC front-end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IrcConfig {
    /// The server's name in replies and prefixes. Default: `[server] hostname`.
    pub server_name: Option<String>,
    /// The network's name (ISUPPORT `NETWORK`, the welcome line). Default `tidings`.
    pub network_name: String,
    /// Message of the day, lines separated by `\n`; empty sends 422 ERR_NOMOTD. Default a short
    /// welcome. At most 16 KiB.
    pub motd: String,
    /// Whether a client may use IRC without logging in (as a guest). Default true.
    pub guests: bool,
    /// Longest nickname, octets (ISUPPORT `NICKLEN`), 1 to 64. Default 30.
    pub nick_bytes_max: usize,
    /// Seconds of silence from a registered client before the server sends PING. Default 120.
    pub ping_interval_secs: u64,
    /// Seconds the server waits for any line after its PING before it closes the connection
    /// ("Ping timeout"). Default 60.
    pub ping_timeout_secs: u64,
    /// Seconds a client has from connecting to finish registration (NICK, USER, CAP END, SASL).
    /// Default 60.
    pub registration_timeout_secs: u64,
    /// Seconds a write may stall before the connection is closed. Default 30.
    pub write_timeout_secs: u64,
    /// Lines per second a connection may send on average; 0 turns flood control off. Default 5.
    pub flood_lines_per_sec: f64,
    /// Lines a connection may send at once before the rate applies; past both the client is
    /// disconnected with "Excess Flood". Default 25.
    pub flood_burst: u32,
    /// Most messages one CHATHISTORY reply holds (ISUPPORT `CHATHISTORY`), 1 to 1,000. Default 100.
    pub history_page_max: usize,
}

impl Default for IrcConfig {
    fn default() -> Self {
        IrcConfig {
            server_name: None,
            network_name: "tidings".into(),
            motd: "Welcome to tidings.\nChannels here are the rooms of every tidings chat front-end.".into(),
            guests: true,
            nick_bytes_max: 30,
            ping_interval_secs: 120,
            ping_timeout_secs: 60,
            registration_timeout_secs: 60,
            write_timeout_secs: 30,
            flood_lines_per_sec: 5.0,
            flood_burst: 25,
            history_page_max: 100,
        }
    }
}

/// Longest message of the day, octets.
pub const MOTD_BYTES_MAX: usize = 16 * 1024;

impl IrcConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// The first value out of range, naming its key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.server_name
            && (name.is_empty() || name.contains([' ', '!', '@', ':', ',']) || name.len() > 63 || !name.is_ascii())
        {
            return Err(format!("[irc] server_name {name:?} must be 1 to 63 ASCII characters without ' !@:,'"));
        }
        let network = &self.network_name;
        if network.is_empty() || network.len() > 32 || !network.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(format!("[irc] network_name {network:?} must be 1 to 32 visible ASCII characters"));
        }
        if self.motd.len() > MOTD_BYTES_MAX {
            return Err(format!("[irc] motd must be at most {MOTD_BYTES_MAX} octets"));
        }
        if !(1..=tidings_core::NICK_BYTES_MAX).contains(&self.nick_bytes_max) {
            return Err(format!("[irc] nick_bytes_max must be 1..={}", tidings_core::NICK_BYTES_MAX));
        }
        if self.ping_interval_secs == 0
            || self.ping_timeout_secs == 0
            || self.registration_timeout_secs == 0
            || self.write_timeout_secs == 0
        {
            return Err("[irc] ping_interval_secs, ping_timeout_secs, registration_timeout_secs and \
                        write_timeout_secs must be positive"
                .into());
        }
        if !self.flood_lines_per_sec.is_finite() || self.flood_lines_per_sec < 0.0 || self.flood_burst == 0 {
            return Err("[irc] flood_lines_per_sec must be 0 or more and flood_burst positive".into());
        }
        if !(1..=1000).contains(&self.history_page_max) {
            return Err("[irc] history_page_max must be 1..=1000".into());
        }
        Ok(())
    }
}

/// A boxed login future.
pub type LoginFuture<'a> = Pin<Box<dyn Future<Output = Result<Address, LoginError>> + Send + 'a>>;

/// Checks logins (the [`Directory`] in the server; a table in tests).
pub trait Logins: Send + Sync + 'static {
    /// The account that `user` (an address, or a local part only one account has) and
    /// `password` log in to.
    ///
    /// # Errors
    /// [`LoginError::Invalid`] for a wrong name or password, [`LoginError::Unavailable`] when the
    /// accounts cannot be read.
    fn login<'a>(&'a self, user: &'a str, password: &'a str) -> LoginFuture<'a>;
}

impl Logins for Directory {
    fn login<'a>(&'a self, user: &'a str, password: &'a str) -> LoginFuture<'a> {
        Box::pin(async move { self.authenticate(user, password).await.map(|account| account.address) })
    }
}

/// What the IRC service needs besides the hub.
pub struct IrcSettings {
    /// `[server] hostname`: the server name unless `[irc] server_name` is set.
    pub hostname: String,
    /// `[irc]`.
    pub config: IrcConfig,
    /// Where logins are checked.
    pub logins: Arc<dyn Logins>,
    /// `[auth] plaintext`: where passwords may be sent without TLS.
    pub plaintext_auth: PlaintextAuth,
    /// `[auth] failure_delay_ms`: the wait before a failed login is answered.
    pub auth_failure_delay: Duration,
}

/// State every IRC connection of the node shares: settings, the nickname registry, counters.
pub(crate) struct Shared {
    pub hub: Arc<Hub>,
    pub config: IrcConfig,
    pub server_name: String,
    pub logins: Arc<dyn Logins>,
    pub plaintext_auth: PlaintextAuth,
    pub auth_failure_delay: Duration,
    pub registry: Registry,
    /// When the service started, for 003 RPL_CREATED.
    pub created: String,
}

/// The IRC service: one per node, shared by every IRC listener (plain and TLS), so nicknames are
/// unique across them.
pub struct IrcService {
    shared: Arc<Shared>,
}

impl IrcService {
    /// The service over `hub`.
    pub fn new(hub: Arc<Hub>, settings: IrcSettings) -> Arc<IrcService> {
        let server_name = settings.config.server_name.clone().unwrap_or(settings.hostname);
        Arc::new(IrcService {
            shared: Arc::new(Shared {
                hub,
                config: settings.config,
                server_name,
                logins: settings.logins,
                plaintext_auth: settings.plaintext_auth,
                auth_failure_delay: settings.auth_failure_delay,
                registry: Registry::default(),
                created: tidings_core::date::rfc5322(tidings_core::date::now_secs()),
            }),
        })
    }
}

impl Service for IrcService {
    fn refusal(&self, reason: &str) -> Vec<u8> {
        format!("ERROR :Closing Link: ({reason})\r\n").into_bytes()
    }

    async fn handle(self: Arc<Self>, conn: Accepted) {
        let config = &self.shared.config;
        let options = LineOptions {
            line_bytes_max: message::LINE_BYTES_MAX,
            idle_timeout: Duration::from_secs(config.ping_interval_secs),
            write_timeout: Duration::from_secs(config.write_timeout_secs),
        };
        let session =
            Session::new(Arc::clone(&self.shared), conn.peer, conn.stream.is_tls(), std::time::Instant::now());
        let hub = Arc::clone(&self.shared.hub);
        run(&hub, conn, session, &options).await;
    }
}
