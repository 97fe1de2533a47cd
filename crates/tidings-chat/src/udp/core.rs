//! The sans-I/O server of the classic UDP chat protocol (PROTOCOLS.md §2).
//!
//! Datagrams (source address and octets) go in; reply datagrams, requests to the hub and log
//! events come out ([`UdpCore::poll_output`]). The core owns the protocol state: the table of
//! clients, keyed by source address (number, nickname, current room, last activity, flood
//! bucket), and answers every command at once from it. The hub side of each command (joining the
//! room `#n`, posting, renaming, leaving) is a [`HubRequest`] the driver carries out and answers
//! with [`UdpCore::answer`].
//!
//! # Order
//!
//! A client's requests form a pipe: the core hands the driver the next one only after the previous
//! one was answered, so the hub sees a client's joins, nickname changes and messages in the order
//! the client sent them (the FIFO the ordering modes build on), while different clients proceed
//! concurrently. A refusal from the hub after the `+OK` (an IRC operator made the room invite-only,
//! the store failed) comes back as a later `-ERR` datagram.
//!
//! # Bounds
//!
//! At most `clients_max` clients; a client silent for `idle_timeout` is forgotten (it leaves its
//! room). Each client has a token bucket: a client over its rate gets one `-ERR` and its datagrams
//! are dropped until it slows down. A client's pipe holds at most `pending_max` waiting requests
//! and all pipes together at most `pending_bytes_max` octets of text; beyond that a command is
//! refused with `-ERR` and changes nothing. Datagrams over [`DATAGRAM_BYTES_MAX`] octets are
//! refused; invalid UTF-8 becomes U+FFFD ([`decode_text`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, OrderingMode, ServerIndex};
use super::command::{Command, DATAGRAM_BYTES_MAX, RoomArgError, parse, parse_room, strip_line_end, valid_nick};
use super::log::LogEvent;
use super::multicast::{Multicast, Origin, Post, Transfer};
use crate::{TokenBucket, decode_text};

/// A client's number on its server, from 1, never reused while the server runs.
pub type ClientId = u64;

/// The core's limits (from `[udp]`; see [`crate::udp::UdpConfig`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CoreSettings {
    /// Chat rooms are 1..=rooms.
    pub rooms: u32,
    /// Most clients in the table.
    pub clients_max: usize,
    /// Silence after which a client is forgotten.
    pub idle_timeout: Duration,
    /// Datagrams per second a client may send on average (≤ 0: no limit).
    pub flood_datagrams_per_sec: f64,
    /// Datagrams a client may send at once before the rate applies.
    pub flood_burst: u32,
    /// Requests one client may have waiting behind the one the hub is carrying out.
    pub pending_max: usize,
    /// Octets of text all clients together may have waiting.
    pub pending_bytes_max: usize,
}

/// What the hub must do for a client. Each is answered with [`UdpCore::answer`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubRequest {
    /// Register the client as a hub connection named `nick` (from `peer`) and join the room `#room`.
    /// `epoch` numbers the client's joins; a later [`UdpCore::removed`] names it.
    Join {
        /// Room number.
        room: u32,
        /// The client's nickname, or `IP:port` without one.
        nick: String,
        /// The client's address.
        peer: SocketAddr,
        /// Which of the client's joins this is.
        epoch: u64,
    },
    /// Leave `#room` and end the client's hub connection.
    Part {
        /// Room number.
        room: u32,
    },
    /// Post `text` to `#room` as the client.
    Post {
        /// Room number.
        room: u32,
        /// The message.
        text: String,
    },
    /// Rename the client's hub connection.
    Nick {
        /// The new nickname.
        nick: String,
    },
    /// The client is gone: end its hub connection, if any, with this reason.
    Forget {
        /// What the others see as the quit reason.
        reason: &'static str,
    },
}

impl HubRequest {
    fn text_bytes(&self) -> usize {
        match self {
            HubRequest::Post { text, .. } => text.len(),
            _ => 0,
        }
    }
}

/// How the hub carried out a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done.
    Done,
    /// Refused or failed, with the reason the client is told.
    Failed(String),
}

/// What the core asks of its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `datagram` to `to` from the server's socket.
    Transmit {
        /// Destination.
        to: SocketAddr,
        /// One line of text, no line end.
        datagram: Vec<u8>,
    },
    /// Carry out `request` for `client`, then call [`UdpCore::answer`].
    Hub {
        /// The client.
        client: ClientId,
        /// What to do.
        request: HubRequest,
    },
    /// An event for the `-v` log.
    Log(LogEvent),
}

struct Client {
    id: ClientId,
    nick: Option<String>,
    room: Option<u32>,
    /// Number of the latest join (0: never joined, so never a hub connection).
    epoch: u64,
    last_active: Instant,
    flood: TokenBucket,
    /// Told it floods, and dropping until a datagram passes the bucket again.
    flooding: bool,
}

enum InFlight {
    Join { room: u32, epoch: u64 },
    Post,
    Other,
}

/// A client's requests: the one the hub is carrying out, and those waiting behind it. Exists only
/// while a request is in flight.
struct Pipe {
    in_flight: InFlight,
    waiting: VecDeque<HubRequest>,
}

/// The UDP chat server's state. See the module documentation.
pub struct UdpCore {
    settings: CoreSettings,
    cluster: Cluster,
    index: ServerIndex,
    multicast: Box<dyn Multicast>,
    clients: HashMap<SocketAddr, Client>,
    addresses: HashMap<ClientId, SocketAddr>,
    /// `(last activity, client)`, oldest first: the next client to expire is the first.
    activity: BTreeSet<(Instant, ClientId)>,
    pipes: HashMap<ClientId, Pipe>,
    pending_bytes: usize,
    next_id: ClientId,
    output: VecDeque<Output>,
    transfers: Vec<Transfer>,
}

impl UdpCore {
    /// Server `index` (1-based) of `cluster`, exchanging room messages with the others through
    /// `multicast`.
    ///
    /// # Panics
    /// When `index` is not a server of `cluster` (the caller checks it with [`Cluster::server`]).
    pub fn new(settings: CoreSettings, cluster: Cluster, index: ServerIndex, multicast: Box<dyn Multicast>) -> UdpCore {
        assert!(cluster.server(index).is_ok(), "server {index} is not in the cluster");
        UdpCore {
            settings,
            cluster,
            index,
            multicast,
            clients: HashMap::new(),
            addresses: HashMap::new(),
            activity: BTreeSet::new(),
            pipes: HashMap::new(),
            pending_bytes: 0,
            next_id: 1,
            output: VecDeque::new(),
            transfers: Vec::new(),
        }
    }

    /// This server's index in its cluster (1-based).
    pub fn index(&self) -> ServerIndex {
        self.index
    }

    /// The ordering mode of the cluster.
    pub fn mode(&self) -> OrderingMode {
        self.multicast.mode()
    }

    /// The limits.
    pub fn settings(&self) -> &CoreSettings {
        &self.settings
    }

    /// Clients in the table now.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// The room of the client at `peer`, if it is known and in one.
    pub fn room_of(&self, peer: SocketAddr) -> Option<u32> {
        self.clients.get(&peer).and_then(|c| c.room)
    }

    /// Requests waiting behind those in flight, and their octets of text.
    pub fn pending(&self) -> (usize, usize) {
        (self.pipes.values().map(|p| p.waiting.len()).sum(), self.pending_bytes)
    }

    /// The next thing to do, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.output.pop_front()
    }

    /// When [`UdpCore::handle_timeout`] should run next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.activity.first().map(|(at, _)| *at + self.settings.idle_timeout);
        match (idle, self.multicast.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets the clients idle since `now - idle_timeout` and runs the multicast's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        let mut transfers = std::mem::take(&mut self.transfers);
        self.multicast.handle_timeout(now, &mut transfers);
        self.apply(&mut transfers);
        self.transfers = transfers;
    }

    /// One datagram from `from`.
    pub fn datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        if let Some(server) = self.cluster.server_at(from) {
            self.log(LogEvent::FromServer { server, bytes: bytes.len() });
            let mut transfers = std::mem::take(&mut self.transfers);
            self.multicast.receive(server, bytes, now, &mut transfers);
            self.apply(&mut transfers);
            self.transfers = transfers;
            return;
        }
        let line = strip_line_end(bytes);
        let too_long = line.len() > DATAGRAM_BYTES_MAX;
        let text = if too_long { Default::default() } else { decode_text(line) };
        let command = if too_long { Command::Text("") } else { parse(&text) };
        let quit = matches!(command, Command::Quit);
        let id = match self.clients.get(&from) {
            Some(client) => client.id,
            // A stranger's /quit asks nothing of us.
            None if quit => return,
            None => match self.admit(from, now) {
                Some(id) => id,
                None => return,
            },
        };
        self.touch(from, now);
        if !quit {
            let client = self.clients.get_mut(&from).expect("known client");
            if !client.flood.take(now) {
                if !client.flooding {
                    client.flooding = true;
                    self.reply(from, "-ERR You are sending too fast; messages are dropped until you slow down");
                    self.log(LogEvent::Flooding { client: id });
                }
                return;
            }
            client.flooding = false;
        }
        if too_long {
            self.reply(from, &format!("-ERR Message longer than {DATAGRAM_BYTES_MAX} bytes"));
            return;
        }
        match command {
            Command::Join(argument) => self.join(from, id, argument),
            Command::Part { extra } => self.part(from, id, extra),
            Command::Nick(argument) => self.nick(from, id, argument),
            Command::Quit => self.forget(from, LogEvent::Quits { client: id }, "Quit", now),
            Command::Unknown(word) => {
                let shown: String = word.chars().take(32).collect();
                self.reply(from, &format!("-ERR Unknown command {shown}"));
            }
            Command::Text(text) => self.text(from, id, text, now),
        }
    }

    /// The answer to the client's request in flight; hands out its next one.
    pub fn answer(&mut self, client: ClientId, answer: Answer) {
        let Some(pipe) = self.pipes.get_mut(&client) else { return };
        let next = pipe.waiting.pop_front();
        let done = match next {
            Some(request) => {
                let kind = in_flight(&request);
                self.pending_bytes -= request.text_bytes();
                self.output.push_back(Output::Hub { client, request });
                std::mem::replace(&mut pipe.in_flight, kind)
            }
            None => self.pipes.remove(&client).expect("pipe").in_flight,
        };
        let Answer::Failed(reason) = answer else { return };
        let Some(&peer) = self.addresses.get(&client) else { return };
        match done {
            InFlight::Join { room, epoch } => {
                let c = self.clients.get_mut(&peer).expect("known client");
                if c.epoch == epoch && c.room == Some(room) {
                    c.room = None;
                }
                self.reply(peer, &format!("-ERR Cannot join chat room #{room}: {reason}"));
                self.log(LogEvent::JoinFailed { client, room, reason });
            }
            InFlight::Post => {
                self.reply(peer, &format!("-ERR Message not delivered: {reason}"));
                self.log(LogEvent::PostFailed { client, reason });
            }
            InFlight::Other => {}
        }
    }

    /// The hub took the client out of the room it joined in join `epoch` (an operator's kick, a
    /// slow consumer); the driver has ended that hub connection. The client is told and is in no
    /// room, unless it has left or joined again since.
    pub fn removed(&mut self, client: ClientId, epoch: u64, reason: &str) {
        let Some(&peer) = self.addresses.get(&client) else { return };
        let c = self.clients.get_mut(&peer).expect("known client");
        if c.epoch != epoch {
            return;
        }
        let Some(room) = c.room.take() else { return };
        self.reply(peer, &format!("-ERR You are no longer in chat room #{room}: {reason}"));
        self.log(LogEvent::Removed { client, room, reason: reason.to_owned() });
    }

    fn join(&mut self, peer: SocketAddr, id: ClientId, argument: Option<&str>) {
        let rooms = self.settings.rooms;
        if let Some(room) = self.clients[&peer].room {
            return self.reply(peer, &format!("-ERR You are already in chat room #{room}"));
        }
        let room = match parse_room(argument, rooms) {
            Ok(room) => room,
            Err(RoomArgError::NotANumber) => {
                return self.reply(peer, &format!("-ERR Usage: /join <n>, where n is a chat room from 1 to {rooms}"));
            }
            Err(RoomArgError::NoSuchRoom) => {
                return self.reply(peer, &format!("-ERR There is no such chat room; they are #1 to #{rooms}"));
            }
        };
        if !self.can_queue(id, 0) {
            return self.busy(peer, id);
        }
        let client = self.clients.get_mut(&peer).expect("known client");
        client.room = Some(room);
        client.epoch += 1;
        let (nick, epoch) = (display_nick(client, peer), client.epoch);
        self.reply(peer, &format!("+OK You are now in chat room #{room}"));
        self.log(LogEvent::Joins { client: id, room });
        self.request(id, HubRequest::Join { room, nick, peer, epoch });
    }

    fn part(&mut self, peer: SocketAddr, id: ClientId, extra: bool) {
        if extra {
            return self.reply(peer, "-ERR Usage: /part (it takes no argument)");
        }
        let Some(room) = self.clients[&peer].room else {
            return self.reply(peer, "-ERR You are not in a chat room");
        };
        if !self.can_queue(id, 0) {
            return self.busy(peer, id);
        }
        self.clients.get_mut(&peer).expect("known client").room = None;
        self.reply(peer, &format!("+OK You have left chat room #{room}"));
        self.log(LogEvent::Leaves { client: id, room });
        self.request(id, HubRequest::Part { room });
    }

    fn nick(&mut self, peer: SocketAddr, id: ClientId, argument: Option<&str>) {
        let Some(name) = argument.filter(|n| valid_nick(n)) else {
            return self.reply(
                peer,
                &format!("-ERR Usage: /nick <name>, one word of at most {} bytes", tidings_core::NICK_BYTES_MAX),
            );
        };
        let in_room = self.clients[&peer].room.is_some();
        if in_room && !self.can_queue(id, 0) {
            return self.busy(peer, id);
        }
        self.clients.get_mut(&peer).expect("known client").nick = Some(name.to_owned());
        self.reply(peer, &format!("+OK Nickname set to '{name}'"));
        self.log(LogEvent::Nick { client: id, nick: name.to_owned() });
        // Out of a room the client has no hub connection; its next join carries the name.
        if in_room {
            self.request(id, HubRequest::Nick { nick: name.to_owned() });
        }
    }

    fn text(&mut self, peer: SocketAddr, id: ClientId, text: &str, now: Instant) {
        let client = &self.clients[&peer];
        let (room, nick) = (client.room, display_nick(client, peer));
        let Some(room) = room else {
            return self.reply(peer, "-ERR You are not in a chat room; send /join <n> first");
        };
        if text.is_empty() {
            return self.reply(peer, "-ERR Empty message");
        }
        if text.contains(['\r', '\n', '\0']) {
            return self.reply(peer, "-ERR A message is one line, without CR, LF or NUL");
        }
        if !self.can_queue(id, text.len()) {
            return self.busy(peer, id);
        }
        self.log(LogEvent::Posts { client: id, text: text.to_owned(), room });
        let post = Post { origin: Origin::Local(id), nick, room, text: text.to_owned() };
        let mut transfers = std::mem::take(&mut self.transfers);
        self.multicast.submit(post, now, &mut transfers);
        self.apply(&mut transfers);
        self.transfers = transfers;
    }

    /// Carries out what the multicast asks.
    fn apply(&mut self, transfers: &mut Vec<Transfer>) {
        for transfer in transfers.drain(..) {
            match transfer {
                Transfer::Deliver(Post { origin: Origin::Local(id), room, text, .. }) => {
                    if self.addresses.contains_key(&id) || self.pipes.contains_key(&id) {
                        self.request(id, HubRequest::Post { room, text });
                    }
                }
                // Only a cluster's multicast delivers posts of other servers' clients; their hub
                // side (a connection standing for the remote sender) comes with it.
                Transfer::Deliver(Post { origin: Origin::Remote { .. }, .. }) => {}
                Transfer::Transmit { to, datagram } => {
                    if let Ok(server) = self.cluster.server(to) {
                        self.output.push_back(Output::Transmit { to: server.forward, datagram });
                    }
                }
            }
        }
    }

    /// Whether a request of `text_bytes` octets of text may wait in the client's pipe.
    fn can_queue(&self, id: ClientId, text_bytes: usize) -> bool {
        match self.pipes.get(&id) {
            None => true,
            Some(pipe) => {
                pipe.waiting.len() < self.settings.pending_max
                    && self.pending_bytes + text_bytes <= self.settings.pending_bytes_max
            }
        }
    }

    fn busy(&mut self, peer: SocketAddr, id: ClientId) {
        self.reply(peer, "-ERR Server busy; nothing was done, try again");
        self.log(LogEvent::Busy { client: id });
    }

    /// Hands `request` to the driver, or queues it behind the client's request in flight.
    fn request(&mut self, id: ClientId, request: HubRequest) {
        match self.pipes.get_mut(&id) {
            Some(pipe) => {
                self.pending_bytes += request.text_bytes();
                pipe.waiting.push_back(request);
            }
            None => {
                self.pipes.insert(id, Pipe { in_flight: in_flight(&request), waiting: VecDeque::new() });
                self.output.push_back(Output::Hub { client: id, request });
            }
        }
    }

    /// A new client at `peer`, if the table has room (after forgetting the idle).
    fn admit(&mut self, peer: SocketAddr, now: Instant) -> Option<ClientId> {
        if self.clients.len() >= self.settings.clients_max {
            self.expire(now);
        }
        if self.clients.len() >= self.settings.clients_max {
            self.reply(peer, "-ERR Too many clients; try again later");
            self.log(LogEvent::Full { peer });
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let flood = TokenBucket::new(self.settings.flood_datagrams_per_sec, self.settings.flood_burst, now);
        let client = Client { id, nick: None, room: None, epoch: 0, last_active: now, flood, flooding: false };
        self.clients.insert(peer, client);
        self.addresses.insert(id, peer);
        self.activity.insert((now, id));
        self.log(LogEvent::NewClient { client: id, peer });
        Some(id)
    }

    fn touch(&mut self, peer: SocketAddr, now: Instant) {
        let client = self.clients.get_mut(&peer).expect("known client");
        if client.last_active != now {
            self.activity.remove(&(client.last_active, client.id));
            client.last_active = now.max(client.last_active);
            self.activity.insert((client.last_active, client.id));
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.activity.first() {
            if at + self.settings.idle_timeout > now {
                break;
            }
            let peer = self.addresses[&id];
            self.forget(peer, LogEvent::Idle { client: id }, "Idle timeout", now);
        }
    }

    /// Removes the client from the table; its hub connection ends after its requests in flight.
    fn forget(&mut self, peer: SocketAddr, event: LogEvent, reason: &'static str, now: Instant) {
        let Some(client) = self.clients.remove(&peer) else { return };
        self.addresses.remove(&client.id);
        self.activity.remove(&(client.last_active, client.id));
        self.log(event);
        let mut transfers = std::mem::take(&mut self.transfers);
        self.multicast.client_quit(client.id, now, &mut transfers);
        self.apply(&mut transfers);
        self.transfers = transfers;
        // A client that never joined a room never had a hub connection.
        if client.epoch > 0 {
            self.request(client.id, HubRequest::Forget { reason });
        }
    }

    fn reply(&mut self, to: SocketAddr, text: &str) {
        self.output.push_back(Output::Transmit { to, datagram: text.as_bytes().to_vec() });
    }

    fn log(&mut self, event: LogEvent) {
        self.output.push_back(Output::Log(event));
    }
}

fn in_flight(request: &HubRequest) -> InFlight {
    match request {
        HubRequest::Join { room, epoch, .. } => InFlight::Join { room: *room, epoch: *epoch },
        HubRequest::Post { .. } => InFlight::Post,
        _ => InFlight::Other,
    }
}

/// A client's name: its nickname, or its `IP:port` without one.
fn display_nick(client: &Client, peer: SocketAddr) -> String {
    client.nick.clone().unwrap_or_else(|| peer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udp::multicast::Solo;

    const SERVER: &str = "127.0.0.1:8000";

    fn settings() -> CoreSettings {
        CoreSettings {
            rooms: 10,
            clients_max: 100,
            idle_timeout: Duration::from_secs(60),
            flood_datagrams_per_sec: 0.0,
            flood_burst: 10,
            pending_max: 4,
            pending_bytes_max: 4000,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A core, plus a driver that answers every hub request at once (or holds them).
    struct Harness {
        core: UdpCore,
        now: Instant,
        /// Answer hub requests as they come (false: collect them in `held`).
        auto: bool,
        held: Vec<(ClientId, HubRequest)>,
        hub: Vec<(ClientId, HubRequest)>,
        sent: Vec<(SocketAddr, String)>,
        logs: Vec<LogEvent>,
    }

    impl Harness {
        fn new(settings: CoreSettings) -> Harness {
            let cluster = Cluster::single(SERVER.parse().unwrap());
            let core = UdpCore::new(settings, cluster, 1, Box::new(Solo::new(OrderingMode::Fifo)));
            Harness { core, now: Instant::now(), auto: true, held: vec![], hub: vec![], sent: vec![], logs: vec![] }
        }

        fn run(&mut self) {
            while let Some(output) = self.core.poll_output() {
                match output {
                    Output::Transmit { to, datagram } => self.sent.push((to, String::from_utf8(datagram).unwrap())),
                    Output::Log(event) => self.logs.push(event),
                    Output::Hub { client, request } => {
                        self.hub.push((client, request.clone()));
                        if self.auto {
                            self.core.answer(client, Answer::Done);
                        } else {
                            self.held.push((client, request));
                        }
                    }
                }
            }
        }

        fn send(&mut self, port: u16, bytes: impl AsRef<[u8]>) -> Vec<String> {
            self.core.datagram(addr(port), bytes.as_ref(), self.now);
            self.run();
            let sent = std::mem::take(&mut self.sent);
            assert!(sent.iter().all(|(to, _)| *to == addr(port)), "replies go to the sender only: {sent:?}");
            sent.into_iter().map(|(_, text)| text).collect()
        }

        fn one(&mut self, port: u16, bytes: impl AsRef<[u8]>) -> String {
            let mut replies = self.send(port, bytes);
            assert_eq!(replies.len(), 1, "{replies:?}");
            replies.remove(0)
        }

        fn hub_requests(&mut self) -> Vec<(ClientId, HubRequest)> {
            std::mem::take(&mut self.hub)
        }
    }

    fn harness() -> Harness {
        Harness::new(settings())
    }

    #[test]
    fn join_replies_ok_and_joins_the_hub_room_under_the_ip_port_name() {
        let mut h = harness();
        assert_eq!(h.one(5000, "/join 3"), "+OK You are now in chat room #3");
        assert_eq!(
            h.hub_requests(),
            vec![(1, HubRequest::Join { room: 3, nick: "127.0.0.1:5000".into(), peer: addr(5000), epoch: 1 })]
        );
        assert_eq!(h.core.room_of(addr(5000)), Some(3));
    }

    #[test]
    fn join_when_already_in_a_room_is_refused() {
        let mut h = harness();
        h.send(5000, "/join 3");
        assert_eq!(h.one(5000, "/join 4"), "-ERR You are already in chat room #3");
        assert_eq!(h.one(5000, "/join 3"), "-ERR You are already in chat room #3");
        assert_eq!(h.core.room_of(addr(5000)), Some(3));
    }

    #[test]
    fn join_of_a_room_out_of_bounds_or_not_a_number_is_refused() {
        let mut h = harness();
        for room in ["0", "11", "4294967296"] {
            assert!(h.one(5000, format!("/join {room}")).starts_with("-ERR There is no such chat room"), "{room}");
        }
        for argument in ["/join", "/join x", "/join -1", "/join 1 2", "/join "] {
            assert!(h.one(5000, argument).starts_with("-ERR Usage: /join"), "{argument}");
        }
        assert_eq!(h.one(5000, "/join 10"), "+OK You are now in chat room #10");
        assert!(h.hub_requests().len() == 1);
    }

    #[test]
    fn the_number_of_rooms_is_configurable() {
        let mut h = Harness::new(CoreSettings { rooms: 50, ..settings() });
        assert_eq!(h.one(5000, "/join 50"), "+OK You are now in chat room #50");
        assert!(h.one(5001, "/join 51").starts_with("-ERR"));
    }

    #[test]
    fn part_leaves_the_room() {
        let mut h = harness();
        h.send(5000, "/join 3");
        h.hub_requests();
        assert_eq!(h.one(5000, "/part"), "+OK You have left chat room #3");
        assert_eq!(h.hub_requests(), vec![(1, HubRequest::Part { room: 3 })]);
        assert_eq!(h.core.room_of(addr(5000)), None);
        assert_eq!(h.one(5000, "/join 4"), "+OK You are now in chat room #4");
    }

    #[test]
    fn part_in_no_room_or_with_an_argument_is_refused() {
        let mut h = harness();
        assert_eq!(h.one(5000, "/part"), "-ERR You are not in a chat room");
        h.send(5000, "/join 3");
        assert!(h.one(5000, "/part 3").starts_with("-ERR Usage: /part"));
        assert_eq!(h.core.room_of(addr(5000)), Some(3));
    }

    #[test]
    fn nick_is_set_and_survives_room_changes() {
        let mut h = harness();
        assert_eq!(h.one(5000, "/nick Linh"), "+OK Nickname set to 'Linh'");
        assert!(h.hub_requests().is_empty(), "no hub connection outside a room");
        h.send(5000, "/join 3");
        h.send(5000, "/part");
        h.send(5000, "/join 4");
        let joins: Vec<_> = h
            .hub_requests()
            .into_iter()
            .filter_map(|(_, r)| match r {
                HubRequest::Join { nick, .. } => Some(nick),
                _ => None,
            })
            .collect();
        assert_eq!(joins, ["Linh", "Linh"]);
        assert_eq!(h.one(5000, "/nick Phan"), "+OK Nickname set to 'Phan'");
        assert_eq!(h.hub_requests(), vec![(1, HubRequest::Nick { nick: "Phan".into() })]);
    }

    #[test]
    fn names_need_not_be_unique_but_must_be_one_word() {
        let mut h = harness();
        assert_eq!(h.one(5000, "/nick Linh"), "+OK Nickname set to 'Linh'");
        assert_eq!(h.one(5001, "/nick Linh"), "+OK Nickname set to 'Linh'");
        for bad in ["/nick", "/nick ", "/nick two words", &format!("/nick {}", "x".repeat(65))] {
            assert!(h.one(5002, bad).starts_with("-ERR Usage: /nick"), "{bad}");
        }
    }

    #[test]
    fn text_in_a_room_is_posted_to_the_hub_and_text_in_no_room_is_refused() {
        let mut h = harness();
        assert_eq!(h.one(5000, "hello"), "-ERR You are not in a chat room; send /join <n> first");
        h.send(5000, "/join 3");
        h.hub_requests();
        assert!(h.send(5000, "hello").is_empty(), "the message itself comes back through the hub");
        assert_eq!(h.hub_requests(), vec![(1, HubRequest::Post { room: 3, text: "hello".into() })]);
        assert!(h.logs.contains(&LogEvent::Posts { client: 1, text: "hello".into(), room: 3 }));
    }

    #[test]
    fn text_of_1000_bytes_passes_and_longer_is_refused() {
        let mut h = harness();
        h.send(5000, "/join 3");
        h.hub_requests();
        assert!(h.send(5000, "x".repeat(1000)).is_empty());
        assert_eq!(h.one(5000, "y".repeat(1001)), "-ERR Message longer than 1000 bytes");
        // Multi-byte characters count in bytes.
        assert_eq!(h.one(5000, "é".repeat(501)), "-ERR Message longer than 1000 bytes");
        assert_eq!(h.one(5000, format!("/nick {}", "z".repeat(1000))), "-ERR Message longer than 1000 bytes");
        assert_eq!(h.hub_requests().len(), 1);
    }

    #[test]
    fn trailing_line_ends_are_ignored_and_inner_ones_refused() {
        let mut h = harness();
        assert_eq!(h.one(5000, "/join 3\r\n"), "+OK You are now in chat room #3");
        assert_eq!(h.one(5000, "/nick Linh\n"), "+OK Nickname set to 'Linh'");
        assert!(h.one(5000, "two\nlines").starts_with("-ERR A message is one line"));
        assert!(h.one(5000, "nul\0").starts_with("-ERR A message is one line"));
        assert_eq!(h.one(5000, ""), "-ERR Empty message");
        assert_eq!(h.one(5000, "\r\n"), "-ERR Empty message");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let mut h = harness();
        h.send(5000, "/join 3");
        h.hub_requests();
        assert!(h.send(5000, b"caf\xe9").is_empty());
        assert_eq!(h.hub_requests(), vec![(1, HubRequest::Post { room: 3, text: "caf\u{fffd}".into() })]);
    }

    #[test]
    fn commands_are_case_sensitive_and_unknown_ones_refused() {
        let mut h = harness();
        assert_eq!(h.one(5000, "/JOIN 3"), "-ERR Unknown command /JOIN");
        assert_eq!(h.one(5000, "/Nick x"), "-ERR Unknown command /Nick");
        assert_eq!(h.one(5000, "/list"), "-ERR Unknown command /list");
        assert_eq!(h.one(5000, "/"), "-ERR Unknown command /");
        let long = format!("/{}", "w".repeat(100));
        assert_eq!(h.one(5000, &long), format!("-ERR Unknown command /{}", "w".repeat(31)));
        assert_eq!(h.core.room_of(addr(5000)), None);
    }

    #[test]
    fn quit_forgets_the_client_without_a_reply() {
        let mut h = harness();
        h.send(5000, "/nick Linh");
        h.send(5000, "/join 3");
        h.hub_requests();
        assert!(h.send(5000, "/quit").is_empty());
        assert_eq!(h.hub_requests(), vec![(1, HubRequest::Forget { reason: "Quit" })]);
        assert_eq!(h.core.clients(), 0);
        // The same address is a new client: no room, no nickname.
        assert_eq!(h.one(5000, "hi"), "-ERR You are not in a chat room; send /join <n> first");
        h.send(5000, "/join 1");
        assert!(matches!(&h.hub_requests()[0], (2, HubRequest::Join { nick, .. }) if nick == "127.0.0.1:5000"));
    }

    #[test]
    fn quit_from_a_stranger_or_a_client_never_in_a_room_asks_nothing_of_the_hub() {
        let mut h = harness();
        assert!(h.send(5000, "/quit").is_empty());
        assert_eq!(h.core.clients(), 0);
        h.send(5001, "/nick x");
        assert!(h.send(5001, "/quit").is_empty());
        assert!(h.hub_requests().is_empty());
    }

    #[test]
    fn requests_of_one_client_reach_the_hub_one_at_a_time_in_order() {
        let mut h = harness();
        h.auto = false;
        h.send(5000, "/join 3");
        h.send(5000, "/nick Linh");
        h.send(5000, "one");
        h.send(5000, "two");
        assert_eq!(h.held.len(), 1, "only the join is out");
        assert_eq!(h.core.pending(), (3, 6));
        // Another client is not held up.
        h.send(5001, "/join 3");
        assert_eq!(h.held.len(), 2);
        let mut order = vec![];
        while let Some(i) = h.held.iter().position(|(c, _)| *c == 1) {
            let (client, request) = h.held.remove(i);
            order.push(request);
            h.core.answer(client, Answer::Done);
            h.run();
        }
        assert_eq!(
            order,
            vec![
                HubRequest::Join { room: 3, nick: "127.0.0.1:5000".into(), peer: addr(5000), epoch: 1 },
                HubRequest::Nick { nick: "Linh".into() },
                HubRequest::Post { room: 3, text: "one".into() },
                HubRequest::Post { room: 3, text: "two".into() },
            ]
        );
        assert_eq!(h.core.pending(), (0, 0));
    }

    #[test]
    fn a_join_the_hub_refuses_is_reported_and_leaves_the_client_in_no_room() {
        let mut h = harness();
        h.auto = false;
        assert_eq!(h.one(5000, "/join 3"), "+OK You are now in chat room #3");
        h.core.answer(1, Answer::Failed("invite only".into()));
        h.run();
        assert_eq!(h.sent.pop().unwrap().1, "-ERR Cannot join chat room #3: invite only");
        assert_eq!(h.core.room_of(addr(5000)), None);
    }

    #[test]
    fn a_failed_post_is_reported() {
        let mut h = harness();
        h.send(5000, "/join 3");
        h.auto = false;
        h.send(5000, "hello");
        h.core.answer(1, Answer::Failed("disk full".into()));
        h.run();
        assert_eq!(h.sent.pop().unwrap().1, "-ERR Message not delivered: disk full");
    }

    #[test]
    fn a_removal_from_the_current_room_is_reported_and_a_stale_one_ignored() {
        let mut h = harness();
        h.send(5000, "/join 3");
        h.core.removed(1, 1, "kicked by op: spam");
        h.run();
        assert_eq!(h.sent.pop().unwrap().1, "-ERR You are no longer in chat room #3: kicked by op: spam");
        assert_eq!(h.core.room_of(addr(5000)), None);
        h.send(5000, "/join 4");
        h.core.removed(1, 1, "late news of the first join");
        h.run();
        assert!(h.sent.is_empty());
        assert_eq!(h.core.room_of(addr(5000)), Some(4));
    }

    #[test]
    fn a_full_pipe_refuses_commands_without_changing_state() {
        let mut h = harness();
        h.auto = false;
        h.send(5000, "/join 3");
        for i in 0..4 {
            assert!(h.send(5000, format!("m{i}")).is_empty());
        }
        assert_eq!(h.one(5000, "m4"), "-ERR Server busy; nothing was done, try again");
        assert_eq!(h.one(5000, "/part"), "-ERR Server busy; nothing was done, try again");
        assert_eq!(h.core.room_of(addr(5000)), Some(3));
        assert_eq!(h.one(5000, "/nick x"), "-ERR Server busy; nothing was done, try again");
        // Commands that need no hub still work.
        assert_eq!(h.one(5000, "/join 4"), "-ERR You are already in chat room #3");
    }

    #[test]
    fn pending_text_is_bounded_across_clients() {
        let mut h = Harness::new(CoreSettings { pending_max: 100, pending_bytes_max: 2500, ..settings() });
        h.auto = false;
        h.send(5000, "/join 3");
        h.send(5001, "/join 3");
        assert!(h.send(5000, "a".repeat(1000)).is_empty());
        assert!(h.send(5001, "b".repeat(1000)).is_empty());
        assert_eq!(h.one(5000, "c".repeat(1000)), "-ERR Server busy; nothing was done, try again");
        assert!(h.send(5001, "d".repeat(500)).is_empty());
        assert_eq!(h.core.pending(), (3, 2500));
    }

    #[test]
    fn a_flooding_client_is_told_once_and_dropped_until_it_slows_down() {
        let mut h = Harness::new(CoreSettings { flood_datagrams_per_sec: 1.0, flood_burst: 3, ..settings() });
        h.send(5000, "/join 3");
        h.hub_requests();
        assert!(h.send(5000, "a").is_empty());
        assert!(h.send(5000, "b").is_empty());
        assert_eq!(h.one(5000, "c"), "-ERR You are sending too fast; messages are dropped until you slow down");
        assert!(h.send(5000, "d").is_empty(), "dropped silently");
        assert!(h.logs.contains(&LogEvent::Flooding { client: 1 }));
        // Others are not affected.
        assert_eq!(h.one(5001, "/join 3"), "+OK You are now in chat room #3");
        h.now += Duration::from_secs(1);
        assert!(h.send(5000, "e").is_empty());
        let posts: Vec<_> = h
            .hub_requests()
            .into_iter()
            .filter_map(|(c, r)| match r {
                HubRequest::Post { text, .. } if c == 1 => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(posts, ["a", "b", "e"]);
        // /quit always passes.
        h.send(5000, "x");
        assert!(h.send(5000, "/quit").is_empty());
        assert_eq!(h.core.clients(), 1);
    }

    #[test]
    fn idle_clients_are_forgotten_and_leave_their_room() {
        let mut h = harness();
        h.send(5000, "/join 3");
        h.now += Duration::from_secs(30);
        h.send(5001, "/nick x");
        h.hub_requests();
        assert_eq!(h.core.poll_timeout(), Some(h.now + Duration::from_secs(30)));
        h.now += Duration::from_secs(30);
        h.core.handle_timeout(h.now);
        h.run();
        assert_eq!(h.hub_requests(), vec![(1, HubRequest::Forget { reason: "Idle timeout" })]);
        assert_eq!(h.core.clients(), 1);
        assert!(h.logs.contains(&LogEvent::Idle { client: 1 }));
        // Activity keeps a client.
        h.now += Duration::from_secs(29);
        h.send(5001, "/nick y");
        h.now += Duration::from_secs(59);
        h.core.handle_timeout(h.now);
        assert_eq!(h.core.clients(), 1);
    }

    #[test]
    fn a_full_table_refuses_new_clients_unless_some_are_idle() {
        let mut h = Harness::new(CoreSettings { clients_max: 2, ..settings() });
        h.send(5000, "/nick a");
        h.send(5001, "/nick b");
        assert_eq!(h.one(5002, "/nick c"), "-ERR Too many clients; try again later");
        assert!(h.logs.contains(&LogEvent::Full { peer: addr(5002) }));
        assert_eq!(h.core.clients(), 2);
        h.now += Duration::from_secs(60);
        assert_eq!(h.one(5002, "/nick c"), "+OK Nickname set to 'c'");
        assert_eq!(h.core.clients(), 1);
    }

    #[test]
    fn datagrams_from_a_servers_forwarding_address_are_not_clients() {
        let mut h = harness();
        assert!(h.send(8000, "/join 3").is_empty());
        assert_eq!(h.core.clients(), 0);
        assert_eq!(h.logs, vec![LogEvent::FromServer { server: 1, bytes: 7 }]);
    }

    #[test]
    fn a_quit_waits_for_the_clients_requests_in_flight() {
        let mut h = harness();
        h.auto = false;
        h.send(5000, "/join 3");
        h.send(5000, "last words");
        h.send(5000, "/quit");
        assert_eq!(h.core.clients(), 0);
        let mut order = vec![];
        while let Some((client, request)) = h.held.pop() {
            order.push(request);
            h.core.answer(client, Answer::Done);
            h.run();
        }
        assert!(matches!(order[0], HubRequest::Join { .. }));
        assert_eq!(order[1], HubRequest::Post { room: 3, text: "last words".into() });
        assert_eq!(order[2], HubRequest::Forget { reason: "Quit" });
        assert_eq!(h.core.pending(), (0, 0));
    }
}
