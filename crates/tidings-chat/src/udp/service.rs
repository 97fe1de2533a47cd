//! The tokio driver of a UDP chat server: one task owns the socket's receiving side and the
//! [`UdpCore`]; it sends the core's replies, carries out its hub requests and feeds their answers
//! back.
//!
//! A hub request that waits (a join, a post: both wait for the store) runs in a task of its own,
//! one per client at a time (the core's pipe), and its answer comes back over a channel; the rest
//! are done in place. Each client in a room has a small delivery task that waits on its hub
//! connection's outbox and sends each message as a datagram; it ends with the connection. So an
//! idle client costs one table entry, a client in a room one hub connection and one parked task
//! (a few hundred octets), and the channel holds at most one answer per client plus one notice per
//! connection. A delivery task that cannot send as fast as its room talks lets its outbox fill; the
//! hub then closes it ("Max SendQ exceeded") and the client is told it is out of the room.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

use tidings_core::{Frontend, MessageKind};
use tidings_net::Shutdown;

use super::core::{Answer, ClientId, HubRequest, Output, UdpCore};
use super::log::{LogEvent, log_line};
use super::{render, room_name};
use crate::Event;
use crate::hub::{Conn, ConnId, Hub, Identity, Leave};
use crate::outbox::Received;

/// Largest datagram read: the largest a UDP datagram over IPv4 can be, so an oversized one is
/// seen whole and refused rather than silently cut.
const RECEIVE_BUFFER_BYTES: usize = 65_536;

/// Binds the server's UDP socket at `address` with receive and send buffers of `buffer_bytes`
/// octets (as far as the kernel allows; a refusal leaves its default).
///
/// # Errors
/// As [`UdpSocket::bind`].
pub async fn bind(address: SocketAddr, buffer_bytes: usize) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(address).await?;
    let options = socket2::SockRef::from(&socket);
    if let Err(e) = options.set_recv_buffer_size(buffer_bytes).and_then(|()| options.set_send_buffer_size(buffer_bytes))
    {
        debug!(%address, error = %e, "udp chat: socket buffers keep their default size");
    }
    Ok(socket)
}

/// Where the event log (`-v`) goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventLog {
    /// Nowhere.
    Off,
    /// Standard output, one line per event (`tidings chat-server -v`).
    Stdout,
    /// The transcript of `tidings serve -v` (tracing, standard error).
    Transcript,
}

/// A UDP chat server: a bound socket, the core and the hub.
pub struct UdpService {
    hub: Arc<Hub>,
    socket: Arc<UdpSocket>,
    core: UdpCore,
    log: EventLog,
    members: HashMap<ClientId, Member>,
    done_tx: mpsc::UnboundedSender<Completion>,
    done_rx: mpsc::UnboundedReceiver<Completion>,
}

/// A client's hub connection while it is in a room.
struct Member {
    conn: Arc<Conn>,
}

/// News for the server's task from the tasks it started.
enum Completion {
    /// A join succeeded: the client's new hub connection.
    Joined { client: ClientId, epoch: u64, peer: SocketAddr, conn: Arc<Conn> },
    /// The answer to the client's request in flight.
    Answer { client: ClientId, answer: Answer },
    /// A hub connection's outbox ended (closed, or the member was kicked).
    Removed { client: ClientId, conn: ConnId, epoch: u64, reason: String },
}

impl UdpService {
    /// A server on `socket` (already bound) posting to `hub`.
    pub fn new(hub: Arc<Hub>, socket: UdpSocket, core: UdpCore, log: EventLog) -> UdpService {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        UdpService { hub, socket: Arc::new(socket), core, log, members: HashMap::new(), done_tx, done_rx }
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    /// As [`UdpSocket::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves until `shutdown` is signalled; then every client's hub connection ends.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        if let Ok(address) = self.socket.local_addr() {
            let (mode, rooms) = (self.core.mode(), self.core.settings().rooms);
            self.write_log(&LogEvent::Listening { address, mode, rooms });
        }
        let mut buffer = vec![0u8; RECEIVE_BUFFER_BYTES];
        loop {
            self.flush().await;
            let deadline = self.core.poll_timeout();
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((n, from)) => self.core.datagram(from, &buffer[..n], Instant::now()),
                    Err(e) => debug!(error = %e, "udp chat: receive failed"),
                },
                Some(done) = self.done_rx.recv() => self.completion(done),
                () = timer => self.core.handle_timeout(Instant::now()),
                () = shutdown.recv() => break,
            }
        }
        for (_, member) in self.members.drain() {
            self.hub.disconnect(&member.conn, "Server shutting down");
        }
    }

    /// Carries out everything the core asked for.
    async fn flush(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Transmit { to, datagram } => {
                    if let Err(e) = self.socket.send_to(&datagram, to).await {
                        debug!(%to, error = %e, "udp chat: send failed");
                    }
                }
                Output::Log(event) => self.write_log(&event),
                Output::Hub { client, request } => {
                    if let Some(answer) = self.execute(client, request) {
                        self.core.answer(client, answer);
                    }
                }
            }
        }
    }

    /// Does `request`; the answer now, or `None` when a task will send it.
    fn execute(&mut self, client: ClientId, request: HubRequest) -> Option<Answer> {
        match request {
            HubRequest::Join { room, nick, peer, epoch } => {
                if let Some(old) = self.members.remove(&client) {
                    self.hub.disconnect(&old.conn, "Rejoined");
                }
                let (hub, done) = (Arc::clone(&self.hub), self.done_tx.clone());
                tokio::spawn(async move {
                    let identity = Identity {
                        nick,
                        user: "udp".into(),
                        host: peer.ip().to_string(),
                        account: None,
                        via: Frontend::Udp,
                    };
                    let conn = hub.connect(identity);
                    let completion = match hub.join(&conn, &room_name(room), None, false).await {
                        Ok(_) => Completion::Joined { client, epoch, peer, conn },
                        Err(e) => {
                            hub.disconnect(&conn, "Join refused");
                            Completion::Answer { client, answer: Answer::Failed(e.to_string()) }
                        }
                    };
                    let _ = done.send(completion);
                });
                None
            }
            HubRequest::Part { room } => {
                if let Some(member) = self.members.remove(&client) {
                    let _ = self.hub.part(&member.conn, &room_name(room), None);
                    self.hub.disconnect(&member.conn, "Left");
                }
                Some(Answer::Done)
            }
            HubRequest::Post { room, text } => {
                let Some(member) = self.members.get(&client) else {
                    return Some(Answer::Failed("you are not in a chat room".into()));
                };
                let (hub, conn, done) = (Arc::clone(&self.hub), Arc::clone(&member.conn), self.done_tx.clone());
                tokio::spawn(async move {
                    let answer = match hub.post(&conn, &room_name(room), MessageKind::Text, &text).await {
                        Ok(_) => Answer::Done,
                        Err(e) => Answer::Failed(e.to_string()),
                    };
                    let _ = done.send(Completion::Answer { client, answer });
                });
                None
            }
            HubRequest::Nick { nick } => {
                if let Some(member) = self.members.get(&client) {
                    self.hub.set_nick(&member.conn, &nick);
                }
                Some(Answer::Done)
            }
            HubRequest::Forget { reason } => {
                if let Some(member) = self.members.remove(&client) {
                    self.hub.disconnect(&member.conn, reason);
                }
                Some(Answer::Done)
            }
        }
    }

    fn completion(&mut self, completion: Completion) {
        match completion {
            Completion::Joined { client, epoch, peer, conn } => {
                let outbox = Arc::clone(conn.outbox());
                let (socket, done, id) = (Arc::clone(&self.socket), self.done_tx.clone(), conn.id());
                tokio::spawn(async move {
                    let reason = deliver(&socket, &outbox, id, peer).await;
                    let _ = done.send(Completion::Removed { client, conn: id, epoch, reason });
                });
                self.members.insert(client, Member { conn });
                self.core.answer(client, Answer::Done);
            }
            Completion::Answer { client, answer } => self.core.answer(client, answer),
            Completion::Removed { client, conn, epoch, reason } => {
                // Only news of the client's current connection matters: one the server ended
                // itself (a part, a quit) is already gone from the table.
                if self.members.get(&client).is_some_and(|m| m.conn.id() == conn) {
                    let member = self.members.remove(&client).expect("member");
                    self.hub.disconnect(&member.conn, &reason);
                    self.core.removed(client, epoch, &reason);
                }
            }
        }
    }

    fn write_log(&self, event: &LogEvent) {
        match self.log {
            EventLog::Off => {}
            EventLog::Stdout => {
                let line = log_line(SystemTime::now(), self.core.index(), event);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            EventLog::Transcript => {
                debug!(target: "tidings::transcript", "[udp] {}", log_line(SystemTime::now(), self.core.index(), event));
            }
        }
    }
}

/// Sends the events of one hub connection's outbox to `peer` as datagrams until the outbox is
/// closed or the member is kicked; returns why it ended.
async fn deliver(socket: &UdpSocket, outbox: &crate::Outbox, me: ConnId, peer: SocketAddr) -> String {
    loop {
        match outbox.recv().await {
            Received::Events(events) => {
                for event in events {
                    if let Event::Left { member, how: Leave::Kick { by, reason }, .. } = &*event
                        && member.conn == me
                    {
                        return format!("removed by {by}: {reason}");
                    }
                    if let Some(text) = render(&event)
                        && let Err(e) = socket.send_to(text.as_bytes(), peer).await
                    {
                        debug!(%peer, error = %e, "udp chat: send failed");
                    }
                }
            }
            Received::Closed(reason) => return reason,
        }
    }
}
