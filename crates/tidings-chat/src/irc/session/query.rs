//! Queries about users and the server (RFC 2812 §3.4, §3.6, §4): WHO, WHOIS, WHOWAS, USERHOST,
//! ISON, AWAY, LUSERS, MOTD, VERSION, TIME.

use std::sync::Arc;

use tidings_core::{Frontend, RoomName};

use super::{Session, TEXT_BYTES_MAX, truncate};
use crate::hub::{Conn, Identity};
use crate::irc::message::Message;
use crate::irc::numeric::*;
use crate::irc::text::{mask_matches, sanitize_host, sanitize_user};

/// Most WHO replies for a mask (the rest are left out).
const WHO_REPLIES_MAX: usize = 200;
/// Nicknames one USERHOST may ask about (RFC 2812 §4.8).
const USERHOST_NICKS_MAX: usize = 5;
/// Nicknames one ISON may ask about.
const ISON_NICKS_MAX: usize = 100;

impl Session {
    /// Whether `identity` is an IRC user with user mode `+i`.
    pub(super) fn is_invisible(&self, identity: &Identity) -> bool {
        identity.via == Frontend::Irc && self.shared.registry.get(&identity.nick).is_some_and(|e| e.invisible)
    }

    /// The real name WHO and WHOIS show: an IRC user's own, or the front-end another member uses.
    fn realname_of(&self, identity: &Identity) -> String {
        match identity.via {
            Frontend::Irc => self.shared.registry.get(&identity.nick).map(|e| e.realname).unwrap_or_default(),
            other => format!("{} user", other.as_str()),
        }
    }

    /// One 352 RPL_WHOREPLY.
    fn who_reply(&mut self, channel: &str, identity: &Identity, away: bool, status: &str) {
        let flags = format!("{}{status}", if away { 'G' } else { 'H' });
        let realname = format!("0 {}", self.realname_of(identity));
        let (user, host, nick) = (
            sanitize_user(&identity.user, super::USER_BYTES_MAX),
            sanitize_host(&identity.host),
            self.shown_nick(&identity.nick),
        );
        let server = self.shared.server_name.clone();
        self.numeric(RPL_WHOREPLY, &[channel, &user, &host, &server, &nick, &flags, &realname]);
    }

    pub(super) fn who(&mut self, conn: &Arc<Conn>, msg: &Message) {
        let mask = msg.params.first().filter(|m| !m.is_empty()).cloned().unwrap_or_else(|| "*".into());
        let operators_only = msg.params.get(1).is_some_and(|f| f.contains('o'));
        if !operators_only {
            if mask.starts_with('#') {
                if let Ok(room) = RoomName::parse(&mask) {
                    let member = conn.rooms().contains(&room);
                    let mut members: Vec<_> = self
                        .hub
                        .members(&room)
                        .into_iter()
                        .filter(|m| member || !self.is_invisible(&m.identity))
                        .collect();
                    members.sort_by_cached_key(|m| m.identity.nick.to_ascii_lowercase());
                    for m in &members {
                        let status = if m.operator {
                            "@"
                        } else if m.voiced {
                            "+"
                        } else {
                            ""
                        };
                        self.who_reply(room.as_str(), &m.identity, m.away.is_some(), status);
                    }
                }
            } else if !mask.contains(['*', '?']) {
                for target in self.hub.find_nick(&mask) {
                    let identity = target.identity();
                    self.who_reply("*", &identity, target.away().is_some(), "");
                }
            } else {
                let me = self.me();
                let entries = self
                    .shared
                    .registry
                    .find(WHO_REPLIES_MAX, |e| (!e.invisible || e.nick == me) && mask_matches(&mask, &e.nick));
                for entry in entries {
                    for target in
                        self.hub.find_nick(&entry.nick).into_iter().filter(|c| c.identity().via == Frontend::Irc)
                    {
                        self.who_reply("*", &target.identity(), target.away().is_some(), "");
                    }
                }
            }
        }
        self.numeric(RPL_ENDOFWHO, &[&mask, "End of WHO list"]);
    }

    pub(super) fn whois(&mut self, msg: &Message) {
        // `WHOIS [server] nick`: the nick is the last parameter.
        let Some(nicks) = msg.params.last().filter(|n| !n.is_empty()).cloned() else {
            self.numeric(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        let nick = nicks.split(',').next().unwrap_or_default().to_owned();
        let Some(target) = self.hub.find_nick(&nick).into_iter().next() else {
            self.numeric(ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]);
            self.numeric(RPL_ENDOFWHOIS, &[&nick, "End of /WHOIS list"]);
            return;
        };
        let identity = target.identity();
        let shown = self.shown_nick(&identity.nick);
        let (user, host) = (sanitize_user(&identity.user, super::USER_BYTES_MAX), sanitize_host(&identity.host));
        let realname = self.realname_of(&identity);
        self.numeric(RPL_WHOISUSER, &[&shown, &user, &host, "*", &realname]);
        let rooms: Vec<String> = target.rooms().iter().map(RoomName::to_string).collect();
        if !rooms.is_empty() && !self.is_invisible(&identity) {
            self.numeric(RPL_WHOISCHANNELS, &[&shown, &rooms.join(" ")]);
        }
        let (server, network) = (self.shared.server_name.clone(), self.shared.config.network_name.clone());
        let via = format!("{network} ({} front-end)", identity.via.as_str());
        self.numeric(RPL_WHOISSERVER, &[&shown, &server, &via]);
        if let Some(away) = target.away() {
            self.numeric(RPL_AWAY, &[&shown, &away]);
        }
        if let Some(account) = &identity.account {
            self.numeric(RPL_WHOISACCOUNT, &[&shown, &account.to_string(), "is logged in as"]);
        }
        if identity.via == Frontend::Irc && self.shared.registry.get(&identity.nick).is_some_and(|e| e.tls) {
            self.numeric(RPL_WHOISSECURE, &[&shown, "is using a secure connection"]);
        }
        self.numeric(RPL_ENDOFWHOIS, &[&shown, "End of /WHOIS list"]);
    }

    pub(super) fn whowas(&mut self, msg: &Message) {
        let Some(nick) = msg.params.first().filter(|n| !n.is_empty()).cloned() else {
            self.numeric(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return;
        };
        self.numeric(ERR_WASNOSUCHNICK, &[&nick, "There was no such nickname"]);
        self.numeric(RPL_ENDOFWHOWAS, &[&nick, "End of WHOWAS"]);
    }

    pub(super) fn userhost(&mut self, msg: &Message) {
        if !self.enough(msg, 1) {
            return;
        }
        let mut replies = Vec::new();
        for nick in msg.params.iter().take(USERHOST_NICKS_MAX) {
            if let Some(target) = self.hub.find_nick(nick).first() {
                let identity = target.identity();
                let away = if target.away().is_some() { '-' } else { '+' };
                replies.push(format!(
                    "{}={away}{}@{}",
                    self.shown_nick(&identity.nick),
                    sanitize_user(&identity.user, super::USER_BYTES_MAX),
                    sanitize_host(&identity.host)
                ));
            }
        }
        self.numeric(RPL_USERHOST, &[&replies.join(" ")]);
    }

    pub(super) fn ison(&mut self, msg: &Message) {
        if !self.enough(msg, 1) {
            return;
        }
        let online: Vec<String> = msg
            .params
            .iter()
            .flat_map(|p| p.split(' '))
            .filter(|n| !n.is_empty())
            .take(ISON_NICKS_MAX)
            .filter_map(|nick| self.hub.find_nick(nick).first().map(|c| self.shown_nick(&c.identity().nick)))
            .collect();
        self.numeric(RPL_ISON, &[&online.join(" ")]);
    }

    pub(super) fn away(&mut self, conn: &Arc<Conn>, msg: &Message) {
        match msg.params.first().filter(|m| !m.is_empty()) {
            Some(text) => {
                self.hub.set_away(conn, Some(truncate(text, TEXT_BYTES_MAX).to_owned()));
                self.numeric(RPL_NOWAWAY, &["You have been marked as being away"]);
            }
            None => {
                self.hub.set_away(conn, None);
                self.numeric(RPL_UNAWAY, &["You are no longer marked as being away"]);
            }
        }
    }

    pub(super) fn lusers(&mut self) {
        let global = self.hub.connections();
        let (local, invisible) = self.shared.registry.counts();
        let unknown = self.shared.registry.unregistered.load(std::sync::atomic::Ordering::Relaxed);
        let channels = self.hub.rooms_loaded();
        let visible = global.saturating_sub(invisible);
        self.numeric(RPL_LUSERCLIENT, &[&format!("There are {visible} users and {invisible} invisible on 1 servers")]);
        if unknown > 0 {
            self.numeric(RPL_LUSERUNKNOWN, &[&unknown.to_string(), "unknown connection(s)"]);
        }
        self.numeric(RPL_LUSERCHANNELS, &[&channels.to_string(), "channels formed"]);
        self.numeric(RPL_LUSERME, &[&format!("I have {global} clients and 0 servers")]);
        let (local_s, global_s) = (local.to_string(), global.to_string());
        self.numeric(RPL_LOCALUSERS, &[&local_s, &local_s, &format!("Current local users {local}, max {local}")]);
        self.numeric(RPL_GLOBALUSERS, &[&global_s, &global_s, &format!("Current global users {global}, max {global}")]);
    }

    pub(super) fn motd(&mut self) {
        let motd = self.shared.config.motd.clone();
        if motd.trim().is_empty() {
            self.numeric(ERR_NOMOTD, &["MOTD File is missing"]);
            return;
        }
        let server = self.shared.server_name.clone();
        self.numeric(RPL_MOTDSTART, &[&format!("- {server} Message of the day - ")]);
        for line in motd.lines() {
            self.numeric(RPL_MOTD, &[&format!("- {line}")]);
        }
        self.numeric(RPL_ENDOFMOTD, &["End of /MOTD command."]);
    }

    pub(super) fn version(&mut self) {
        let version = format!("tidings-{}.", env!("CARGO_PKG_VERSION"));
        let server = self.shared.server_name.clone();
        self.numeric(RPL_VERSION, &[&version, &server, "mail and chat server"]);
    }

    pub(super) fn time(&mut self) {
        let server = self.shared.server_name.clone();
        let now = tidings_core::date::rfc5322(tidings_core::date::now_secs());
        self.numeric(RPL_TIME, &[&server, &now]);
    }
}
