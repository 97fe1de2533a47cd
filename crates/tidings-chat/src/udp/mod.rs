//! The classic UDP chat protocol (PROTOCOLS.md §2): `tidings serve` on UDP port 8000, and
//! `tidings chat-server` for a server of a cluster.
//!
//! One datagram carries one line of text. A client sends `/join <n>`, `/part`, `/nick <name>`,
//! `/quit` or chat text (at most 1,000 bytes); the server answers `+OK …` or `-ERR …`, and every
//! member of a room, the sender included, receives each message as `<nick> text`. Room `n` is the
//! room `#n` of the other front-ends, so IRC, WebSocket and line-protocol members share it.
//!
//! - [`core`]: the sans-I/O server: datagrams in; replies, hub requests and log events out.
//! - [`command`]: one datagram's command.
//! - [`cluster`]: the cluster file and the ordering modes.
//! - [`multicast`]: the seam to the other servers of a cluster ([`Solo`] for one server).
//! - [`log`]: the `-v` event log's lines.
//! - [`service`]: the tokio driver: the socket, the hub connections, the outboxes.
//!
//! Each client in a room is a hub connection (identity via [`tidings_core::Frontend::Udp`], named
//! by its nickname or its `IP:port`); hub events reach it as datagrams through [`render`].

pub mod cluster;
pub mod command;
pub mod core;
pub mod log;
pub mod multicast;
pub mod service;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidings_core::MessageKind;

pub use self::cluster::{Cluster, ClusterError, OrderingMode, ServerAddrs, ServerIndex};
pub use self::core::{Answer, ClientId, CoreSettings, HubRequest, Output, UdpCore};
pub use self::log::{LogEvent, log_line};
pub use self::multicast::{Multicast, Solo};
pub use self::service::{EventLog, UdpService, bind};

use crate::Event;

/// `[udp]`: the UDP chat server of `tidings serve`, and the limits of `tidings chat-server`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UdpConfig {
    /// Whether `tidings serve` runs the UDP chat server (default true).
    pub enabled: bool,
    /// `IP:port` it binds (default `127.0.0.1:8000`); empty turns it off; port 0 picks a free
    /// port (see `--ready-file`). `tidings chat-server` binds the cluster file's address instead.
    pub address: String,
    /// Chat rooms are numbered 1..=rooms (default 10; 10 to 100,000).
    pub rooms: u32,
    /// Most clients known at once; a datagram from a new address beyond it gets `-ERR` (default
    /// 10,000).
    pub clients_max: usize,
    /// Seconds without a datagram after which a client is forgotten and leaves its room (default
    /// 86,400: the protocol has no keep-alive, so a client that only listens must not be dropped
    /// soon).
    pub idle_timeout_secs: u64,
    /// Datagrams per second one client may send on average (default 100; 0 turns the limit off).
    pub flood_datagrams_per_sec: f64,
    /// Datagrams one client may send at once before the rate applies (default 1,000).
    pub flood_burst: u32,
    /// Requests (messages, joins, parts, nicknames) one client may have waiting for the store;
    /// more are refused with `-ERR` (default 1,000).
    pub pending_max: usize,
    /// Octets of message text all clients together may have waiting; more are refused with `-ERR`
    /// (default 16 MiB).
    pub pending_bytes_max: usize,
    /// Receive and send buffer of the socket, octets (default 4 MiB; the kernel may cap it, on
    /// Linux at `net.core.rmem_max` and `wmem_max`). Datagrams that arrive while it is full are
    /// lost, so it bounds how many clients may send at the same instant.
    pub socket_buffer_bytes: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            enabled: true,
            address: "127.0.0.1:8000".into(),
            rooms: 10,
            clients_max: 10_000,
            idle_timeout_secs: 86_400,
            flood_datagrams_per_sec: 100.0,
            flood_burst: 1000,
            pending_max: 1000,
            pending_bytes_max: 16 << 20,
            socket_buffer_bytes: 4 << 20,
        }
    }
}

/// Most chat rooms `[udp] rooms` may give.
pub const ROOMS_MAX: u32 = 100_000;

impl UdpConfig {
    /// The address to bind, or `None` when the server is off.
    ///
    /// # Errors
    /// When `address` is neither empty nor `IP:port`.
    pub fn bind_address(&self) -> Result<Option<SocketAddr>, String> {
        if !self.enabled || self.address.is_empty() {
            return Ok(None);
        }
        self.address
            .parse()
            .map(Some)
            .map_err(|_| format!("[udp] address {:?} is not IP:port (or \"\" to turn it off)", self.address))
    }

    /// Checks the values.
    ///
    /// # Errors
    /// The first value out of range, naming its key.
    pub fn validate(&self) -> Result<(), String> {
        self.bind_address()?;
        if !(10..=ROOMS_MAX).contains(&self.rooms) {
            return Err(format!("[udp] rooms must be 10..={ROOMS_MAX} (the protocol promises at least 10)"));
        }
        if self.clients_max == 0
            || self.idle_timeout_secs == 0
            || self.flood_burst == 0
            || self.pending_max == 0
            || self.socket_buffer_bytes == 0
        {
            return Err(
                "[udp] clients_max, idle_timeout_secs, flood_burst, pending_max and socket_buffer_bytes must be positive"
                    .into(),
            );
        }
        if !self.flood_datagrams_per_sec.is_finite() || self.flood_datagrams_per_sec < 0.0 {
            return Err("[udp] flood_datagrams_per_sec must be a number ≥ 0".into());
        }
        if self.pending_bytes_max < command::DATAGRAM_BYTES_MAX {
            return Err(format!(
                "[udp] pending_bytes_max must hold one message ({} octets)",
                command::DATAGRAM_BYTES_MAX
            ));
        }
        Ok(())
    }

    /// The core's settings.
    pub fn core_settings(&self) -> CoreSettings {
        CoreSettings {
            rooms: self.rooms,
            clients_max: self.clients_max,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            flood_datagrams_per_sec: self.flood_datagrams_per_sec,
            flood_burst: self.flood_burst,
            pending_max: self.pending_max,
            pending_bytes_max: self.pending_bytes_max,
        }
    }
}

/// The hub room of UDP room `n`: `#n`.
pub fn room_name(n: u32) -> tidings_core::RoomName {
    tidings_core::RoomName::parse(&format!("#{n}")).expect("#<digits> is a room name")
}

/// The datagram a hub event becomes for a UDP member, if any: a room message is `<nick> text`
/// (PROTOCOLS.md §2); an IRC action `* nick text`, a notice `-nick- text`, a private message
/// `*nick* text`. Joins, parts and the rest have no datagram in this protocol.
pub fn render(event: &Event) -> Option<String> {
    Some(match event {
        Event::Message(m, _) => match m.kind {
            MessageKind::Text => format!("<{}> {}", m.nick, m.body),
            MessageKind::Action => format!("* {} {}", m.nick, m.body),
            MessageKind::Notice => format!("-{}- {}", m.nick, m.body),
        },
        Event::Direct { from, body, kind: MessageKind::Text | MessageKind::Action, .. } => {
            format!("*{}* {}", from.nick, body)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidings_core::{ChatMessage, Frontend};

    use super::*;

    #[test]
    fn defaults_validate_and_the_address_can_be_turned_off() {
        let config = UdpConfig::default();
        config.validate().unwrap();
        assert_eq!(config.bind_address().unwrap(), Some("127.0.0.1:8000".parse().unwrap()));
        assert_eq!(UdpConfig { address: String::new(), ..UdpConfig::default() }.bind_address(), Ok(None));
        assert_eq!(UdpConfig { enabled: false, ..UdpConfig::default() }.bind_address(), Ok(None));
        assert!(UdpConfig { address: "localhost:8000".into(), ..UdpConfig::default() }.validate().is_err());
        assert!(UdpConfig { rooms: 9, ..UdpConfig::default() }.validate().is_err());
        assert!(UdpConfig { flood_datagrams_per_sec: f64::NAN, ..UdpConfig::default() }.validate().is_err());
        assert!(UdpConfig { pending_bytes_max: 999, ..UdpConfig::default() }.validate().is_err());
    }

    #[test]
    fn room_messages_render_as_nick_in_angle_brackets_then_text() {
        let message = |kind| {
            Event::Message(
                Arc::new(ChatMessage {
                    id: "x".into(),
                    room: room_name(3),
                    seq: 1,
                    at_ms: 0,
                    nick: "Linh".into(),
                    account: None,
                    via: Frontend::Irc,
                    kind,
                    body: "Hi there".into(),
                }),
                Default::default(),
            )
        };
        assert_eq!(render(&message(MessageKind::Text)).unwrap(), "<Linh> Hi there");
        assert_eq!(render(&message(MessageKind::Action)).unwrap(), "* Linh Hi there");
        assert_eq!(render(&message(MessageKind::Notice)).unwrap(), "-Linh- Hi there");
        assert_eq!(room_name(3).as_str(), "#3");
    }
}
