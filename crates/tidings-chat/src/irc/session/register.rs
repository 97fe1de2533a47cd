//! Registration (RFC 2812 §3.1: PASS, NICK, USER), capability negotiation (IRCv3 CAP 3.2),
//! SASL PLAIN (IRCv3 SASL 3.1, RFC 4616), and the welcome burst (001–005, LUSERS, MOTD).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tidings_core::{Address, Frontend};
use tidings_store::LoginError;
use tracing::{info, warn};

use super::{Session, TEXT_BYTES_MAX, USER_BYTES_MAX, cap, truncate};
use crate::hub::Identity;
use crate::irc::message::Message;
use crate::irc::numeric::*;
use crate::irc::text::{base64_decode, is_valid_nick, sanitize_user, sasl_plain};
use crate::session::Flow;

/// Longest AUTHENTICATE chunk, octets of base64 (IRCv3 SASL 3.1).
const SASL_CHUNK_BYTES: usize = 400;
/// Longest SASL PLAIN response in total, octets of base64.
const SASL_RESPONSE_BYTES_MAX: usize = 2000;
/// ISUPPORT tokens per 005 line (modern.ircdocs.horse: at most 13 besides the nickname).
const ISUPPORT_TOKENS_PER_LINE: usize = 13;

impl Session {
    /// Whether a password may be sent on this connection (TLS, or `[auth] plaintext`).
    fn passwords_allowed(&self) -> bool {
        self.tls || self.shared.plaintext_auth.allows(self.peer.ip())
    }

    /// The capabilities offered to this connection.
    fn offered(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        cap::ALL.into_iter().filter(|(_, bit)| *bit != cap::SASL || self.passwords_allowed())
    }

    pub(super) async fn cap(&mut self, msg: &Message) -> Flow {
        if !self.enough(msg, 1) {
            return Flow::Continue;
        }
        let sub = msg.params[0].to_ascii_uppercase();
        let registered = self.conn.is_some();
        match sub.as_str() {
            "LS" => {
                if !registered {
                    self.negotiating = true;
                }
                if msg.params.get(1).and_then(|v| v.parse::<u32>().ok()).is_some_and(|v| v >= 302) {
                    self.cap_302 = true;
                    self.caps |= cap::CAP_NOTIFY;
                }
                let list: Vec<String> = self
                    .offered()
                    .map(|(name, bit)| match bit {
                        cap::SASL if self.cap_302 => format!("{name}=PLAIN"),
                        _ => name.to_owned(),
                    })
                    .collect();
                let me = self.me();
                self.server_message("CAP", vec![me, "LS".into(), list.join(" ")]);
            }
            "LIST" => {
                let list: Vec<&str> =
                    cap::ALL.iter().filter(|(_, bit)| self.has(*bit)).map(|(name, _)| *name).collect();
                let (me, list) = (self.me(), list.join(" "));
                self.server_message("CAP", vec![me, "LIST".into(), list]);
            }
            "REQ" => {
                if !registered {
                    self.negotiating = true;
                }
                let requested = msg.params.get(1).cloned().unwrap_or_default();
                let mut caps = self.caps;
                let mut known = !requested.trim().is_empty();
                for token in requested.split(' ').filter(|t| !t.is_empty()) {
                    let (remove, name) = match token.strip_prefix('-') {
                        Some(name) => (true, name),
                        None => (false, token),
                    };
                    match self.offered().find(|(n, _)| *n == name) {
                        Some((_, bit)) if remove => caps &= !bit,
                        Some((_, bit)) => caps |= bit,
                        None => known = false,
                    }
                }
                let answer = if known { "ACK" } else { "NAK" };
                if known {
                    self.caps = caps;
                }
                let me = self.me();
                self.server_message("CAP", vec![me, answer.into(), requested]);
            }
            "END" => {
                if !registered && self.negotiating {
                    self.negotiating = false;
                    return self.try_register().await;
                }
            }
            _ => {
                let command = msg.params[0].clone();
                self.numeric(ERR_INVALIDCAPCMD, &[&command, "Invalid CAP command"]);
            }
        }
        Flow::Continue
    }

    pub(super) async fn authenticate(&mut self, msg: &Message) -> Flow {
        if !self.enough(msg, 1) {
            return Flow::Continue;
        }
        let param = msg.params[0].as_str();
        if param == "*" {
            if self.sasl.take().is_some() {
                self.numeric(ERR_SASLABORTED, &["SASL authentication aborted"]);
            } else {
                self.numeric(ERR_SASLFAIL, &["SASL authentication failed"]);
            }
            return Flow::Continue;
        }
        let Some(mut buffer) = self.sasl.take() else {
            if self.account.is_some() {
                self.numeric(ERR_SASLALREADY, &["You have already authenticated using SASL"]);
            } else if !param.eq_ignore_ascii_case("PLAIN") {
                self.numeric(RPL_SASLMECHS, &["PLAIN", "are available SASL mechanisms"]);
                self.numeric(ERR_SASLFAIL, &["SASL authentication failed"]);
            } else if !self.passwords_allowed() {
                self.numeric(ERR_SASLFAIL, &["SASL authentication failed: passwords need TLS here"]);
            } else {
                self.sasl = Some(String::new());
                Message::new("AUTHENTICATE", ["+"]).write_to(&mut self.output);
            }
            return Flow::Continue;
        };
        if param.len() > SASL_CHUNK_BYTES || buffer.len() + param.len() > SASL_RESPONSE_BYTES_MAX {
            self.numeric(ERR_SASLTOOLONG, &["SASL message too long"]);
            return Flow::Continue;
        }
        if param != "+" {
            buffer.push_str(param);
        }
        if param.len() == SASL_CHUNK_BYTES {
            self.sasl = Some(buffer);
            return Flow::Continue;
        }
        let Some((user, password)) = base64_decode(&buffer).as_deref().and_then(sasl_plain) else {
            self.numeric(ERR_SASLFAIL, &["SASL authentication failed: malformed PLAIN response"]);
            return Flow::Continue;
        };
        match self.login(&user, &password).await {
            Ok(account) => {
                self.logged_in(account);
                self.numeric(RPL_SASLSUCCESS, &["SASL authentication successful"]);
                Flow::Continue
            }
            Err(temporary) => {
                self.numeric(
                    ERR_SASLFAIL,
                    &[if temporary {
                        "SASL authentication failed: try again later"
                    } else {
                        "SASL authentication failed"
                    }],
                );
                if self.login_failures >= super::LOGIN_FAILURES_MAX {
                    return self.close("Too many failed logins");
                }
                Flow::Continue
            }
        }
    }

    /// Checks a login; on failure waits the configured delay. `Err(true)` for a temporary failure.
    async fn login(&mut self, user: &str, password: &str) -> Result<Address, bool> {
        match self.shared.logins.login(user, password).await {
            Ok(account) => {
                info!(peer = %self.peer, %account, "irc: logged in");
                Ok(account)
            }
            Err(LoginError::Invalid) => {
                info!(peer = %self.peer, user, "irc: login failed");
                self.login_failures += 1;
                tokio::time::sleep(self.shared.auth_failure_delay).await;
                Err(false)
            }
            Err(LoginError::Unavailable(e)) => {
                warn!(error = %e, "irc: cannot check a login");
                Err(true)
            }
        }
    }

    /// Records a login: 900 RPL_LOGGEDIN, and the hub learns it when the client is registered.
    fn logged_in(&mut self, account: Address) {
        if let Some(conn) = &self.conn {
            self.hub.set_account(conn, account.clone());
        }
        let (prefix, name) = (self.prefix(), account.to_string());
        self.numeric(RPL_LOGGEDIN, &[&prefix, &name, &format!("You are now logged in as {name}")]);
        self.account = Some(account);
    }

    pub(super) fn pass(&mut self, msg: &Message) -> Flow {
        if self.conn.is_some() {
            self.numeric(ERR_ALREADYREGISTERED, &["You may not reregister"]);
        } else if self.enough(msg, 1) {
            self.password = Some(msg.params[0].clone());
        }
        Flow::Continue
    }

    pub(super) async fn nick_command(&mut self, msg: &Message) -> Flow {
        let Some(nick) = msg.params.first().filter(|n| !n.is_empty()).cloned() else {
            self.numeric(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return Flow::Continue;
        };
        if !is_valid_nick(&nick, self.shared.config.nick_bytes_max) {
            self.numeric(ERR_ERRONEUSNICKNAME, &[&nick, "Erroneous nickname"]);
            return Flow::Continue;
        }
        if self.nick.as_deref() == Some(nick.as_str()) {
            return Flow::Continue;
        }
        let own_conn = self.conn.as_ref().map(|c| c.id());
        let held_elsewhere = self.hub.find_nick(&nick).iter().any(|c| Some(c.id()) != own_conn);
        if held_elsewhere || !self.shared.registry.claim(self.token, &nick, self.nick.as_deref()) {
            self.numeric(ERR_NICKNAMEINUSE, &[&nick, "Nickname is already in use"]);
            return Flow::Continue;
        }
        self.nick = Some(nick.clone());
        match self.conn.clone() {
            Some(conn) => {
                self.hub.set_nick(&conn, &nick);
                Flow::Continue
            }
            None => self.try_register().await,
        }
    }

    pub(super) async fn user_command(&mut self, msg: &Message) -> Flow {
        if self.conn.is_some() {
            self.numeric(ERR_ALREADYREGISTERED, &["You may not reregister"]);
            return Flow::Continue;
        }
        // The real name may be empty; the user name may not.
        if msg.params.len() < 4 || msg.params[0].is_empty() {
            self.numeric(ERR_NEEDMOREPARAMS, &["USER", "Not enough parameters"]);
            return Flow::Continue;
        }
        self.user = Some(sanitize_user(&msg.params[0], USER_BYTES_MAX));
        self.realname = truncate(&msg.params[3], TEXT_BYTES_MAX).to_owned();
        self.try_register().await
    }

    /// Completes registration once NICK and USER are in and no CAP or SASL exchange is open:
    /// checks PASS, refuses guests when they are not allowed, connects to the hub and sends the
    /// welcome burst.
    async fn try_register(&mut self) -> Flow {
        if self.conn.is_some() || self.nick.is_none() || self.user.is_none() || self.negotiating {
            return Flow::Continue;
        }
        self.sasl = None;
        if let Some(password) = self.password.take()
            && self.account.is_none()
        {
            if !self.passwords_allowed() {
                self.numeric(ERR_PASSWDMISMATCH, &["Password logins need TLS on this server"]);
                return self.close("Password logins need TLS");
            }
            // `PASS account:password`, or `PASS password` for the account named like the nick.
            let (user, password) = match password.split_once(':') {
                Some((user, password)) if !user.is_empty() => (user.to_owned(), password.to_owned()),
                _ => (self.me(), password),
            };
            match self.login(&user, &password).await {
                Ok(account) => self.logged_in(account),
                Err(temporary) => {
                    self.numeric(
                        ERR_PASSWDMISMATCH,
                        &[if temporary { "Password check failed: try again later" } else { "Password incorrect" }],
                    );
                    return self.close("Bad password");
                }
            }
        }
        if self.account.is_none() && !self.shared.config.guests {
            self.numeric(ERR_PASSWDMISMATCH, &["Login required: use SASL PLAIN or PASS account:password"]);
            return self.close("Login required");
        }
        let nick = self.me();
        let identity = Identity {
            nick: nick.clone(),
            user: self.user.clone().unwrap_or_default(),
            host: self.host.clone(),
            account: self.account.clone(),
            via: Frontend::Irc,
        };
        let conn = self.hub.connect(identity);
        let (realname, invisible, tls) = (self.realname.clone(), self.invisible, self.tls);
        self.shared.registry.update(self.token, &nick, |entry| {
            entry.realname = realname;
            entry.invisible = invisible;
            entry.tls = tls;
            entry.registered = true;
        });
        self.shared.registry.unregistered.fetch_sub(1, Ordering::Relaxed);
        self.conn = Some(Arc::clone(&conn));
        info!(peer = %self.peer, nick, account = ?self.account, "irc: registered");
        self.welcome().await;
        Flow::Continue
    }

    async fn welcome(&mut self) {
        let (network, server) = (self.shared.config.network_name.clone(), self.shared.server_name.clone());
        let version = format!("tidings-{}", env!("CARGO_PKG_VERSION"));
        let prefix = self.prefix();
        self.numeric(RPL_WELCOME, &[&format!("Welcome to the {network} IRC Network {prefix}")]);
        self.numeric(RPL_YOURHOST, &[&format!("Your host is {server}, running version {version}")]);
        let created = format!("This server was created {}", self.shared.created);
        self.numeric(RPL_CREATED, &[&created]);
        self.numeric(RPL_MYINFO, &[&server, &version, "io", "iklnotv", "klov"]);
        let tokens = self.isupport();
        for chunk in tokens.chunks(ISUPPORT_TOKENS_PER_LINE) {
            let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
            params.push("are supported by this server");
            self.numeric(RPL_ISUPPORT, &params);
        }
        self.lusers();
        self.motd();
    }

    /// The ISUPPORT tokens (modern.ircdocs.horse, "Feature Advertisement").
    fn isupport(&self) -> Vec<String> {
        let config = &self.shared.config;
        let rooms = self.hub.limits().rooms_per_connection_max;
        vec![
            format!("AWAYLEN={TEXT_BYTES_MAX}"),
            "CASEMAPPING=ascii".into(),
            format!("CHANLIMIT=#:{rooms}"),
            "CHANMODES=,k,l,int".into(),
            format!("CHANNELLEN={}", tidings_core::ROOM_NAME_BYTES_MAX),
            "CHANTYPES=#".into(),
            format!("CHATHISTORY={}", config.history_page_max),
            format!("KICKLEN={TEXT_BYTES_MAX}"),
            format!("MODES={}", super::MODES_MAX),
            "MSGREFTYPES=msgid,timestamp".into(),
            format!("NETWORK={}", config.network_name),
            format!("NICKLEN={}", config.nick_bytes_max),
            "PREFIX=(ov)@+".into(),
            format!("TARGMAX=JOIN:,KICK:{0},NAMES:1,NOTICE:{0},PART:,PRIVMSG:{0},WHOIS:1", super::TARGETS_MAX),
            format!("TOPICLEN={TEXT_BYTES_MAX}"),
            format!("USERLEN={USER_BYTES_MAX}"),
        ]
    }
}
