//! Channel commands (RFC 2812 §3.2, RFC 2811 §4): JOIN, PART, TOPIC, NAMES, LIST, MODE, KICK,
//! INVITE.

use std::sync::Arc;

use tidings_core::RoomName;

use super::{MODES_MAX, Session, TARGETS_MAX, TEXT_BYTES_MAX, cap, truncate};
use crate::hub::{Conn, JoinError, Joined, MemberView, ModeChange, RoomError};
use crate::irc::message::{BODY_BYTES_MAX, Message};
use crate::irc::numeric::*;

/// Most rooms one LIST reply names (the rest are left out, so one command's reply stays bounded).
const LIST_ROOMS_MAX: usize = 5000;
/// Longest channel key, octets.
const KEY_BYTES_MAX: usize = 23;

impl Session {
    /// The room `name` names, or 403 ERR_NOSUCHCHANNEL.
    fn room_name(&mut self, name: &str) -> Option<RoomName> {
        match RoomName::parse(name) {
            Ok(room) => Some(room),
            Err(_) => {
                self.numeric(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
                None
            }
        }
    }

    /// The numeric a failed room action gets.
    fn room_error(&mut self, error: &RoomError) {
        match error {
            RoomError::NoSuchRoom(room) => self.numeric(ERR_NOSUCHCHANNEL, &[room.as_str(), "No such channel"]),
            RoomError::NotMember(room) => {
                self.numeric(ERR_NOTONCHANNEL, &[room.as_str(), "You're not on that channel"])
            }
            RoomError::NotOperator(room) => {
                self.numeric(ERR_CHANOPRIVSNEEDED, &[room.as_str(), "You're not channel operator"])
            }
            RoomError::TargetNotMember(room, nick) => {
                let nick = self.shown_nick(nick);
                self.numeric(ERR_USERNOTINCHANNEL, &[&nick, room.as_str(), "They aren't on that channel"])
            }
            RoomError::TargetAlreadyMember(room, nick) => {
                let nick = self.shown_nick(nick);
                self.numeric(ERR_USERONCHANNEL, &[&nick, room.as_str(), "is already on channel"])
            }
            RoomError::Invalid(text) => self.numeric(ERR_UNAVAILRESOURCE, &["*", text]),
            RoomError::Store(_) => self.numeric(ERR_UNAVAILRESOURCE, &["*", "Channel is temporarily unavailable"]),
        }
    }

    pub(super) async fn join(&mut self, conn: &Arc<Conn>, msg: &Message) {
        if !self.enough(msg, 1) {
            return;
        }
        if msg.params[0] == "0" {
            for room in conn.rooms() {
                let _ = self.hub.part(conn, &room, Some("Left all channels".into()));
            }
            return;
        }
        let keys: Vec<&str> = msg.params.get(1).map(|k| k.split(',').collect()).unwrap_or_default();
        for (i, name) in msg.params[0].split(',').enumerate().filter(|(_, n)| !n.is_empty()) {
            let Some(room) = self.room_name(name) else { continue };
            let key = keys.get(i).copied().filter(|k| !k.is_empty());
            let hub = Arc::clone(&self.hub);
            let (numeric, text) = match hub.join(conn, &room, key, false).await {
                Ok(joined) => {
                    self.joined(&joined);
                    continue;
                }
                Err(JoinError::AlreadyMember(_)) => continue,
                Err(JoinError::InviteOnly(_)) => (ERR_INVITEONLYCHAN, "Cannot join channel (+i)"),
                Err(JoinError::BadKey(_)) => (ERR_BADCHANNELKEY, "Cannot join channel (+k)"),
                Err(JoinError::Full(_)) => (ERR_CHANNELISFULL, "Cannot join channel (+l)"),
                Err(JoinError::TooManyRooms(_)) => (ERR_TOOMANYCHANNELS, "You have joined too many channels"),
                Err(JoinError::Exists(_) | JoinError::Store(_)) => {
                    (ERR_UNAVAILRESOURCE, "Channel is temporarily unavailable")
                }
            };
            self.numeric(numeric, &[room.as_str(), text]);
        }
    }

    /// Our own JOIN, the topic and the names, in that order (the hub's Joined event for ourselves
    /// is not shown again).
    fn joined(&mut self, joined: &Joined) {
        let mut msg = Message::new("JOIN", [joined.room.as_str()]);
        msg.source = Some(self.prefix());
        msg.tags = self.tags(Some(tidings_core::date::now_millis()), None, self.account.as_ref(), None);
        msg.write_to(&mut self.output);
        if let Some(topic) = joined.topic.as_ref().filter(|t| !t.text.is_empty()) {
            self.topic_reply(joined.room.as_str(), topic);
        }
        self.names_reply(joined.room.as_str(), &joined.members);
    }

    fn topic_reply(&mut self, room: &str, topic: &tidings_core::Topic) {
        self.numeric(RPL_TOPIC, &[room, &topic.text]);
        let setter = self.shown_nick(&topic.setter);
        self.numeric(RPL_TOPICWHOTIME, &[room, &setter, &(topic.at_ms / 1000).to_string()]);
    }

    /// 353 RPL_NAMREPLY lines (as many as the names need) and 366 RPL_ENDOFNAMES.
    fn names_reply(&mut self, room: &str, members: &[MemberView]) {
        let mut members: Vec<&MemberView> = members.iter().collect();
        members.sort_by_cached_key(|m| m.identity.nick.to_ascii_lowercase());
        let names: Vec<String> = members
            .iter()
            .map(|m| {
                let mut name = String::new();
                if m.operator {
                    name.push('@');
                }
                if m.voiced && (!m.operator || self.has(cap::MULTI_PREFIX)) {
                    name.push('+');
                }
                if self.has(cap::USERHOST_IN_NAMES) {
                    name.push_str(&self.identity_prefix(&m.identity));
                } else {
                    name.push_str(&self.shown_nick(&m.identity.nick));
                }
                name
            })
            .collect();
        let me = self.me();
        let room_for_names =
            BODY_BYTES_MAX.saturating_sub(self.shared.server_name.len() + me.len() + room.len() + 12).max(64);
        let mut line = String::new();
        for name in names {
            if !line.is_empty() && line.len() + 1 + name.len() > room_for_names {
                self.numeric(RPL_NAMREPLY, &["=", room, &line]);
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&name);
        }
        if !line.is_empty() {
            self.numeric(RPL_NAMREPLY, &["=", room, &line]);
        }
        self.numeric(RPL_ENDOFNAMES, &[room, "End of /NAMES list"]);
    }

    pub(super) fn part(&mut self, conn: &Arc<Conn>, msg: &Message) {
        if !self.enough(msg, 1) {
            return;
        }
        let reason = msg.params.get(1).filter(|r| !r.is_empty()).map(|r| truncate(r, TEXT_BYTES_MAX).to_owned());
        for name in msg.params[0].split(',').filter(|n| !n.is_empty()) {
            let Some(room) = self.room_name(name) else { continue };
            if let Err(e) = self.hub.part(conn, &room, reason.clone()) {
                self.room_error(&e);
            }
        }
    }

    pub(super) async fn topic(&mut self, conn: &Arc<Conn>, msg: &Message) {
        if !self.enough(msg, 1) {
            return;
        }
        let Some(room) = self.room_name(&msg.params[0]) else { return };
        let hub = Arc::clone(&self.hub);
        match msg.params.get(1) {
            None => match hub.room(&room).await {
                Ok(Some(record)) => match record.topic.filter(|t| !t.text.is_empty()) {
                    Some(topic) => self.topic_reply(room.as_str(), &topic),
                    None => self.numeric(RPL_NOTOPIC, &[room.as_str(), "No topic is set"]),
                },
                Ok(None) => self.numeric(ERR_NOSUCHCHANNEL, &[room.as_str(), "No such channel"]),
                Err(_) => self.numeric(ERR_UNAVAILRESOURCE, &[room.as_str(), "Channel is temporarily unavailable"]),
            },
            Some(text) => {
                if let Err(e) = hub.set_topic(conn, &room, truncate(text, TEXT_BYTES_MAX)).await {
                    self.room_error(&e);
                }
            }
        }
    }

    pub(super) fn names(&mut self, conn: &Arc<Conn>, msg: &Message) {
        let Some(list) = msg.params.first().filter(|p| !p.is_empty()) else {
            self.numeric(RPL_ENDOFNAMES, &["*", "End of /NAMES list"]);
            return;
        };
        // NAMES takes one channel (ISUPPORT TARGMAX NAMES:1).
        let name = list.split(',').next().unwrap_or_default().to_owned();
        match RoomName::parse(&name) {
            Ok(room) => {
                let member = conn.rooms().contains(&room);
                let members: Vec<MemberView> =
                    self.hub.members(&room).into_iter().filter(|m| member || !self.is_invisible(&m.identity)).collect();
                self.names_reply(room.as_str(), &members);
            }
            Err(_) => self.numeric(RPL_ENDOFNAMES, &[&name, "End of /NAMES list"]),
        }
    }

    pub(super) async fn list(&mut self, msg: &Message) {
        let wanted: Option<Vec<RoomName>> = msg
            .params
            .first()
            .filter(|p| !p.is_empty())
            .map(|p| p.split(',').filter_map(|n| RoomName::parse(n).ok()).collect());
        let hub = Arc::clone(&self.hub);
        let rooms = match hub.list().await {
            Ok(rooms) => rooms,
            Err(_) => {
                self.numeric(ERR_UNAVAILRESOURCE, &["LIST", "The channel list is temporarily unavailable"]);
                return;
            }
        };
        self.numeric(RPL_LISTSTART, &["Channel", "Users  Name"]);
        for room in rooms.iter().filter(|r| wanted.as_ref().is_none_or(|w| w.contains(&r.name))).take(LIST_ROOMS_MAX) {
            self.numeric(RPL_LIST, &[room.name.as_str(), &room.members.to_string(), &room.topic]);
        }
        self.numeric(RPL_LISTEND, &["End of /LIST"]);
    }

    pub(super) async fn mode(&mut self, conn: &Arc<Conn>, msg: &Message) {
        if !self.enough(msg, 1) {
            return;
        }
        let target = msg.params[0].clone();
        if !target.starts_with('#') {
            self.user_mode(&target, msg);
            return;
        }
        let Some(room) = self.room_name(&target) else { return };
        let hub = Arc::clone(&self.hub);
        let Some(modes) = msg.params.get(1).filter(|m| !m.is_empty()) else {
            match hub.room(&room).await {
                Ok(Some(record)) => {
                    let member = conn.rooms().contains(&room);
                    let text = record.modes.to_irc(member);
                    let mut params = vec![room.as_str()];
                    params.extend(text.split(' '));
                    self.numeric(RPL_CHANNELMODEIS, &params);
                    self.numeric(RPL_CREATIONTIME, &[room.as_str(), &(record.created_ms / 1000).to_string()]);
                }
                Ok(None) => self.numeric(ERR_NOSUCHCHANNEL, &[room.as_str(), "No such channel"]),
                Err(_) => self.numeric(ERR_UNAVAILRESOURCE, &[room.as_str(), "Channel is temporarily unavailable"]),
            }
            return;
        };
        let mut args = msg.params[2..].iter();
        let mut changes = Vec::new();
        let mut on = true;
        let mut with_parameter = 0;
        for letter in modes.chars() {
            match letter {
                '+' => on = true,
                '-' => on = false,
                'i' => changes.push(ModeChange::InviteOnly(on)),
                'n' => changes.push(ModeChange::NoExternal(on)),
                't' => changes.push(ModeChange::TopicLocked(on)),
                'k' | 'l' | 'o' | 'v' if with_parameter == MODES_MAX => {}
                'k' if on => match args.next() {
                    Some(key) if !key.is_empty() && key.len() <= KEY_BYTES_MAX && !key.contains(',') => {
                        with_parameter += 1;
                        changes.push(ModeChange::Key(Some(key.clone())));
                    }
                    Some(_) => self.numeric(ERR_INVALIDKEY, &[room.as_str(), "Key is not well-formed"]),
                    None => {}
                },
                'k' => {
                    // `-k` takes the key as its parameter (RFC 2811 §4.2.3); any value removes it.
                    let _ = args.next();
                    with_parameter += 1;
                    changes.push(ModeChange::Key(None));
                }
                'l' if on => {
                    if let Some(limit) = args.next() {
                        match limit.parse::<u32>() {
                            Ok(limit) if limit > 0 => {
                                with_parameter += 1;
                                changes.push(ModeChange::Limit(Some(limit)));
                            }
                            _ => {
                                let limit = limit.clone();
                                self.numeric(ERR_INVALIDMODEPARAM, &[room.as_str(), "l", &limit, "Invalid limit"]);
                            }
                        }
                    }
                }
                'l' => changes.push(ModeChange::Limit(None)),
                'o' | 'v' => {
                    if let Some(nick) = args.next() {
                        with_parameter += 1;
                        let nick = nick.clone();
                        changes.push(if letter == 'o' {
                            ModeChange::Operator(nick, on)
                        } else {
                            ModeChange::Voice(nick, on)
                        });
                    }
                }
                'b' => self.numeric(RPL_BANLIST_END, &[room.as_str(), "End of channel ban list"]),
                'e' => self.numeric(RPL_EXCEPTLIST_END, &[room.as_str(), "End of channel exception list"]),
                'I' => self.numeric(RPL_INVEXLIST_END, &[room.as_str(), "End of channel invite list"]),
                other => {
                    let other = other.to_string();
                    self.numeric(ERR_UNKNOWNMODE, &[&other, "is unknown mode char to me"]);
                }
            }
        }
        if changes.is_empty() {
            return;
        }
        if let Err(e) = hub.set_modes(conn, &room, changes).await {
            self.room_error(&e);
        }
    }

    fn user_mode(&mut self, target: &str, msg: &Message) {
        if !self.me().eq_ignore_ascii_case(target) {
            if self.hub.find_nick(target).is_empty() {
                self.numeric(ERR_NOSUCHNICK, &[target, "No such nick/channel"]);
            } else {
                self.numeric(ERR_USERSDONTMATCH, &["Cant change mode for other users"]);
            }
            return;
        }
        let Some(modes) = msg.params.get(1) else {
            let shown = if self.invisible { "+i" } else { "+" };
            self.numeric(RPL_UMODEIS, &[shown]);
            return;
        };
        let mut on = true;
        let mut invisible = self.invisible;
        let mut unknown = false;
        for letter in modes.chars() {
            match letter {
                '+' => on = true,
                '-' => on = false,
                'i' => invisible = on,
                // Operator status is never granted by MODE (RFC 2812 §3.1.5); `-o` has nothing to drop.
                'o' => {}
                _ => unknown = true,
            }
        }
        if unknown {
            self.numeric(ERR_UMODEUNKNOWNFLAG, &["Unknown MODE flag"]);
        }
        if invisible != self.invisible {
            self.invisible = invisible;
            let nick = self.me();
            self.shared.registry.update(self.token, &nick, |e| e.invisible = invisible);
            let mut reply = Message::new("MODE", [nick.clone(), if invisible { "+i" } else { "-i" }.to_owned()]);
            reply.source = Some(self.prefix());
            reply.write_to(&mut self.output);
        }
    }

    pub(super) fn kick(&mut self, conn: &Arc<Conn>, msg: &Message) {
        if !self.enough(msg, 2) {
            return;
        }
        let Some(room) = self.room_name(&msg.params[0]) else { return };
        let me = self.me();
        let reason = truncate(msg.params.get(2).filter(|r| !r.is_empty()).unwrap_or(&me), TEXT_BYTES_MAX).to_owned();
        for nick in msg.params[1].split(',').filter(|n| !n.is_empty()).take(TARGETS_MAX) {
            if let Err(e) = self.hub.kick(conn, &room, nick, &reason) {
                self.room_error(&e);
            }
        }
    }

    pub(super) fn invite(&mut self, conn: &Arc<Conn>, msg: &Message) {
        if msg.params.is_empty() {
            self.numeric(RPL_ENDOFINVITELIST, &["End of /INVITE list"]);
            return;
        }
        if !self.enough(msg, 2) {
            return;
        }
        let (nick, channel) = (msg.params[0].clone(), msg.params[1].clone());
        let targets = self.hub.find_nick(&nick);
        if targets.is_empty() {
            self.numeric(ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]);
            return;
        }
        let Some(room) = self.room_name(&channel) else { return };
        match self.hub.invite(conn, &room, &nick) {
            Ok(_) => {
                let shown = self.shown_nick(&targets[0].identity().nick);
                self.numeric(RPL_INVITING, &[&shown, room.as_str()]);
                if let Some(away) = targets[0].away() {
                    self.numeric(RPL_AWAY, &[&shown, &away]);
                }
            }
            Err(e) => self.room_error(&e),
        }
    }
}
