//! The hub: rooms, their members and the fan-out, shared by every front-end.
//!
//! A front-end registers each connection ([`Hub::connect`]) and gets a [`Conn`] with an
//! [`Outbox`]. Joining, posting, topics, modes and kicks go through the hub, which keeps each
//! loaded room's members in memory and its durable state in the store.
//!
//! # Order and durability
//!
//! A post is an [`Op::Post`] on the room's shard. Under the room's sequencer the hub stamps it
//! (time never decreasing within the room) and queues it, so the shard applies a room's posts in
//! the order they were stamped and numbers them in that order. Once a post is durable it is fanned
//! out, but only after every earlier post of the room has been (each post's completion delivers
//! every durable post at the head of the room's queue), so every member sees a room's messages in
//! sequence order, which is also the history's order. Joins, parts and other room events are
//! delivered under the same room lock, so they interleave with messages identically for everyone.
//!
//! # Cost
//!
//! A room's members are a hash map: joining and leaving cost O(1) plus the O(n) broadcast of the
//! event itself; NAMES is one O(n) walk. A fan-out pushes one shared `Arc<Event>` per member.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tidings_core::{
    Address, CHAT_BODY_BYTES_MAX, ChatMessage, Frontend, HistoryQuery, MessageKind, Op, Outcome, PresenceStatus,
    RoomModes, RoomName, RoomRecord, TOPIC_BYTES_MAX, Topic,
};
use tidings_store::{Store, StoreError};
use tracing::{debug, warn};

use crate::id::message_id;
use crate::outbox::Outbox;
use crate::render::Renders;

/// A connection's id, unique within the process.
pub type ConnId = u64;

/// Who a member is, as others see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Nickname as shown (not unique outside IRC).
    pub nick: String,
    /// IRC user name (ident), or the front-end's name.
    pub user: String,
    /// Host shown in IRC prefixes (the peer's IP address).
    pub host: String,
    /// Account, when logged in.
    pub account: Option<Address>,
    /// Front-end.
    pub via: Frontend,
}

/// A member of a room as events and listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// The connection.
    pub conn: ConnId,
    /// Who.
    pub identity: Identity,
    /// Channel operator (`@`).
    pub operator: bool,
    /// Voiced (`+`).
    pub voiced: bool,
    /// Away message, when away.
    pub away: Option<String>,
}

/// How a member left a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leave {
    /// PART (or the line protocol's closing connection), with an optional reason.
    Part(Option<String>),
    /// The connection ended (QUIT, close, timeout, slow consumer), with a reason.
    Quit(String),
    /// An operator removed them.
    Kick {
        /// The operator's nick.
        by: String,
        /// The reason.
        reason: String,
    },
}

/// One mode change as applied (RFC 2811 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeChange {
    /// `i`.
    InviteOnly(bool),
    /// `k` (set with the key, or removed).
    Key(Option<String>),
    /// `l` (set with the limit, or removed).
    Limit(Option<u32>),
    /// `n`.
    NoExternal(bool),
    /// `t`.
    TopicLocked(bool),
    /// `o` for a member (by nick).
    Operator(String, bool),
    /// `v` for a member (by nick).
    Voice(String, bool),
}

impl ModeChange {
    /// `(sign, letter, parameter)` as IRC writes it.
    pub fn to_irc(&self) -> (char, char, Option<String>) {
        let sign = |on: bool| if on { '+' } else { '-' };
        match self {
            ModeChange::InviteOnly(on) => (sign(*on), 'i', None),
            ModeChange::Key(key) => (sign(key.is_some()), 'k', Some(key.clone().unwrap_or_else(|| "*".into()))),
            ModeChange::Limit(limit) => (sign(limit.is_some()), 'l', limit.map(|l| l.to_string())),
            ModeChange::NoExternal(on) => (sign(*on), 'n', None),
            ModeChange::TopicLocked(on) => (sign(*on), 't', None),
            ModeChange::Operator(nick, on) => (sign(*on), 'o', Some(nick.clone())),
            ModeChange::Voice(nick, on) => (sign(*on), 'v', Some(nick.clone())),
        }
    }

    /// A list of changes as one IRC mode string with parameters: `+ok-l nick key`.
    pub fn irc_string(changes: &[ModeChange]) -> String {
        let mut letters = String::new();
        let mut params = Vec::new();
        let mut current = ' ';
        for change in changes {
            let (sign, letter, param) = change.to_irc();
            if sign != current {
                letters.push(sign);
                current = sign;
            }
            letters.push(letter);
            params.extend(param);
        }
        std::iter::once(letters).chain(params).collect::<Vec<_>>().join(" ")
    }
}

/// What the hub tells connections.
#[derive(Clone, Debug)]
pub enum Event {
    /// A room message (also kept in history), and its renderings shared by the members' connections
    /// (see [`Renders`]).
    Message(Arc<ChatMessage>, Renders),
    /// A private message to this connection's nick (not kept).
    Direct {
        /// Sender.
        from: Identity,
        /// The nick it was sent to.
        to: String,
        /// Kind.
        kind: MessageKind,
        /// Text.
        body: String,
        /// Unix milliseconds.
        at_ms: i64,
        /// Unique id.
        id: String,
    },
    /// Someone joined a room (the joiner receives it too).
    Joined {
        /// The room.
        room: RoomName,
        /// Who.
        member: MemberView,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// Someone left a room (the leaver receives it too, unless their connection ended).
    Left {
        /// The room.
        room: RoomName,
        /// Who.
        member: MemberView,
        /// How.
        how: Leave,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// A member changed nick (sent once to each connection sharing a room with them, and to them).
    Nick {
        /// The member's identity before.
        old: Identity,
        /// The new nick.
        new: String,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// A room's topic changed.
    Topic {
        /// The room.
        room: RoomName,
        /// The topic.
        topic: Topic,
    },
    /// A room's modes changed.
    Modes {
        /// The room.
        room: RoomName,
        /// Who changed them.
        by: Identity,
        /// What changed, in order.
        changes: Vec<ModeChange>,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// This connection was invited to a room.
    Invited {
        /// The room.
        room: RoomName,
        /// Who invited.
        by: Identity,
    },
    /// A member's presence changed (sent to the rooms the member is in). An account whose last
    /// connection ended is announced [`PresenceStatus::Offline`] to the rooms it was in, after its
    /// quit; `at_ms` is then its last-seen time. Front-ends that show quits themselves (IRC, the
    /// line protocol) may ignore that one.
    Presence {
        /// Who.
        identity: Identity,
        /// New status.
        status: PresenceStatus,
        /// Away message.
        message: Option<String>,
        /// Unix milliseconds.
        at_ms: i64,
    },
}

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Already in the room.
    #[error("you are already in {0}")]
    AlreadyMember(RoomName),
    /// `+i` and not invited (IRC 473).
    #[error("cannot join {0}: invite only")]
    InviteOnly(RoomName),
    /// `+k` and a wrong key (IRC 475).
    #[error("cannot join {0}: wrong key")]
    BadKey(RoomName),
    /// `+l` reached (IRC 471).
    #[error("cannot join {0}: room is full")]
    Full(RoomName),
    /// In as many rooms as allowed (IRC 405).
    #[error("cannot join {0}: you are in too many rooms")]
    TooManyRooms(RoomName),
    /// Exclusive create of an existing room.
    #[error("room {0} already exists")]
    Exists(RoomName),
    /// The store failed.
    #[error("{0}")]
    Store(StoreError),
}

/// Why a room action (post, topic, modes, kick, invite, part) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// No such room (IRC 403).
    #[error("no such room {0}")]
    NoSuchRoom(RoomName),
    /// The connection is not in the room (IRC 442 / 404).
    #[error("you are not in {0}")]
    NotMember(RoomName),
    /// Needs channel-operator status (IRC 482).
    #[error("you are not an operator of {0}")]
    NotOperator(RoomName),
    /// The target nick is not in the room (IRC 441).
    #[error("{1} is not in {0}")]
    TargetNotMember(RoomName, String),
    /// The target is already in the room (IRC 443).
    #[error("{1} is already in {0}")]
    TargetAlreadyMember(RoomName, String),
    /// Empty text, or text over the limit.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("{0}")]
    Store(StoreError),
}

/// A room as LIST shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSummary {
    /// Name.
    pub name: RoomName,
    /// Members connected now.
    pub members: usize,
    /// Topic text (empty: none).
    pub topic: String,
}

/// What a joiner learns.
#[derive(Clone, Debug)]
pub struct Joined {
    /// The room.
    pub room: RoomName,
    /// Topic, if set.
    pub topic: Option<Topic>,
    /// Modes.
    pub modes: RoomModes,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Every member, the joiner included.
    pub members: Vec<MemberView>,
}

/// Limits the hub enforces, from `[chat]`.
#[derive(Clone, Debug)]
pub struct HubLimits {
    /// Events an outbox holds before its connection is dropped as too slow.
    pub outbox_events_max: usize,
    /// Rooms one connection may be in at once.
    pub rooms_per_connection_max: usize,
    /// Longest message body, octets.
    pub body_bytes_max: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits { outbox_events_max: 4096, rooms_per_connection_max: 100, body_bytes_max: CHAT_BODY_BYTES_MAX }
    }
}

/// A registered connection: its identity, rooms and outbox. Give it back with
/// [`Hub::disconnect`] when the connection ends.
pub struct Conn {
    id: ConnId,
    outbox: Arc<Outbox>,
    state: Mutex<ConnState>,
}

struct ConnState {
    identity: Identity,
    rooms: HashSet<RoomName>,
    away: Option<String>,
}

impl Conn {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The outbox to drain.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The identity now.
    pub fn identity(&self) -> Identity {
        self.lock().identity.clone()
    }

    /// The rooms the connection is in, sorted.
    pub fn rooms(&self) -> Vec<RoomName> {
        let mut rooms: Vec<_> = self.lock().rooms.iter().cloned().collect();
        rooms.sort();
        rooms
    }

    /// The away message, when away.
    pub fn away(&self) -> Option<String> {
        self.lock().away.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().expect("conn lock")
    }
}

struct Room {
    name: RoomName,
    /// Operations holding the room between looking it up and finishing (joins loading it, posts
    /// in flight): while above zero the room stays in the hub's map, so nobody joins a copy that
    /// was already forgotten. Changed under the hub's `rooms` lock when it goes up.
    busy: std::sync::atomic::AtomicUsize,
    /// Serializes stamping and queueing posts, so the shard applies them in stamp order.
    sequencer: tokio::sync::Mutex<()>,
    inner: Mutex<RoomInner>,
}

struct RoomInner {
    /// Loaded from the store (false until the first joiner has read or created it).
    loaded: bool,
    created_ms: i64,
    topic: Option<Topic>,
    modes: RoomModes,
    members: HashMap<ConnId, Member>,
    /// Nicks (lower case) and accounts invited while `+i`.
    invited: HashSet<String>,
    last_at_ms: i64,
    next_ticket: u64,
    /// Posts queued, in ticket order: `None` until durable (or failed).
    posts: VecDeque<(u64, Option<Option<Arc<Event>>>)>,
}

struct Member {
    conn: Weak<Conn>,
    outbox: Arc<Outbox>,
    operator: bool,
    voiced: bool,
}

impl RoomInner {
    fn view(&self, conn: &Conn, member: &Member) -> MemberView {
        let state = conn.lock();
        MemberView {
            conn: conn.id,
            identity: state.identity.clone(),
            operator: member.operator,
            voiced: member.voiced,
            away: state.away.clone(),
        }
    }

    fn views(&self) -> Vec<MemberView> {
        self.members.values().filter_map(|m| m.conn.upgrade().map(|c| self.view(&c, m))).collect()
    }

    fn broadcast(&self, event: Event) {
        let event = Arc::new(event);
        for member in self.members.values() {
            member.outbox.push(Arc::clone(&event));
        }
    }

    fn find_nick(&self, nick: &str) -> Option<(ConnId, Arc<Conn>)> {
        self.members.iter().find_map(|(id, m)| {
            let conn = m.conn.upgrade()?;
            let matches = conn.lock().identity.nick.eq_ignore_ascii_case(nick);
            matches.then_some((*id, conn))
        })
    }

    fn is_operator(&self, conn: ConnId) -> bool {
        self.members.get(&conn).is_some_and(|m| m.operator)
    }
}

/// Most pending invitations of one room (they are forgotten when the room empties).
pub const INVITATIONS_MAX: usize = 256;

/// Ends a hold on a room when dropped (see `Room::busy`).
struct Held(Arc<Room>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The rooms of one node and everyone in them.
pub struct Hub {
    store: Arc<dyn Store>,
    limits: HubLimits,
    next_conn: AtomicU64,
    rooms: Mutex<HashMap<RoomName, Arc<Room>>>,
    conns: Mutex<HashMap<ConnId, Weak<Conn>>>,
    /// Connections by nick (ASCII lower case), so a lookup by nick costs O(1), not a walk of every
    /// connection. Updated with `conns` by connect, set_nick and disconnect.
    nicks: Mutex<HashMap<String, HashMap<ConnId, Weak<Conn>>>>,
    /// Connections per account, for presence.
    online: Mutex<HashMap<Address, usize>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Hub {
    /// A hub over `store`.
    pub fn new(store: Arc<dyn Store>, limits: HubLimits) -> Arc<Hub> {
        Arc::new(Hub {
            store,
            limits,
            next_conn: AtomicU64::new(1),
            rooms: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            nicks: Mutex::new(HashMap::new()),
            online: Mutex::new(HashMap::new()),
        })
    }

    /// The store behind the hub.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The hub's limits.
    pub fn limits(&self) -> &HubLimits {
        &self.limits
    }

    /// Registers a connection. An account's first connection makes it online (persisted).
    pub fn connect(self: &Arc<Self>, identity: Identity) -> Arc<Conn> {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let account = identity.account.clone();
        let nick = identity.nick.to_ascii_lowercase();
        let conn = Arc::new(Conn {
            id,
            outbox: Outbox::new(self.limits.outbox_events_max),
            state: Mutex::new(ConnState { identity, rooms: HashSet::new(), away: None }),
        });
        self.conns.lock().expect("conns").insert(id, Arc::downgrade(&conn));
        self.nicks.lock().expect("nicks").entry(nick).or_default().insert(id, Arc::downgrade(&conn));
        if let Some(account) = account {
            self.account_connected(account);
        }
        conn
    }

    /// Rooms loaded now: those with members (or posts in flight), IRC's "channels formed".
    pub fn rooms_loaded(&self) -> usize {
        self.rooms.lock().expect("rooms").len()
    }

    /// Connections registered now.
    pub fn connections(&self) -> usize {
        self.conns.lock().expect("conns").len()
    }

    fn account_connected(&self, account: Address) {
        let first = {
            let mut online = self.online.lock().expect("online");
            let count = online.entry(account.clone()).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first {
            self.persist_presence(account, PresenceStatus::Online, None);
        }
    }

    fn persist_presence(&self, address: Address, status: PresenceStatus, message: Option<String>) {
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            let op = Op::SetPresence { address: address.clone(), status, message, at_ms: now_ms() };
            if let Err(e) = store.apply(&address, op).await {
                debug!(%address, error = %e, "presence not recorded");
            }
        });
    }

    /// Logs a connection in to `account` after it registered (IRC's late SASL/PASS).
    pub fn set_account(&self, conn: &Conn, account: Address) {
        let previous = conn.lock().identity.account.replace(account.clone());
        if previous.as_ref() != Some(&account) {
            self.account_connected(account);
        }
    }

    /// Ends a connection: it leaves every room with `reason` (the others see a quit), and an
    /// account's last connection makes it offline (persisted, with its last-seen time). The other
    /// members of the rooms it was in then get one [`Event::Presence`] each with
    /// [`PresenceStatus::Offline`], after the quit.
    pub fn disconnect(&self, conn: &Conn, reason: &str) {
        let account = conn.lock().identity.account.clone();
        let last = account.as_ref().is_some_and(|account| {
            let mut online = self.online.lock().expect("online");
            match online.get_mut(account) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                _ => {
                    online.remove(account);
                    true
                }
            }
        });
        let at_ms = now_ms();
        let offline = last.then(|| {
            Arc::new(Event::Presence {
                identity: conn.identity(),
                status: PresenceStatus::Offline,
                message: None,
                at_ms,
            })
        });
        let names: Vec<RoomName> = conn.lock().rooms.drain().collect();
        let rooms: Vec<Arc<Room>> = names.iter().filter_map(|name| self.room_loaded(name)).collect();
        // The quit in every room first, then (an account's last connection) one offline notice to
        // each connection that shared a room with it.
        for room in &rooms {
            let mut inner = room.inner.lock().expect("room");
            if let Some(member) = inner.members.remove(&conn.id) {
                let view = inner.view(conn, &member);
                inner.broadcast(Event::Left {
                    room: room.name.clone(),
                    member: view,
                    how: Leave::Quit(reason.into()),
                    at_ms,
                });
            }
        }
        let mut told = HashSet::new();
        for room in &rooms {
            let inner = room.inner.lock().expect("room");
            if let Some(offline) = &offline {
                for (id, member) in &inner.members {
                    if told.insert(*id) {
                        member.outbox.push(Arc::clone(offline));
                    }
                }
            }
            self.maybe_unload(room, &inner);
        }
        self.conns.lock().expect("conns").remove(&conn.id);
        let nick = conn.lock().identity.nick.to_ascii_lowercase();
        self.unindex_nick(&nick, conn.id);
        conn.outbox.close(reason);
        if let (true, Some(account)) = (last, account) {
            self.persist_presence(account, PresenceStatus::Offline, None);
        }
    }

    /// Whether `account` has a connection now.
    pub fn is_online(&self, account: &Address) -> bool {
        self.online.lock().expect("online").contains_key(account)
    }

    fn room_loaded(&self, name: &RoomName) -> Option<Arc<Room>> {
        self.rooms.lock().expect("rooms").get(name).cloned()
    }

    /// The room, loaded or a new entry, held busy until [`Hub::release`].
    fn acquire(&self, name: &RoomName) -> Arc<Room> {
        let mut rooms = self.rooms.lock().expect("rooms");
        let room = Arc::clone(rooms.entry(name.clone()).or_insert_with(|| {
            Arc::new(Room {
                name: name.clone(),
                busy: std::sync::atomic::AtomicUsize::new(0),
                sequencer: tokio::sync::Mutex::new(()),
                inner: Mutex::new(RoomInner {
                    loaded: false,
                    created_ms: 0,
                    topic: None,
                    modes: RoomModes::new_room(),
                    members: HashMap::new(),
                    invited: HashSet::new(),
                    last_at_ms: 0,
                    next_ticket: 0,
                    posts: VecDeque::new(),
                }),
            })
        }));
        room.busy.fetch_add(1, Ordering::AcqRel);
        room
    }

    /// Ends a hold taken by [`Hub::acquire`]; forgets the room if nothing else holds it.
    fn release(&self, room: &Arc<Room>) {
        room.busy.fetch_sub(1, Ordering::AcqRel);
        let inner = room.inner.lock().expect("room");
        self.maybe_unload(room, &inner);
    }

    /// Forgets a room with no members, no post in flight and nobody holding it (its state is in
    /// the store; pending invitations go with it). Lock order: the room's `inner`, then `rooms`.
    fn maybe_unload(&self, room: &Arc<Room>, inner: &RoomInner) {
        if inner.members.is_empty() && inner.posts.is_empty() {
            let mut rooms = self.rooms.lock().expect("rooms");
            // Read under `rooms`, where holds are taken: none can appear meanwhile.
            if room.busy.load(Ordering::Acquire) == 0 && rooms.get(&room.name).is_some_and(|r| Arc::ptr_eq(r, room)) {
                rooms.remove(&room.name);
            }
        }
    }

    /// Loads (or, when `create`, creates) the room's durable state into memory. With `exclusive`,
    /// a room that exists is an error.
    async fn load(&self, room: &Arc<Room>, exclusive: bool) -> Result<(), JoinError> {
        let name = &room.name;
        if room.inner.lock().expect("room").loaded && !exclusive {
            return Ok(());
        }
        // The sequencer also orders loading against posts, so nothing is posted to a half-loaded room.
        let sequencer = room.sequencer.lock().await;
        if room.inner.lock().expect("room").loaded && !exclusive {
            drop(sequencer);
            return Ok(());
        }
        let op = Op::CreateRoom { room: name.clone(), created_ms: now_ms(), modes: RoomModes::new_room(), exclusive };
        match self.store.apply_room(name, op).await {
            Ok(_) => {}
            Err(StoreError::RoomExists(_)) => return Err(JoinError::Exists(name.clone())),
            Err(e) => return Err(JoinError::Store(e)),
        }
        let record = self.store.room(name).await.map_err(JoinError::Store)?;
        let mut inner = room.inner.lock().expect("room");
        if !inner.loaded
            && let Some(record) = record
        {
            inner.created_ms = record.created_ms;
            inner.topic = record.topic.filter(|t| !t.text.is_empty());
            inner.modes = record.modes;
            inner.loaded = true;
        }
        drop(inner);
        drop(sequencer);
        Ok(())
    }

    /// Joins `conn` to `name`, creating the room if it does not exist (or, with `exclusive`, only
    /// if it does not). The first member of an empty room becomes its operator. Everyone in the
    /// room, the joiner included, gets [`Event::Joined`].
    ///
    /// # Errors
    /// [`JoinError`].
    pub async fn join(
        &self,
        conn: &Arc<Conn>,
        name: &RoomName,
        key: Option<&str>,
        exclusive: bool,
    ) -> Result<Joined, JoinError> {
        {
            let state = conn.lock();
            if state.rooms.contains(name) {
                return Err(JoinError::AlreadyMember(name.clone()));
            }
            if state.rooms.len() >= self.limits.rooms_per_connection_max {
                return Err(JoinError::TooManyRooms(name.clone()));
            }
        }
        let room = self.acquire(name);
        let joined = self.join_held(conn, &room, key, exclusive).await;
        self.release(&room);
        joined
    }

    async fn join_held(
        &self,
        conn: &Arc<Conn>,
        room: &Arc<Room>,
        key: Option<&str>,
        exclusive: bool,
    ) -> Result<Joined, JoinError> {
        let name = &room.name;
        self.load(room, exclusive).await?;
        let mut inner = room.inner.lock().expect("room");
        let (nick, account) = {
            let state = conn.lock();
            (state.identity.nick.to_ascii_lowercase(), state.identity.account.as_ref().map(Address::to_string))
        };
        let invited = inner.invited.contains(&nick) || account.as_ref().is_some_and(|a| inner.invited.contains(a));
        if inner.modes.invite_only && !invited {
            return Err(JoinError::InviteOnly(name.clone()));
        }
        if let Some(required) = &inner.modes.key
            && key != Some(required.as_str())
            && !invited
        {
            return Err(JoinError::BadKey(name.clone()));
        }
        if let Some(limit) = inner.modes.limit
            && inner.members.len() >= limit as usize
            && !invited
        {
            return Err(JoinError::Full(name.clone()));
        }
        inner.invited.remove(&nick);
        if let Some(account) = &account {
            inner.invited.remove(account);
        }
        let member = Member {
            conn: Arc::downgrade(conn),
            outbox: Arc::clone(&conn.outbox),
            operator: inner.members.is_empty(),
            voiced: false,
        };
        let view = inner.view(conn, &member);
        inner.members.insert(conn.id, member);
        conn.lock().rooms.insert(name.clone());
        inner.broadcast(Event::Joined { room: name.clone(), member: view, at_ms: now_ms() });
        Ok(Joined {
            room: name.clone(),
            topic: inner.topic.clone(),
            modes: inner.modes.clone(),
            created_ms: inner.created_ms,
            members: inner.views(),
        })
    }

    /// Takes `conn` out of `name`; everyone in it, the leaver included, gets [`Event::Left`].
    ///
    /// # Errors
    /// [`RoomError::NotMember`].
    pub fn part(&self, conn: &Conn, name: &RoomName, reason: Option<String>) -> Result<(), RoomError> {
        if !conn.lock().rooms.remove(name) {
            return Err(RoomError::NotMember(name.clone()));
        }
        let Some(room) = self.room_loaded(name) else { return Ok(()) };
        let mut inner = room.inner.lock().expect("room");
        if let Some(member) = inner.members.get(&conn.id) {
            let view = inner.view(conn, member);
            inner.broadcast(Event::Left {
                room: name.clone(),
                member: view,
                how: Leave::Part(reason),
                at_ms: now_ms(),
            });
            inner.members.remove(&conn.id);
        }
        self.maybe_unload(&room, &inner);
        Ok(())
    }

    /// Posts a message to a room and returns it once it is durable and fanned out to every member
    /// (the sender included). A non-member may post only to a room without `+n`.
    ///
    /// # Errors
    /// [`RoomError::Invalid`] for an empty or oversized body, [`RoomError::NotMember`],
    /// [`RoomError::NoSuchRoom`], [`RoomError::Store`].
    pub async fn post(
        &self,
        conn: &Conn,
        name: &RoomName,
        kind: MessageKind,
        body: &str,
    ) -> Result<Arc<ChatMessage>, RoomError> {
        if body.is_empty() {
            return Err(RoomError::Invalid("empty message".into()));
        }
        if body.len() > self.limits.body_bytes_max {
            return Err(RoomError::Invalid(format!("message longer than {} octets", self.limits.body_bytes_max)));
        }
        if body.contains(['\r', '\n', '\0']) {
            return Err(RoomError::Invalid("message contains CR, LF or NUL".into()));
        }
        if !conn.lock().rooms.contains(name) {
            let record = self.store.room(name).await.map_err(RoomError::Store)?;
            let Some(record) = record else { return Err(RoomError::NoSuchRoom(name.clone())) };
            if record.modes.no_external {
                return Err(RoomError::NotMember(name.clone()));
            }
        }
        // Held until the post settled, so the room cannot be forgotten while it is in flight.
        let room = self.acquire(name);
        let identity = conn.identity();
        let member_id = conn.id;
        let store = Arc::clone(&self.store);
        let (task_room, name2, body) = (Arc::clone(&room), name.clone(), body.to_owned());
        // From taking a ticket to settling it, the post runs as a task of its own: if the caller
        // goes away (its connection ends, its future is dropped) the ticket is still settled, so
        // the room's later posts are not held back behind it.
        let sequenced = tokio::spawn(async move {
            // The hold taken above ends with the task, however it ends.
            let hold = Held(task_room);
            let room = &hold.0;
            let sequencer = room.sequencer.lock().await;
            let (ticket, at_ms) = {
                let mut inner = room.inner.lock().expect("room");
                if inner.loaded && inner.modes.no_external && !inner.members.contains_key(&member_id) {
                    return Err(RoomError::NotMember(name2));
                }
                let at_ms = now_ms().max(inner.last_at_ms);
                inner.last_at_ms = at_ms;
                let ticket = inner.next_ticket;
                inner.next_ticket += 1;
                inner.posts.push_back((ticket, None));
                (ticket, at_ms)
            };
            let message = ChatMessage {
                id: message_id(at_ms),
                room: name2.clone(),
                seq: 0,
                at_ms,
                nick: identity.nick,
                account: identity.account,
                via: identity.via,
                kind,
                body,
            };
            let shard = store.shard_map().shard_of_room(&name2);
            let submitted = store.submit(shard, Op::Post { message: message.clone() }).await;
            drop(sequencer);
            let result = match submitted {
                Ok(pending) => pending.await,
                Err(e) => Err(e),
            };
            let posted = match result {
                Ok(Outcome::Posted { seq }) => Ok(Arc::new(ChatMessage { seq, ..message })),
                Ok(other) => Err(StoreError::Database(format!("unexpected outcome {other:?}"))),
                Err(e) => Err(e),
            };
            let mut inner = room.inner.lock().expect("room");
            let event = posted.as_ref().ok().map(|m| Arc::new(Event::Message(Arc::clone(m), Renders::default())));
            if let Some(slot) = inner.posts.iter_mut().find(|(t, _)| *t == ticket) {
                slot.1 = Some(event);
            }
            // Deliver every settled post at the head, in order.
            while let Some((_, Some(_))) = inner.posts.front() {
                let (_, settled) = inner.posts.pop_front().expect("front");
                if let Some(Some(event)) = settled {
                    for member in inner.members.values() {
                        member.outbox.push(Arc::clone(&event));
                    }
                }
            }
            drop(inner);
            posted.map_err(|e| {
                warn!(room = %name2, error = %e, "post failed");
                RoomError::Store(e)
            })
        });
        let posted = sequenced
            .await
            .unwrap_or_else(|e| Err(RoomError::Store(StoreError::Database(format!("post task failed: {e}")))));
        let inner = room.inner.lock().expect("room");
        self.maybe_unload(&room, &inner);
        drop(inner);
        posted
    }

    /// Sends a private message to every connection whose nick is `target` (case-insensitive);
    /// returns how many received it (0: no such nick).
    pub fn direct(&self, conn: &Conn, target: &str, kind: MessageKind, body: &str) -> usize {
        let from = conn.identity();
        let at_ms = now_ms();
        let event = Arc::new(Event::Direct {
            from,
            to: target.to_owned(),
            kind,
            body: body.to_owned(),
            at_ms,
            id: message_id(at_ms),
        });
        let targets = self.find_nick(target);
        for target in &targets {
            target.outbox.push(Arc::clone(&event));
        }
        targets.len()
    }

    /// Connections whose nick is `nick` (case-insensitive).
    pub fn find_nick(&self, nick: &str) -> Vec<Arc<Conn>> {
        let nicks = self.nicks.lock().expect("nicks");
        nicks
            .get(&nick.to_ascii_lowercase())
            .map(|conns| conns.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }

    /// Drops connection `id` from the nick index under `nick` (lower case).
    fn unindex_nick(&self, nick: &str, id: ConnId) {
        let mut nicks = self.nicks.lock().expect("nicks");
        if let Some(conns) = nicks.get_mut(nick) {
            conns.remove(&id);
            if conns.is_empty() {
                nicks.remove(nick);
            }
        }
    }

    /// Changes `conn`'s nick; every connection sharing a room with it, and itself, gets one
    /// [`Event::Nick`]. Uniqueness is the front-end's concern (IRC keeps nicks unique).
    pub fn set_nick(&self, conn: &Conn, nick: &str) {
        let old = {
            let mut state = conn.lock();
            let old = state.identity.clone();
            state.identity.nick = nick.to_owned();
            old
        };
        let (before, after) = (old.nick.to_ascii_lowercase(), nick.to_ascii_lowercase());
        if before != after {
            self.unindex_nick(&before, conn.id);
            if let Some(me) = self.conns.lock().expect("conns").get(&conn.id).cloned() {
                self.nicks.lock().expect("nicks").entry(after).or_default().insert(conn.id, me);
            }
        }
        let event = Arc::new(Event::Nick { old, new: nick.to_owned(), at_ms: now_ms() });
        let mut told = HashSet::new();
        told.insert(conn.id);
        conn.outbox.push(Arc::clone(&event));
        for name in conn.rooms() {
            let Some(room) = self.room_loaded(&name) else { continue };
            let inner = room.inner.lock().expect("room");
            for (id, member) in &inner.members {
                if told.insert(*id) {
                    member.outbox.push(Arc::clone(&event));
                }
            }
        }
    }

    /// Sets or clears `conn`'s away message; the rooms it is in get [`Event::Presence`], and an
    /// account's status is persisted.
    pub fn set_away(&self, conn: &Conn, message: Option<String>) {
        let identity = {
            let mut state = conn.lock();
            state.away = message.clone();
            state.identity.clone()
        };
        let status = if message.is_some() { PresenceStatus::Away } else { PresenceStatus::Online };
        if let Some(account) = &identity.account {
            self.persist_presence(account.clone(), status, message.clone());
        }
        let event = Arc::new(Event::Presence { identity, status, message, at_ms: now_ms() });
        let mut told = HashSet::new();
        for name in conn.rooms() {
            let Some(room) = self.room_loaded(&name) else { continue };
            let inner = room.inner.lock().expect("room");
            for (id, member) in &inner.members {
                if told.insert(*id) {
                    member.outbox.push(Arc::clone(&event));
                }
            }
        }
    }

    fn member_room(&self, conn: &Conn, name: &RoomName) -> Result<Arc<Room>, RoomError> {
        if !conn.lock().rooms.contains(name) {
            return Err(if self.room_loaded(name).is_some() {
                RoomError::NotMember(name.clone())
            } else {
                RoomError::NoSuchRoom(name.clone())
            });
        }
        self.room_loaded(name).ok_or_else(|| RoomError::NotMember(name.clone()))
    }

    /// Sets a room's topic (persisted, then announced to every member). With `+t` only operators
    /// may.
    ///
    /// # Errors
    /// [`RoomError::NotMember`], [`RoomError::NotOperator`], [`RoomError::Invalid`] (over
    /// [`TOPIC_BYTES_MAX`]), [`RoomError::Store`].
    pub async fn set_topic(&self, conn: &Conn, name: &RoomName, text: &str) -> Result<Topic, RoomError> {
        if text.len() > TOPIC_BYTES_MAX || text.contains(['\r', '\n', '\0']) {
            return Err(RoomError::Invalid(format!("a topic is one line of at most {TOPIC_BYTES_MAX} octets")));
        }
        let room = self.member_room(conn, name)?;
        {
            let inner = room.inner.lock().expect("room");
            if inner.modes.topic_locked && !inner.is_operator(conn.id) {
                return Err(RoomError::NotOperator(name.clone()));
            }
        }
        let topic = Topic { text: text.to_owned(), setter: conn.identity().nick, at_ms: now_ms() };
        let op = Op::SetTopic {
            room: name.clone(),
            text: topic.text.clone(),
            setter: topic.setter.clone(),
            at_ms: topic.at_ms,
        };
        let _sequencer = room.sequencer.lock().await;
        self.store.apply_room(name, op).await.map_err(RoomError::Store)?;
        let mut inner = room.inner.lock().expect("room");
        inner.topic = (!topic.text.is_empty()).then(|| topic.clone());
        inner.broadcast(Event::Topic { room: name.clone(), topic: topic.clone() });
        Ok(topic)
    }

    /// Applies mode changes (operators only); persists the room's modes when they changed and
    /// announces the applied changes. Changes that change nothing are left out of the result.
    ///
    /// # Errors
    /// [`RoomError::NotMember`], [`RoomError::NotOperator`], [`RoomError::TargetNotMember`],
    /// [`RoomError::Store`].
    pub async fn set_modes(
        &self,
        conn: &Conn,
        name: &RoomName,
        changes: Vec<ModeChange>,
    ) -> Result<Vec<ModeChange>, RoomError> {
        let room = self.member_room(conn, name)?;
        let _sequencer = room.sequencer.lock().await;
        let (modes, applied, room_changed) = {
            let mut inner = room.inner.lock().expect("room");
            if !inner.is_operator(conn.id) {
                return Err(RoomError::NotOperator(name.clone()));
            }
            let mut modes = inner.modes.clone();
            let mut applied = Vec::new();
            let mut member_changes = Vec::new();
            for change in changes {
                let changed = match &change {
                    ModeChange::InviteOnly(on) => std::mem::replace(&mut modes.invite_only, *on) != *on,
                    ModeChange::NoExternal(on) => std::mem::replace(&mut modes.no_external, *on) != *on,
                    ModeChange::TopicLocked(on) => std::mem::replace(&mut modes.topic_locked, *on) != *on,
                    ModeChange::Key(key) => std::mem::replace(&mut modes.key, key.clone()) != *key,
                    ModeChange::Limit(limit) => std::mem::replace(&mut modes.limit, *limit) != *limit,
                    ModeChange::Operator(nick, on) | ModeChange::Voice(nick, on) => {
                        let Some((id, _)) = inner.find_nick(nick) else {
                            return Err(RoomError::TargetNotMember(name.clone(), nick.clone()));
                        };
                        let member = inner.members.get(&id).expect("found");
                        let current =
                            if matches!(change, ModeChange::Operator(..)) { member.operator } else { member.voiced };
                        if current != *on {
                            member_changes.push((id, matches!(change, ModeChange::Operator(..)), *on));
                        }
                        current != *on
                    }
                };
                if changed {
                    applied.push(change);
                }
            }
            for (id, operator, on) in member_changes {
                let member = inner.members.get_mut(&id).expect("found");
                if operator {
                    member.operator = on;
                } else {
                    member.voiced = on;
                }
            }
            let room_changed = modes != inner.modes;
            (modes, applied, room_changed)
        };
        if room_changed {
            self.store
                .apply_room(name, Op::SetRoomModes { room: name.clone(), modes: modes.clone() })
                .await
                .map_err(RoomError::Store)?;
        }
        let mut inner = room.inner.lock().expect("room");
        inner.modes = modes;
        if !applied.is_empty() {
            inner.broadcast(Event::Modes {
                room: name.clone(),
                by: conn.identity(),
                changes: applied.clone(),
                at_ms: now_ms(),
            });
        }
        Ok(applied)
    }

    /// Removes `target` (a nick) from a room (operators only); everyone, the target included, gets
    /// [`Event::Left`] with [`Leave::Kick`].
    ///
    /// # Errors
    /// [`RoomError::NotMember`], [`RoomError::NotOperator`], [`RoomError::TargetNotMember`].
    pub fn kick(&self, conn: &Conn, name: &RoomName, target: &str, reason: &str) -> Result<(), RoomError> {
        let room = self.member_room(conn, name)?;
        let mut inner = room.inner.lock().expect("room");
        if !inner.is_operator(conn.id) {
            return Err(RoomError::NotOperator(name.clone()));
        }
        let Some((id, target_conn)) = inner.find_nick(target) else {
            return Err(RoomError::TargetNotMember(name.clone(), target.to_owned()));
        };
        let member = inner.members.get(&id).expect("found");
        let view = inner.view(&target_conn, member);
        let how = Leave::Kick { by: conn.identity().nick, reason: reason.to_owned() };
        inner.broadcast(Event::Left { room: name.clone(), member: view, how, at_ms: now_ms() });
        inner.members.remove(&id);
        target_conn.lock().rooms.remove(name);
        self.maybe_unload(&room, &inner);
        Ok(())
    }

    /// Invites `target` (a nick) to a room: they may join it past `+i`, `+k` and `+l` once; each
    /// of their connections gets [`Event::Invited`]. Returns how many connections were told. With
    /// `+i`, only operators may invite.
    ///
    /// # Errors
    /// [`RoomError::NotMember`], [`RoomError::NotOperator`], [`RoomError::TargetAlreadyMember`].
    pub fn invite(&self, conn: &Conn, name: &RoomName, target: &str) -> Result<usize, RoomError> {
        let room = self.member_room(conn, name)?;
        let targets = self.find_nick(target);
        let mut inner = room.inner.lock().expect("room");
        if inner.modes.invite_only && !inner.is_operator(conn.id) {
            return Err(RoomError::NotOperator(name.clone()));
        }
        if inner.find_nick(target).is_some() {
            return Err(RoomError::TargetAlreadyMember(name.clone(), target.to_owned()));
        }
        if inner.invited.len() >= INVITATIONS_MAX {
            return Err(RoomError::Invalid(format!("{name} has {INVITATIONS_MAX} pending invitations already")));
        }
        inner.invited.insert(target.to_ascii_lowercase());
        let event = Arc::new(Event::Invited { room: name.clone(), by: conn.identity() });
        for target in &targets {
            target.outbox.push(Arc::clone(&event));
        }
        Ok(targets.len())
    }

    /// The members of a loaded room (empty when nobody is in it).
    pub fn members(&self, name: &RoomName) -> Vec<MemberView> {
        self.room_loaded(name).map(|room| room.inner.lock().expect("room").views()).unwrap_or_default()
    }

    /// Topic and modes of a room as the hub knows them now (`None`: no such room).
    ///
    /// # Errors
    /// [`StoreError`] when the room is not loaded and the store fails.
    pub async fn room(&self, name: &RoomName) -> Result<Option<RoomRecord>, StoreError> {
        if let Some(room) = self.room_loaded(name) {
            let inner = room.inner.lock().expect("room");
            if inner.loaded {
                return Ok(Some(RoomRecord {
                    name: name.clone(),
                    created_ms: inner.created_ms,
                    topic: inner.topic.clone(),
                    modes: inner.modes.clone(),
                    last_seq: 0,
                }));
            }
        }
        self.store.room(name).await
    }

    /// Every room, with how many are in it now, sorted by name.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list(&self) -> Result<Vec<RoomSummary>, StoreError> {
        let records = self.store.rooms().await?;
        // The rooms are copied out first: a room's lock is never taken under `rooms` (the order
        // is the room's, then `rooms`).
        let rooms: Vec<(RoomName, Arc<Room>)> =
            self.rooms.lock().expect("rooms").iter().map(|(n, r)| (n.clone(), Arc::clone(r))).collect();
        let loaded: HashMap<RoomName, (usize, Option<String>)> = {
            rooms
                .iter()
                .map(|(name, room)| {
                    let inner = room.inner.lock().expect("room");
                    (name.clone(), (inner.members.len(), inner.topic.as_ref().map(|t| t.text.clone())))
                })
                .collect()
        };
        Ok(records
            .into_iter()
            .map(|record| {
                let (members, topic) = loaded.get(&record.name).cloned().unwrap_or((0, None));
                let topic = topic.or(record.topic.map(|t| t.text)).unwrap_or_default();
                RoomSummary { name: record.name, members, topic }
            })
            .collect())
    }

    /// A page of a room's history, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn history(&self, name: &RoomName, query: HistoryQuery) -> Result<Vec<ChatMessage>, StoreError> {
        self.store.history(name, query).await
    }
}

#[cfg(test)]
mod tests;
