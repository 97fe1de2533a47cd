//! The seam between a UDP chat server and the other servers of its cluster.
//!
//! Every message a local client posts goes *out* through a [`Multicast`], and every message to
//! deliver to this server's room members comes *back* from it, in the order its
//! [`OrderingMode`] guarantees. Datagrams from other servers (recognised by their forwarding
//! address, see [`crate::udp::Cluster::server_at`]) go to it, and it asks for datagrams to be sent
//! to them. It is sans-I/O like the rest of the core: the caller passes the time and carries out
//! what it returns.
//!
//! [`Solo`] is the implementation for a cluster of one: a post is deliverable the moment it is
//! submitted, which satisfies every mode. A cluster implementation (per-sender sequence numbers for
//! FIFO, vector clocks for causal, an agreement protocol for total order, with retransmission and
//! duplicate suppression over lossy links, datagrams under 1,000 octets) implements the same trait
//! and is chosen where the server is built; the core does not change.

use std::time::Instant;

use super::cluster::{OrderingMode, ServerIndex};
use super::core::ClientId;

/// Where a post came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client of this server.
    Local(ClientId),
    /// A client of another server of the cluster (its number there).
    Remote {
        /// The server.
        server: ServerIndex,
        /// The client's number on that server.
        client: ClientId,
    },
}

/// A chat message on its way to a room's members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    /// Who sent it.
    pub origin: Origin,
    /// The sender's nickname when it was sent.
    pub nick: String,
    /// Room number, 1..=N.
    pub room: u32,
    /// The text (at most 1,000 octets as received).
    pub text: String,
}

/// What a [`Multicast`] asks of its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// Deliver this post to the room's members on this server, now (after every earlier
    /// `Deliver`).
    Deliver(Post),
    /// Send this datagram (under 1,000 octets) to server `to`'s forwarding address.
    Transmit {
        /// The destination server.
        to: ServerIndex,
        /// The datagram.
        datagram: Vec<u8>,
    },
}

/// Ordered multicast of room messages between the servers of a cluster.
pub trait Multicast: Send {
    /// The mode this layer guarantees (all servers of a cluster run the same one).
    fn mode(&self) -> OrderingMode;

    /// A local client's post: it is sent to the other servers and, when the mode allows,
    /// delivered here.
    fn submit(&mut self, post: Post, now: Instant, out: &mut Vec<Transfer>);

    /// A datagram from server `from`.
    fn receive(&mut self, from: ServerIndex, datagram: &[u8], now: Instant, out: &mut Vec<Transfer>);

    /// A local client quit: the others finish delivering what it sent, then free its state.
    fn client_quit(&mut self, client: ClientId, now: Instant, out: &mut Vec<Transfer>);

    /// When [`Multicast::handle_timeout`] wants to run next (retransmission), if ever.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Transfer>);
}

/// The multicast of a cluster of one server: every post is delivered at once, in submission
/// order, which meets every [`OrderingMode`]. Datagrams from other servers are ignored.
#[derive(Clone, Debug)]
pub struct Solo {
    mode: OrderingMode,
}

impl Solo {
    /// A one-server layer that reports `mode`.
    pub fn new(mode: OrderingMode) -> Solo {
        Solo { mode }
    }
}

impl Multicast for Solo {
    fn mode(&self) -> OrderingMode {
        self.mode
    }

    fn submit(&mut self, post: Post, _now: Instant, out: &mut Vec<Transfer>) {
        out.push(Transfer::Deliver(post));
    }

    fn receive(&mut self, _from: ServerIndex, _datagram: &[u8], _now: Instant, _out: &mut Vec<Transfer>) {}

    fn client_quit(&mut self, _client: ClientId, _now: Instant, _out: &mut Vec<Transfer>) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant, _out: &mut Vec<Transfer>) {}
}
