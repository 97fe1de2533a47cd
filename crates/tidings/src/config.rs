//! The configuration file: one TOML document holding every listener and every limit, each with a
//! documented default (README.md, "Configuration reference"). A missing file means all defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use tidings_chat::ChatConfig;
use tidings_chat::irc::IrcConfig;
use tidings_chat::line::LineConfig;
use tidings_chat::udp::UdpConfig;
use tidings_imap::server::ImapConfig;
use tidings_net::PlaintextAuth;
use tidings_net::tls::TlsConfig;
use tidings_pop3::server::Pop3Config;
use tidings_smtp::server::SmtpConfig;
use tidings_store::{DirectoryConfig, StoreConfig};
use tidings_web::{HttpConfig, OutboundConfig};

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[store]`
    pub store: StoreConfig,
    /// `[tls]`
    pub tls: TlsConfig,
    /// `[mail]`
    pub mail: DirectoryConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[smtp]`: limits of the `smtp` and `submission` services.
    pub smtp: SmtpConfig,
    /// `[pop3]`
    pub pop3: Pop3Config,
    /// `[imap]`
    pub imap: ImapConfig,
    /// `[chat]`: limits shared by the chat front-ends.
    pub chat: ChatConfig,
    /// `[line]`: the group-chat line protocol.
    pub line: LineConfig,
    /// `[udp]`: the classic UDP chat protocol.
    pub udp: UdpConfig,
    /// `[web]`: the HTTP listener and the WebSocket chat API.
    pub web: HttpConfig,
    /// `[outbound]`: where mail for other domains goes.
    pub outbound: OutboundConfig,
    /// `[irc]`: the IRC front-end.
    pub irc: IrcConfig,
    /// `[[listener]]`: every socket the server binds. Giving any replaces all the defaults.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            tls: TlsConfig::default(),
            mail: DirectoryConfig::default(),
            auth: AuthConfig::default(),
            smtp: SmtpConfig::default(),
            pop3: Pop3Config::default(),
            imap: ImapConfig::default(),
            chat: ChatConfig::default(),
            line: LineConfig::default(),
            udp: UdpConfig::default(),
            web: HttpConfig::default(),
            outbound: OutboundConfig::default(),
            irc: IrcConfig::default(),
            listeners: vec![
                ListenerConfig::new(Service::Smtp, "127.0.0.1:2525"),
                ListenerConfig::new(Service::Submission, "127.0.0.1:2587"),
                ListenerConfig::new(Service::Pop3, "127.0.0.1:1110"),
                ListenerConfig::new(Service::Imap, "127.0.0.1:1143"),
                ListenerConfig { tls: TlsMode::None, ..ListenerConfig::new(Service::Line, "127.0.0.1:5555") },
                ListenerConfig { tls: TlsMode::None, ..ListenerConfig::new(Service::Irc, "127.0.0.1:6667") },
                ListenerConfig { tls: TlsMode::Implicit, ..ListenerConfig::new(Service::Irc, "127.0.0.1:6697") },
                ListenerConfig { tls: TlsMode::None, ..ListenerConfig::new(Service::Http, "127.0.0.1:8080") },
            ],
        }
    }
}

/// `[server]`: this node.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The name this server gives itself in greetings and `Received:` fields. Default: the
    /// machine's hostname (`/proc/sys/kernel/hostname`), else `localhost`.
    pub hostname: String,
    /// Where the shard databases, the generated certificate and the lock live. Default
    /// `tidings-data` (relative to the working directory). `--data` overrides it.
    pub data_dir: PathBuf,
    /// How long a shutdown waits for sessions in the middle of a transaction, in seconds. Default 30.
    pub shutdown_grace_secs: u64,
    /// Longest a write to a client may block (a client that does not read is dropped), in
    /// seconds. Default 60.
    pub write_timeout_secs: u64,
    /// Longest a TLS handshake may take, in seconds. Default 30.
    pub handshake_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: system_hostname(),
            data_dir: PathBuf::from("tidings-data"),
            shutdown_grace_secs: 30,
            write_timeout_secs: 60,
            handshake_timeout_secs: 30,
        }
    }
}

/// `[auth]`: password logins on every protocol.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Where passwords may be sent without TLS: `always`, `loopback` or `never`. Default `loopback`.
    pub plaintext: PlaintextAuth,
    /// Delay before answering a failed login, in milliseconds (slows password guessing). Default 2000.
    pub failure_delay_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { plaintext: PlaintextAuth::Loopback, failure_delay_ms: 2000 }
    }
}

/// What a listener serves.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// SMTP for incoming mail (RFC 5321): local recipients from anyone, relaying never.
    Smtp,
    /// Message submission (RFC 6409): AUTH required, sender must be the user.
    Submission,
    /// POP3 (RFC 1939).
    Pop3,
    /// IMAP (RFC 9051, RFC 3501).
    Imap,
    /// The group-chat line protocol (PROTOCOLS.md §1); cleartext or implicit TLS.
    Line,
    /// HTTP/1.1 with the WebSocket chat API at `/ws` (RFC 6455); `tls = "none"` or `"implicit"`
    /// (https).
    Http,
    /// IRC (RFC 2812, IRCv3): `tls = "none"` (port 6667) or `"implicit"` (port 6697).
    Irc,
}

impl Service {
    /// The name used in the config and the ready file.
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Pop3 => "pop3",
            Service::Imap => "imap",
            Service::Line => "line",
            Service::Http => "http",
            Service::Irc => "irc",
        }
    }
}

/// How a listener uses TLS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Cleartext first, STARTTLS / STLS offered (RFC 3207, RFC 2595). The default.
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314), as on ports 465 and 995.
    Implicit,
    /// No TLS on this listener.
    None,
}

/// `[[listener]]`: one socket.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `smtp`, `submission`, `pop3`, `imap`, `line`, `irc` or `http`.
    pub service: Service,
    /// `IP:port`; port 0 picks a free port (see `--ready-file`).
    pub address: SocketAddr,
    /// `starttls` (default), `implicit` or `none`.
    #[serde(default)]
    pub tls: TlsMode,
}

impl ListenerConfig {
    fn new(service: Service, address: &str) -> ListenerConfig {
        ListenerConfig { service, address: address.parse().expect("default address"), tls: TlsMode::Starttls }
    }
}

impl Config {
    /// Reads `path`; `None` gives the defaults.
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid configuration (unknown keys are errors, so
    /// a typo never silently falls back to a default).
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: non-empty names, sane limits.
    ///
    /// # Errors
    /// The first problem, naming its key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !tidings_core::is_valid_domain(&self.server.hostname) {
            bail!("[server] hostname {:?} is not a valid host name", self.server.hostname);
        }
        self.store.validate().map_err(anyhow::Error::msg)?;
        if self.server.write_timeout_secs == 0 || self.server.handshake_timeout_secs == 0 {
            bail!("[server] write_timeout_secs and handshake_timeout_secs must be positive");
        }
        self.smtp.validate().map_err(anyhow::Error::msg)?;
        self.pop3.validate().map_err(anyhow::Error::msg)?;
        self.imap.validate().map_err(anyhow::Error::msg)?;
        self.chat.validate().map_err(anyhow::Error::msg)?;
        self.udp.validate().map_err(anyhow::Error::msg)?;
        self.web.validate().map_err(anyhow::Error::msg)?;
        self.outbound.validate().map_err(anyhow::Error::msg)?;
        self.irc.validate().map_err(anyhow::Error::msg)?;
        let mut seen = std::collections::BTreeSet::new();
        for l in &self.listeners {
            if l.address.port() != 0 && !seen.insert(l.address) {
                bail!("[[listener]] address {} is used twice", l.address);
            }
            if matches!(l.service, Service::Line | Service::Irc | Service::Http) && l.tls == TlsMode::Starttls {
                bail!(
                    "[[listener]] {} on {} has no STARTTLS: set tls = \"none\" or \"implicit\"",
                    l.service.name(),
                    l.address
                );
            }
        }
        Ok(())
    }

    /// The demo node: domain `mmsys.upenn.edu` with `localhost` as its alias, loopback only.
    ///
    /// # Errors
    /// When a listener is configured on an address other than loopback.
    pub fn apply_demo(&mut self) -> anyhow::Result<()> {
        for l in &self.listeners {
            if !l.address.ip().is_loopback() {
                bail!(
                    "--demo serves well-known passwords and binds loopback only, but a listener is configured on {}",
                    l.address
                );
            }
        }
        if let Some(address) = self.udp.bind_address().map_err(anyhow::Error::msg)?
            && !address.ip().is_loopback()
        {
            bail!("--demo binds loopback only, but [udp] address is {address}");
        }
        self.apply_demo_domains();
        Ok(())
    }

    /// The demo node's `[mail]` part alone: `mmsys.upenn.edu` local, `localhost` its alias. What
    /// `tidings account` applies on the data directory of a demo node, so that an address it is
    /// given means the account the node would deliver to.
    pub fn apply_demo_domains(&mut self) {
        if !self.mail.domains.iter().any(|d| d == DEMO_DOMAIN) {
            self.mail.domains.push(DEMO_DOMAIN.into());
        }
        self.mail.domain_aliases.entry("localhost".into()).or_insert_with(|| DEMO_DOMAIN.into());
    }
}

/// The demo domain.
pub const DEMO_DOMAIN: &str = "mmsys.upenn.edu";
/// The demo accounts' local parts; every one has the password [`DEMO_PASSWORD`].
pub const DEMO_USERS: [&str; 3] = ["instructor", "ta", "cis505"];
/// The demo accounts' password.
pub const DEMO_PASSWORD: &str = "CIS505";

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_lowercase())
        .filter(|h| tidings_core::is_valid_domain(h))
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config, Config::default());
        let ports: Vec<_> = config.listeners.iter().map(|l| (l.service, l.address.port())).collect();
        assert_eq!(
            ports,
            vec![
                (Service::Smtp, 2525),
                (Service::Submission, 2587),
                (Service::Pop3, 1110),
                (Service::Imap, 1143),
                (Service::Line, 5555),
                (Service::Irc, 6667),
                (Service::Irc, 6697),
                (Service::Http, 8080)
            ]
        );
        assert_eq!(config.smtp.message_bytes_max, 25 << 20);
        assert_eq!(config.smtp.recipients_max, 100);
    }

    /// README.md's configuration reference must be the complete, true set of defaults.
    #[test]
    fn readme_reference_block_is_the_defaults() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("## Configuration reference").expect("reference section");
        let block = &readme[start..];
        let block = &block[block.find("```toml\n").expect("toml block") + 8..];
        let block = &block[..block.find("```").expect("end of block")];
        let documented: Config = toml::from_str(block).expect("the reference block parses");
        assert_eq!(documented, Config::default());
        for key in ["hostname", "certificate", "private_key", "postmaster", "server_name"] {
            assert!(block.contains(&format!("# {key} = ")), "{key} is documented");
        }
    }

    #[test]
    fn the_udp_chat_server_is_on_by_default_and_can_be_turned_off() {
        let config = Config::default();
        assert_eq!(config.udp.bind_address().unwrap(), Some("127.0.0.1:8000".parse().unwrap()));
        for off in ["[udp]\naddress = \"\"\n", "[udp]\nenabled = false\n"] {
            let config: Config = toml::from_str(off).unwrap();
            config.validate().unwrap();
            assert_eq!(config.udp.bind_address().unwrap(), None, "{off}");
        }
        let bad: Config = toml::from_str("[udp]\nrooms = 5\n").unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn chat_and_http_listeners_refuse_starttls() {
        for service in ["line", "irc", "http"] {
            let text =
                format!("[[listener]]\nservice = \"{service}\"\naddress = \"127.0.0.1:0\"\ntls = \"starttls\"\n");
            let config: Config = toml::from_str(&text).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("has no STARTTLS"), "{service}: {error}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<Config>("[smtp]\nmessage_bytes_mx = 5\n").is_err());
    }

    #[test]
    fn listeners_replace_the_defaults() {
        let config: Config =
            toml::from_str("[[listener]]\nservice = \"pop3\"\naddress = \"127.0.0.1:0\"\ntls = \"implicit\"\n")
                .unwrap();
        assert_eq!(config.listeners.len(), 1);
        assert_eq!(config.listeners[0].tls, TlsMode::Implicit);
    }

    #[test]
    fn demo_refuses_non_loopback_listeners() {
        let mut config: Config =
            toml::from_str("[[listener]]\nservice = \"smtp\"\naddress = \"0.0.0.0:25\"\n").unwrap();
        assert!(config.apply_demo().is_err());
        let mut config: Config = toml::from_str("[udp]\naddress = \"0.0.0.0:8000\"\n").unwrap();
        assert!(config.apply_demo().is_err());
        let mut config = Config::default();
        config.apply_demo().unwrap();
        assert_eq!(config.mail.domain_aliases.get("localhost").map(String::as_str), Some(DEMO_DOMAIN));
    }

    #[test]
    fn demo_domains_alone_ignore_the_listeners_and_are_idempotent() {
        let mut config: Config =
            toml::from_str("[[listener]]\nservice = \"smtp\"\naddress = \"0.0.0.0:25\"\n").unwrap();
        config.apply_demo_domains();
        config.apply_demo_domains();
        assert_eq!(config.mail.domains, vec![DEMO_DOMAIN.to_owned()]);
        assert_eq!(config.mail.domain_aliases.get("localhost").map(String::as_str), Some(DEMO_DOMAIN));
    }
}
