//! PRIVMSG and NOTICE (RFC 2812 §3.3), and hub events as IRC lines: room messages from every
//! front-end, private messages, joins, parts, quits, kicks, nick changes, topics, modes, invites
//! and away changes.

use std::sync::Arc;

use tidings_core::{Address, ChatMessage, Frontend, MessageKind};

use super::{OWN_POSTS_MAX, RECENT_QUITS_MAX, Session, TARGETS_MAX, cap};
use crate::Event;
use crate::hub::{Conn, Leave, ModeChange, RoomError};
use crate::irc::message::{BODY_BYTES_MAX, Message};
use crate::irc::numeric::*;
use crate::irc::text::split_at_bytes;
use crate::render::RenderKey;

/// CTCP ACTION framing (`/me`): `\x01ACTION text\x01`.
const ACTION_START: &str = "\u{1}ACTION ";
const ACTION_END: &str = "\u{1}";

/// The capabilities that change how a live room message is rendered (its tags).
const TAG_CAPS: u32 = cap::SERVER_TIME | cap::MESSAGE_TAGS | cap::ACCOUNT_TAG;

/// A chat line to render: who, to where, what, and its tags' sources.
pub(super) struct TextLine<'a> {
    pub source: String,
    pub target: &'a str,
    pub kind: MessageKind,
    pub body: &'a str,
    pub at_ms: Option<i64>,
    pub msgid: Option<&'a str>,
    pub account: Option<&'a Address>,
    pub batch: Option<&'a str>,
}

impl Session {
    pub(super) async fn privmsg(&mut self, conn: &Arc<Conn>, msg: &Message, notice: bool) {
        let command = msg.verb();
        // RFC 2812 §3.3.2: no error reply of any kind to a NOTICE.
        let Some(targets) = msg.params.first().filter(|t| !t.is_empty()) else {
            if !notice {
                self.numeric(ERR_NORECIPIENT, &[&format!("No recipient given ({command})")]);
            }
            return;
        };
        let Some(text) = msg.params.get(1).filter(|t| !t.is_empty()) else {
            if !notice {
                self.numeric(ERR_NOTEXTTOSEND, &["No text to send"]);
            }
            return;
        };
        let (kind, body) = match text.strip_prefix(ACTION_START) {
            Some(action) if !notice => (MessageKind::Action, action.strip_suffix(ACTION_END).unwrap_or(action)),
            _ if notice => (MessageKind::Notice, text.as_str()),
            _ => (MessageKind::Text, text.as_str()),
        };
        let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
        if targets.len() > TARGETS_MAX && !notice {
            self.numeric(ERR_TOOMANYTARGETS, &[targets[TARGETS_MAX], "Too many targets"]);
        }
        for target in targets.into_iter().take(TARGETS_MAX) {
            if target.starts_with('#') {
                self.post(conn, target, kind, body, notice).await;
            } else {
                self.direct(conn, target, kind, body, notice);
            }
        }
    }

    async fn post(&mut self, conn: &Arc<Conn>, target: &str, kind: MessageKind, body: &str, notice: bool) {
        let room = match tidings_core::RoomName::parse(target) {
            Ok(room) => room,
            Err(_) => {
                if !notice {
                    self.numeric(ERR_NOSUCHCHANNEL, &[target, "No such channel"]);
                }
                return;
            }
        };
        let hub = Arc::clone(&self.hub);
        match hub.post(conn, &room, kind, body).await {
            Ok(posted) => {
                if conn.rooms().contains(&room) {
                    // The hub delivers the post to us as to every member: shown only with echo-message.
                    if self.own_posts.len() == OWN_POSTS_MAX {
                        self.own_posts.pop_front();
                    }
                    self.own_posts.push_back(posted.id.clone());
                } else if self.has(cap::ECHO_MESSAGE) {
                    let mut out = std::mem::take(&mut self.output);
                    self.message_lines(&posted, None, &mut out);
                    self.output = out;
                }
            }
            Err(_) if notice => {}
            Err(RoomError::NoSuchRoom(_)) => self.numeric(ERR_NOSUCHCHANNEL, &[room.as_str(), "No such channel"]),
            Err(RoomError::NotMember(_)) => {
                self.numeric(ERR_CANNOTSENDTOCHAN, &[room.as_str(), "Cannot send to channel (+n)"])
            }
            Err(RoomError::Invalid(text)) => self.numeric(ERR_CANNOTSENDTOCHAN, &[room.as_str(), &text]),
            Err(e) => {
                let text = format!("Cannot send to channel: {e}");
                self.numeric(ERR_CANNOTSENDTOCHAN, &[room.as_str(), &text]);
            }
        }
    }

    fn direct(&mut self, conn: &Arc<Conn>, target: &str, kind: MessageKind, body: &str, notice: bool) {
        let recipients = self.hub.find_nick(target);
        if recipients.is_empty() || self.hub.direct(conn, target, kind, body) == 0 {
            if !notice {
                self.numeric(ERR_NOSUCHNICK, &[target, "No such nick/channel"]);
            }
            return;
        }
        if !notice && let Some(away) = recipients[0].away() {
            let shown = self.shown_nick(&recipients[0].identity().nick);
            self.numeric(RPL_AWAY, &[&shown, &away]);
        }
        if self.has(cap::ECHO_MESSAGE) {
            let line = TextLine {
                source: self.prefix(),
                target,
                kind,
                body,
                at_ms: Some(tidings_core::date::now_millis()),
                msgid: None,
                account: self.account.as_ref(),
                batch: None,
            };
            let mut out = std::mem::take(&mut self.output);
            self.text_lines(&line, &mut out);
            self.output = out;
        }
    }

    /// Writes a chat line as PRIVMSG or NOTICE (an action as CTCP ACTION), split into as many lines
    /// as the body needs to keep each within 512 octets; the first carries the msgid.
    pub(super) fn text_lines(&self, line: &TextLine<'_>, out: &mut Vec<u8>) {
        let (command, action) = match line.kind {
            MessageKind::Text => ("PRIVMSG", false),
            MessageKind::Notice => ("NOTICE", false),
            MessageKind::Action => ("PRIVMSG", true),
        };
        let framing = if action { ACTION_START.len() + ACTION_END.len() } else { 0 };
        let overhead = line.source.len() + command.len() + line.target.len() + framing + 5;
        let room = BODY_BYTES_MAX.saturating_sub(overhead).max(64);
        for (i, piece) in split_at_bytes(line.body, room).into_iter().enumerate() {
            let text = if action { format!("{ACTION_START}{piece}{ACTION_END}") } else { piece.to_owned() };
            let mut msg = Message::new(command, [line.target.to_owned(), text]);
            msg.source = Some(line.source.clone());
            msg.tags = self.tags(line.at_ms, line.msgid.filter(|_| i == 0), line.account, line.batch);
            msg.write_to(out);
        }
    }

    /// Writes a room message (live or from history).
    pub(super) fn message_lines(&mut self, m: &ChatMessage, batch: Option<&str>, out: &mut Vec<u8>) {
        let own = m.via == Frontend::Irc && self.nick.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&m.nick));
        let source = if own { self.prefix() } else { self.sender_prefix(&m.nick, m.via) };
        let line = TextLine {
            source,
            target: m.room.as_str(),
            kind: m.kind,
            body: &m.body,
            at_ms: Some(m.at_ms),
            msgid: Some(&m.id),
            account: m.account.as_ref(),
            batch,
        };
        self.text_lines(&line, out);
    }

    /// Writes one event from the hub, or nothing when IRC shows it otherwise or not at all.
    pub(super) fn render_event(&mut self, event: &Event, out: &mut Vec<u8>) {
        let Some(me) = self.conn.as_ref().map(|c| c.id()) else { return };
        let simple = |session: &Session, source: String, command: &str, params: Vec<String>, at_ms: i64, account| {
            let mut msg = Message::new(command, params);
            msg.source = Some(source);
            msg.tags = session.tags(Some(at_ms), None, account, None);
            msg
        };
        let msg = match event {
            Event::Message(m, renders) => {
                if let Some(i) = self.own_posts.iter().position(|id| *id == m.id) {
                    self.own_posts.remove(i);
                    if !self.has(cap::ECHO_MESSAGE) {
                        return;
                    }
                }
                let own =
                    m.via == Frontend::Irc && self.nick.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&m.nick));
                if own {
                    return self.message_lines(m, None, out);
                }
                // Every member of this listener with the same tag capabilities gets the same
                // octets: the first to deliver the message renders them for the rest.
                let key = RenderKey { frontend: Arc::as_ptr(&self.shared) as usize, variant: self.caps & TAG_CAPS };
                let bytes: Arc<[u8]> = renders.get_or_render(key, || {
                    let mut rendered = Vec::new();
                    self.message_lines(m, None, &mut rendered);
                    rendered.into()
                });
                out.extend_from_slice(&bytes);
                return;
            }
            Event::Direct { from, kind, body, at_ms, id, .. } => {
                let line = TextLine {
                    source: self.identity_prefix(from),
                    target: &self.me(),
                    kind: *kind,
                    body,
                    at_ms: Some(*at_ms),
                    msgid: Some(id),
                    account: from.account.as_ref(),
                    batch: None,
                };
                return self.text_lines(&line, out);
            }
            Event::Joined { room, member, at_ms } => {
                if member.conn == me {
                    return;
                }
                self.prefixes.clear();
                let source = self.identity_prefix(&member.identity);
                simple(self, source, "JOIN", vec![room.to_string()], *at_ms, member.identity.account.as_ref())
            }
            Event::Left { room, member, how, at_ms } => {
                self.prefixes.clear();
                let source = self.identity_prefix(&member.identity);
                let account = member.identity.account.as_ref();
                match how {
                    Leave::Part(reason) => {
                        let mut params = vec![room.to_string()];
                        params.extend(reason.clone());
                        simple(self, source, "PART", params, *at_ms, account)
                    }
                    Leave::Quit(reason) => {
                        if member.conn == me || self.recent_quits.contains(&member.conn) {
                            return;
                        }
                        if self.recent_quits.len() == RECENT_QUITS_MAX {
                            self.recent_quits.pop_front();
                        }
                        self.recent_quits.push_back(member.conn);
                        simple(self, source, "QUIT", vec![reason.clone()], *at_ms, account)
                    }
                    Leave::Kick { by, reason } => {
                        let (by, target) = (self.nick_prefix(by), self.shown_nick(&member.identity.nick));
                        simple(self, by, "KICK", vec![room.to_string(), target, reason.clone()], *at_ms, None)
                    }
                }
            }
            Event::Nick { old, new, at_ms } => {
                self.prefixes.clear();
                let source = self.identity_prefix(old);
                simple(self, source, "NICK", vec![self.shown_nick(new)], *at_ms, old.account.as_ref())
            }
            Event::Topic { room, topic } => {
                let source = self.nick_prefix(&topic.setter);
                simple(self, source, "TOPIC", vec![room.to_string(), topic.text.clone()], topic.at_ms, None)
            }
            Event::Modes { room, by, changes, at_ms } => {
                let source = self.identity_prefix(by);
                let mut params = vec![room.to_string()];
                params.extend(self.mode_words(changes));
                simple(self, source, "MODE", params, *at_ms, by.account.as_ref())
            }
            Event::Invited { room, by } => {
                let source = self.identity_prefix(by);
                let at_ms = tidings_core::date::now_millis();
                simple(self, source, "INVITE", vec![self.me(), room.to_string()], at_ms, by.account.as_ref())
            }
            Event::Presence { identity, message, at_ms, .. } => {
                let own = identity.via == Frontend::Irc
                    && self.nick.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&identity.nick));
                if !self.has(cap::AWAY_NOTIFY) || own {
                    return;
                }
                let source = self.identity_prefix(identity);
                simple(self, source, "AWAY", message.iter().cloned().collect(), *at_ms, identity.account.as_ref())
            }
        };
        msg.write_to(out);
    }

    /// Mode changes as MODE's words: `+ov-l`, then the parameters, nicknames as IRC shows them.
    fn mode_words(&self, changes: &[ModeChange]) -> Vec<String> {
        let mut letters = String::new();
        let mut params = Vec::new();
        let mut sign = ' ';
        for change in changes {
            let (on, letter, param) = change.to_irc();
            if on != sign {
                letters.push(on);
                sign = on;
            }
            letters.push(letter);
            if let Some(param) = param {
                params.push(match change {
                    ModeChange::Operator(..) | ModeChange::Voice(..) => self.shown_nick(&param),
                    _ => param.replace(' ', "_"),
                });
            }
        }
        std::iter::once(letters).chain(params).collect()
    }
}
