//! Chat state on a shard: rooms, their histories, accounts' rooms and presence. Applying the chat
//! ops, and the reads behind [`crate::Store::room`], [`crate::Store::history`] and the rest.

use rusqlite::{Connection, OptionalExtension, Row, params};

use tidings_core::{
    Address, ChatMessage, Frontend, HistoryBound, HistoryQuery, MessageKind, Op, Outcome, Presence, PresenceStatus,
    RoomModes, RoomName, RoomRecord, Topic,
};

use super::apply::{Applied, ApplyError, refused, require_account};
use crate::StoreError;

/// Most messages one history page returns.
pub(crate) const HISTORY_PAGE_MAX: usize = 1000;

/// Applies one chat op.
pub(super) fn apply(tx: &Connection, op: &Op) -> Result<Applied, ApplyError> {
    match op {
        Op::CreateRoom { room, created_ms, modes, exclusive } => {
            if room_id(tx, room)?.is_some() {
                return if *exclusive {
                    refused(StoreError::RoomExists(room.clone()))
                } else {
                    Ok(Outcome::Done.into())
                };
            }
            insert_room(tx, room, *created_ms, modes)?;
            Ok(Outcome::Done.into())
        }
        Op::SetTopic { room, text, setter, at_ms } => {
            let changed = tx
                .prepare_cached("UPDATE rooms SET topic = ?2, topic_setter = ?3, topic_ms = ?4 WHERE name = ?1")?
                .execute(params![room.as_str(), text, setter, at_ms])?;
            if changed == 0 {
                return refused(StoreError::NoSuchRoom(room.clone()));
            }
            Ok(Outcome::Done.into())
        }
        Op::SetRoomModes { room, modes } => {
            let changed = tx
                .prepare_cached("UPDATE rooms SET modes = ?2 WHERE name = ?1")?
                .execute(params![room.as_str(), encode_modes(modes)])?;
            if changed == 0 {
                return refused(StoreError::NoSuchRoom(room.clone()));
            }
            Ok(Outcome::Done.into())
        }
        Op::Post { message } => {
            let room = match room_id(tx, &message.room)? {
                Some(id) => id,
                None => insert_room(tx, &message.room, message.at_ms, &RoomModes::new_room())?,
            };
            let seq: i64 = tx
                .prepare_cached("UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq")?
                .query_row(params![room], |r| r.get(0))?;
            tx.prepare_cached(
                "INSERT INTO chat_messages (room_id, seq, msgid, at_ms, nick, account, via, kind, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                room,
                seq,
                message.id,
                message.at_ms,
                message.nick,
                message.account.as_ref().map(Address::to_string),
                message.via.as_str(),
                message.kind.as_str(),
                message.body,
            ])?;
            Ok(Outcome::Posted { seq: seq as u64 }.into())
        }
        Op::SetPresence { address, status, message, at_ms } => {
            let account = require_account(tx, address)?;
            tx.prepare_cached(
                "UPDATE accounts SET presence = ?2, presence_message = ?3, last_seen_ms = MAX(last_seen_ms, ?4) WHERE id = ?1",
            )?
            .execute(params![account, status.as_str(), message, at_ms])?;
            Ok(Outcome::Done.into())
        }
        Op::SetRoomMembership { address, room, member, at_ms } => {
            let account = require_account(tx, address)?;
            if *member {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO room_members (account_id, room, since_ms) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![account, room.as_str(), at_ms])?;
            } else {
                tx.prepare_cached("DELETE FROM room_members WHERE account_id = ?1 AND room = ?2")?
                    .execute(params![account, room.as_str()])?;
            }
            Ok(Outcome::Done.into())
        }
        _ => unreachable!("not a chat op: {}", op.kind()),
    }
}

fn room_id(tx: &Connection, room: &RoomName) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM rooms WHERE name = ?1")?
        .query_row(params![room.as_str()], |r| r.get(0))
        .optional()
}

fn insert_room(tx: &Connection, room: &RoomName, created_ms: i64, modes: &RoomModes) -> rusqlite::Result<i64> {
    tx.prepare_cached("INSERT INTO rooms (name, created_ms, modes) VALUES (?1, ?2, ?3)")?.execute(params![
        room.as_str(),
        created_ms,
        encode_modes(modes)
    ])?;
    Ok(tx.last_insert_rowid())
}

fn encode_modes(modes: &RoomModes) -> String {
    serde_json::to_string(modes).expect("room modes serialize")
}

fn decode_modes(text: &str) -> RoomModes {
    serde_json::from_str(text).unwrap_or_else(|_| RoomModes::new_room())
}

const ROOM_SELECT: &str = "SELECT name, created_ms, topic, topic_setter, topic_ms, modes, last_seq FROM rooms";

fn room_row(row: &Row<'_>) -> rusqlite::Result<Option<RoomRecord>> {
    let Ok(name) = RoomName::parse(&row.get::<_, String>(0)?) else { return Ok(None) };
    let topic = match (row.get::<_, Option<String>>(2)?, row.get::<_, Option<String>>(3)?, row.get(4)?) {
        (Some(text), Some(setter), Some(at_ms)) => Some(Topic { text, setter, at_ms }),
        _ => None,
    };
    Ok(Some(RoomRecord {
        name,
        created_ms: row.get(1)?,
        topic,
        modes: decode_modes(&row.get::<_, String>(5)?),
        last_seq: row.get::<_, i64>(6)? as u64,
    }))
}

/// The room named `room` on this shard.
pub(super) fn read_room(conn: &Connection, room: &RoomName) -> rusqlite::Result<Option<RoomRecord>> {
    Ok(conn
        .prepare_cached(&format!("{ROOM_SELECT} WHERE name = ?1"))?
        .query_row(params![room.as_str()], room_row)
        .optional()?
        .flatten())
}

/// Every room on this shard.
pub(super) fn read_rooms(conn: &Connection) -> rusqlite::Result<Vec<RoomRecord>> {
    let rows = conn.prepare_cached(ROOM_SELECT)?.query_map([], room_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().flatten().collect())
}

/// A page of `room`'s history, oldest first.
pub(super) fn read_history(
    conn: &Connection,
    room: &RoomName,
    query: &HistoryQuery,
) -> rusqlite::Result<Vec<ChatMessage>> {
    let Some(id) = room_id(conn, room)? else { return Ok(Vec::new()) };
    // Bounds become exclusive sequence numbers: after `lo`, before `hi`.
    let lo = match &query.after {
        None => Some(0),
        Some(bound) => resolve(conn, id, bound, false)?,
    };
    let hi = match &query.before {
        None => Some(i64::MAX),
        Some(bound) => resolve(conn, id, bound, true)?,
    };
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(Vec::new()) };
    let limit = query.limit.min(HISTORY_PAGE_MAX) as i64;
    let oldest_first = query.after.is_some() && query.before.is_none();
    let sql = if oldest_first {
        "SELECT seq, msgid, at_ms, nick, account, via, kind, body FROM chat_messages
         WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq ASC LIMIT ?4"
    } else {
        "SELECT seq, msgid, at_ms, nick, account, via, kind, body FROM chat_messages
         WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
    };
    let mut page = conn
        .prepare_cached(sql)?
        .query_map(params![id, lo, hi, limit], |r| {
            Ok(ChatMessage {
                seq: r.get::<_, i64>(0)? as u64,
                id: r.get(1)?,
                at_ms: r.get(2)?,
                nick: r.get(3)?,
                account: r.get::<_, Option<String>>(4)?.and_then(|a| a.parse().ok()),
                via: Frontend::parse(&r.get::<_, String>(5)?).unwrap_or(Frontend::Web),
                kind: MessageKind::parse(&r.get::<_, String>(6)?).unwrap_or(MessageKind::Text),
                body: r.get(7)?,
                room: room.clone(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !oldest_first {
        page.reverse();
    }
    Ok(page)
}

/// The exclusive sequence bound a [`HistoryBound`] stands for: for `before`, the first sequence
/// number not wanted from above; for `after`, the last not wanted from below. `None` for an id that
/// names no message of the room.
fn resolve(conn: &Connection, room: i64, bound: &HistoryBound, before: bool) -> rusqlite::Result<Option<i64>> {
    Ok(match bound {
        HistoryBound::Seq(seq) => Some(i64::try_from(*seq).unwrap_or(i64::MAX)),
        HistoryBound::Id(msgid) => conn
            .prepare_cached("SELECT seq FROM chat_messages WHERE msgid = ?1 AND room_id = ?2")?
            .query_row(params![msgid, room], |r| r.get(0))
            .optional()?,
        HistoryBound::Time(at_ms) if before => Some(
            conn.prepare_cached(
                "SELECT COALESCE(MIN(seq), (SELECT last_seq + 1 FROM rooms WHERE id = ?1))
                 FROM chat_messages WHERE room_id = ?1 AND at_ms >= ?2",
            )?
            .query_row(params![room, at_ms], |r| r.get(0))?,
        ),
        HistoryBound::Time(at_ms) => Some(
            conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM chat_messages WHERE room_id = ?1 AND at_ms <= ?2")?
                .query_row(params![room, at_ms], |r| r.get(0))?,
        ),
    })
}

/// An account's presence.
pub(super) fn read_presence(conn: &Connection, address: &Address) -> rusqlite::Result<Option<Presence>> {
    conn.prepare_cached("SELECT presence, presence_message, last_seen_ms FROM accounts WHERE address = ?1")?
        .query_row(params![address.to_string()], |r| {
            Ok(Presence {
                status: PresenceStatus::parse(&r.get::<_, String>(0)?).unwrap_or(PresenceStatus::Offline),
                message: r.get(1)?,
                last_seen_ms: r.get(2)?,
            })
        })
        .optional()
}

/// The rooms of an account, sorted.
pub(super) fn read_memberships(conn: &Connection, address: &Address) -> rusqlite::Result<Vec<RoomName>> {
    let names = conn
        .prepare_cached(
            "SELECT m.room FROM room_members m JOIN accounts a ON a.id = m.account_id
             WHERE a.address = ?1 ORDER BY m.room",
        )?
        .query_map(params![address.to_string()], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.iter().filter_map(|n| RoomName::parse(n).ok()).collect())
}
