//! The event log of a UDP chat server (`-v`): one line per event, prefixed with the UTC time to
//! the microsecond and the server's index, as PROTOCOLS.md §2 shows:
//! `03:48:22.004328 S02 Client 17 posts "Hi" to chat room #3`.

use std::fmt;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::cluster::{OrderingMode, ServerIndex};
use super::core::ClientId;

/// One event of the server's life. `Display` gives the text after the `Sxx ` prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    /// The server's socket is up.
    Listening {
        /// The bound address.
        address: SocketAddr,
        /// The ordering mode.
        mode: OrderingMode,
        /// Rooms are 1..=rooms.
        rooms: u32,
    },
    /// A datagram came from an address not seen before.
    NewClient {
        /// The client's number.
        client: ClientId,
        /// Its address.
        peer: SocketAddr,
    },
    /// A client entered a room.
    Joins {
        /// Who.
        client: ClientId,
        /// Room number.
        room: u32,
    },
    /// A client left its room.
    Leaves {
        /// Who.
        client: ClientId,
        /// Room number.
        room: u32,
    },
    /// A client set its nickname.
    Nick {
        /// Who.
        client: ClientId,
        /// The new nickname.
        nick: String,
    },
    /// A client posted a message.
    Posts {
        /// Who.
        client: ClientId,
        /// The text.
        text: String,
        /// Room number.
        room: u32,
    },
    /// A client quit.
    Quits {
        /// Who.
        client: ClientId,
    },
    /// A client sent nothing for the idle timeout and was forgotten.
    Idle {
        /// Who.
        client: ClientId,
    },
    /// A client sends faster than its flood limit; its datagrams are dropped until it slows.
    Flooding {
        /// Who.
        client: ClientId,
    },
    /// A client's requests could not be queued (its own or the server's pending limit).
    Busy {
        /// Who.
        client: ClientId,
    },
    /// The room refused a join (or the store failed); the client is in no room.
    JoinFailed {
        /// Who.
        client: ClientId,
        /// Room number.
        room: u32,
        /// Why.
        reason: String,
    },
    /// A message could not be stored or delivered.
    PostFailed {
        /// Who.
        client: ClientId,
        /// Why.
        reason: String,
    },
    /// A client was taken out of its room from elsewhere (an IRC operator's kick, a slow consumer).
    Removed {
        /// Who.
        client: ClientId,
        /// Room number.
        room: u32,
        /// Why.
        reason: String,
    },
    /// A datagram from a new address was refused: the client table is full.
    Full {
        /// The address.
        peer: SocketAddr,
    },
    /// A datagram came from another server of the cluster.
    FromServer {
        /// The server.
        server: ServerIndex,
        /// Its size, octets.
        bytes: usize,
    },
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogEvent::Listening { address, mode, rooms } => {
                write!(f, "Server listens on {address} (ordering {mode}, chat rooms #1 to #{rooms})")
            }
            LogEvent::NewClient { client, peer } => write!(f, "Client {client} is new at {peer}"),
            LogEvent::Joins { client, room } => write!(f, "Client {client} joins chat room #{room}"),
            LogEvent::Leaves { client, room } => write!(f, "Client {client} leaves chat room #{room}"),
            LogEvent::Nick { client, nick } => write!(f, "Client {client} sets nickname {nick:?}"),
            LogEvent::Posts { client, text, room } => write!(f, "Client {client} posts {text:?} to chat room #{room}"),
            LogEvent::Quits { client } => write!(f, "Client {client} quits"),
            LogEvent::Idle { client } => write!(f, "Client {client} is forgotten after its idle timeout"),
            LogEvent::Flooding { client } => write!(f, "Client {client} floods; its datagrams are dropped"),
            LogEvent::Busy { client } => write!(f, "Client {client} has too many requests pending; one is dropped"),
            LogEvent::JoinFailed { client, room, reason } => {
                write!(f, "Client {client} cannot join chat room #{room}: {reason}")
            }
            LogEvent::PostFailed { client, reason } => write!(f, "Client {client}'s message is lost: {reason}"),
            LogEvent::Removed { client, room, reason } => {
                write!(f, "Client {client} is removed from chat room #{room}: {reason}")
            }
            LogEvent::Full { peer } => write!(f, "Datagram from {peer} refused: too many clients"),
            LogEvent::FromServer { server, bytes } => write!(f, "Datagram of {bytes} octets from server {server}"),
        }
    }
}

/// The log line of `event` at `at` on server `server`: `HH:MM:SS.micros Sxx text` (UTC; the
/// index has at least two digits). No line end.
pub fn log_line(at: SystemTime, server: ServerIndex, event: &LogEvent) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06} S{server:02} {event}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lines_carry_utc_time_to_the_microsecond_and_the_index() {
        // 2024-01-01T03:48:22.004328Z
        let at = UNIX_EPOCH + Duration::from_micros(1_704_080_902_004_328);
        let event = LogEvent::Posts { client: 17, text: "Hi".into(), room: 3 };
        assert_eq!(log_line(at, 2, &event), "03:48:22.004328 S02 Client 17 posts \"Hi\" to chat room #3");
        assert_eq!(log_line(UNIX_EPOCH, 123, &LogEvent::Quits { client: 1 }), "00:00:00.000000 S123 Client 1 quits");
    }

    #[test]
    fn texts_are_quoted_with_escapes() {
        let event = LogEvent::Posts { client: 1, text: "say \"hi\"\u{7}".into(), room: 1 };
        assert_eq!(event.to_string(), r#"Client 1 posts "say \"hi\"\u{7}" to chat room #1"#);
    }
}
