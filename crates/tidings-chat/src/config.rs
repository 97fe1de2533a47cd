//! `[chat]`: limits shared by every chat front-end.

use serde::{Deserialize, Serialize};
use tidings_net::ConnectionLimits;

use crate::HubLimits;

/// `[chat]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Events a connection's outbox holds before the connection is dropped as too slow a consumer
    /// ("Max SendQ exceeded"). Default 4,096.
    pub outbox_events_max: usize,
    /// Rooms one connection may be in at once. Default 100.
    pub rooms_per_connection_max: usize,
    /// Longest chat message, octets. Default 4,096 (IRC's line limit is lower).
    pub body_bytes_max: usize,
    /// Most simultaneous chat connections per front-end (line, IRC, WebSocket). Default 100,000.
    pub connections_max: usize,
    /// Most simultaneous chat connections from one IP address (IPv6: one /64) per front-end.
    /// Default 1,000.
    pub connections_per_ip_max: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            outbox_events_max: 4096,
            rooms_per_connection_max: 100,
            body_bytes_max: tidings_core::CHAT_BODY_BYTES_MAX,
            connections_max: 100_000,
            connections_per_ip_max: 1000,
        }
    }
}

impl ChatConfig {
    /// The hub's limits.
    pub fn hub_limits(&self) -> HubLimits {
        HubLimits {
            outbox_events_max: self.outbox_events_max,
            rooms_per_connection_max: self.rooms_per_connection_max,
            body_bytes_max: self.body_bytes_max,
        }
    }

    /// The listeners' connection limits.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits { connections_max: self.connections_max, connections_per_ip_max: self.connections_per_ip_max }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// The first value out of range, naming its key.
    pub fn validate(&self) -> Result<(), String> {
        if self.outbox_events_max == 0 || self.rooms_per_connection_max == 0 {
            return Err("[chat] outbox_events_max and rooms_per_connection_max must be positive".into());
        }
        if !(1..=tidings_core::CHAT_BODY_BYTES_MAX).contains(&self.body_bytes_max) {
            return Err(format!("[chat] body_bytes_max must be 1..={}", tidings_core::CHAT_BODY_BYTES_MAX));
        }
        if self.connections_max == 0 || self.connections_per_ip_max == 0 {
            return Err("[chat] connections_max and connections_per_ip_max must be positive".into());
        }
        Ok(())
    }
}
