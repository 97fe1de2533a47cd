//! CHATHISTORY (IRCv3 `draft/chathistory`): LATEST, BEFORE, AFTER, AROUND and BETWEEN with
//! `msgid=` and `timestamp=` references, answered in a `chathistory` batch, oldest message first
//! (the room's delivery order). Errors are `FAIL CHATHISTORY <code>` standard replies.
//!
//! Only members may read a room's history. Private messages are not kept, so a nickname target
//! gets an empty batch.

use std::sync::Arc;

use tidings_core::{ChatMessage, HistoryBound, HistoryQuery, RoomName};

use super::Session;
use crate::hub::Conn;
use crate::irc::message::Message;
use crate::irc::text::{parse_time, ulid_time};

/// A message reference: `*`, `msgid=…` or `timestamp=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reference {
    Star,
    Bound(HistoryBound),
}

fn parse_reference(text: &str) -> Option<Reference> {
    if text == "*" {
        return Some(Reference::Star);
    }
    let (kind, value) = text.split_once('=')?;
    match kind {
        "msgid" if !value.is_empty() => Some(Reference::Bound(HistoryBound::Id(value.to_owned()))),
        "timestamp" => parse_time(value).map(|ms| Reference::Bound(HistoryBound::Time(ms))),
        _ => None,
    }
}

/// The time a bound stands for, for ordering two references (a msgid's ULID time).
fn bound_time(bound: &HistoryBound) -> i64 {
    match bound {
        HistoryBound::Id(id) => ulid_time(id).unwrap_or(i64::MAX),
        HistoryBound::Time(ms) => *ms,
        HistoryBound::Seq(_) => i64::MAX,
    }
}

impl Session {
    fn history_fail(&mut self, code: &str, context: &[&str], text: &str) {
        let mut params = vec!["CHATHISTORY".to_owned(), code.to_owned()];
        params.extend(context.iter().map(|c| (*c).to_owned()));
        params.push(text.to_owned());
        self.server_message("FAIL", params);
    }

    pub(super) async fn chathistory(&mut self, conn: &Arc<Conn>, msg: &Message) {
        let sub = msg.params.first().map(|s| s.to_ascii_uppercase()).unwrap_or_default();
        let arity = match sub.as_str() {
            "LATEST" | "BEFORE" | "AFTER" | "AROUND" => 4,
            "BETWEEN" => 5,
            "" => return self.history_fail("INVALID_PARAMS", &["*"], "Missing subcommand"),
            _ => return self.history_fail("UNKNOWN_COMMAND", &[&sub], "Unknown CHATHISTORY subcommand"),
        };
        if msg.params.len() < arity {
            return self.history_fail("INVALID_PARAMS", &[&sub], "Not enough parameters");
        }
        let target = msg.params[1].clone();
        let limit = match msg.params[arity - 1].parse::<usize>() {
            Ok(limit) if limit > 0 => limit.min(self.shared.config.history_page_max),
            _ => return self.history_fail("INVALID_PARAMS", &[&sub, &msg.params[arity - 1]], "Invalid limit"),
        };
        let mut references = Vec::new();
        for text in &msg.params[2..arity - 1] {
            match parse_reference(text) {
                Some(Reference::Star) if sub == "LATEST" => references.push(Reference::Star),
                Some(Reference::Bound(bound)) => references.push(Reference::Bound(bound)),
                _ => return self.history_fail("INVALID_PARAMS", &[&sub, text], "Invalid message reference"),
            }
        }
        let messages = if target.starts_with('#') {
            let Ok(room) = RoomName::parse(&target) else {
                return self.history_fail("INVALID_TARGET", &[&sub, &target], "No such channel");
            };
            if !conn.rooms().contains(&room) {
                return self.history_fail("INVALID_TARGET", &[&sub, &target], "You are not in that channel");
            }
            match self.history_page(&room, &sub, references, limit).await {
                Ok(messages) => messages,
                Err(()) => {
                    return self.history_fail("MESSAGE_ERROR", &[&sub, &target], "Messages could not be retrieved");
                }
            }
        } else {
            Vec::new()
        };
        self.next_batch += 1;
        let batch = self.has(super::cap::BATCH).then(|| format!("history{}", self.next_batch));
        if let Some(batch) = &batch {
            self.server_message("BATCH", vec![format!("+{batch}"), "chathistory".into(), target.clone()]);
        }
        let mut out = std::mem::take(&mut self.output);
        for message in &messages {
            self.message_lines(message, batch.as_deref(), &mut out);
        }
        self.output = out;
        if let Some(batch) = batch {
            self.server_message("BATCH", vec![format!("-{batch}")]);
        }
    }

    /// Reads one page, oldest first.
    async fn history_page(
        &self,
        room: &RoomName,
        sub: &str,
        mut references: Vec<Reference>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, ()> {
        let hub = Arc::clone(&self.hub);
        let read = |after: Option<HistoryBound>, before: Option<HistoryBound>, limit: usize| {
            let hub = Arc::clone(&hub);
            let room = room.clone();
            async move { hub.history(&room, HistoryQuery { after, before, limit }).await.map_err(|_| ()) }
        };
        let first = match references.remove(0) {
            Reference::Star => None,
            Reference::Bound(bound) => Some(bound),
        };
        match (sub, first) {
            ("LATEST", None) => read(None, None, limit).await,
            // The newest messages after the reference: bounded above by "after everything".
            ("LATEST", Some(after)) => read(Some(after), Some(HistoryBound::Seq(u64::MAX)), limit).await,
            ("BEFORE", Some(before)) => read(None, Some(before), limit).await,
            ("AFTER", Some(after)) => read(Some(after), None, limit).await,
            ("AROUND", Some(center)) => {
                // At least the message before the centre is read, to know where the centre is; it
                // is kept only when half the limit leaves room for it.
                let mut page = read(None, Some(center.clone()), (limit / 2).max(1)).await?;
                let from = page.last().map_or(0, |m| m.seq);
                if limit / 2 == 0 {
                    page.clear();
                }
                let rest = read(Some(HistoryBound::Seq(from)), None, limit - page.len()).await?;
                if let HistoryBound::Id(id) = &center
                    && page.is_empty()
                    && rest.first().is_none_or(|m| m.id != *id)
                {
                    // An unknown msgid: nothing is around it.
                    return Ok(Vec::new());
                }
                page.extend(rest);
                Ok(page)
            }
            ("BETWEEN", Some(start)) => {
                let Some(Reference::Bound(end)) = references.pop() else { return Ok(Vec::new()) };
                if bound_time(&start) > bound_time(&end) {
                    // Backwards: the newest before `start`, back to `end`.
                    return read(Some(end), Some(start), limit).await;
                }
                // Forwards: the oldest after `start`, up to `end`.
                let page = read(Some(start), None, limit).await?;
                let end_ms = bound_time(&end);
                Ok(page
                    .into_iter()
                    .take_while(|m| match &end {
                        HistoryBound::Id(id) => m.id != *id && m.at_ms <= end_ms,
                        _ => m.at_ms < end_ms,
                    })
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(parse_reference("*"), Some(Reference::Star));
        assert_eq!(parse_reference("msgid=01ABC"), Some(Reference::Bound(HistoryBound::Id("01ABC".into()))));
        assert_eq!(
            parse_reference("timestamp=1970-01-01T00:00:01.000Z"),
            Some(Reference::Bound(HistoryBound::Time(1000)))
        );
        for bad in ["", "msgid=", "timestamp=yesterday", "seq=5", "x"] {
            assert_eq!(parse_reference(bad), None, "{bad}");
        }
    }
}
