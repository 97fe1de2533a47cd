//! Chat: one room namespace reached from the classic line and UDP protocols, IRC and the
//! WebSocket API.
//!
//! The [`Hub`] holds the rooms of the node, their members and the fan-out; rooms, messages, topics,
//! modes and presence are persisted through the store's single write path (typed ops on the room's
//! or account's shard). Each front-end is a sans-I/O protocol core plus a thin tokio service.
//!
//! # Text
//!
//! Chat text is UTF-8. Input that is not valid UTF-8 is decoded by [`decode_text`]: each invalid
//! sequence becomes U+FFFD (REPLACEMENT CHARACTER), so nothing is refused for its encoding and
//! nothing invalid is stored or relayed.

mod config;
mod flood;
pub mod hub;
mod id;
pub mod irc;
pub mod line;
mod outbox;
pub mod render;
pub mod session;
pub mod udp;

use std::borrow::Cow;

pub use config::ChatConfig;
pub use flood::TokenBucket;
pub use hub::{ConnId, Event, Hub, HubLimits, Identity, JoinError, Joined, Leave, MemberView, ModeChange, RoomError};
pub use id::message_id;
pub use outbox::{Outbox, Received, SENDQ_EXCEEDED};
pub use render::{RenderKey, Renders};

/// Decodes chat input: valid UTF-8 as is, each invalid sequence replaced by U+FFFD.
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The reason a connection that floods is dropped with (the wording IRC servers use).
pub const EXCESS_FLOOD: &str = "Excess Flood";
