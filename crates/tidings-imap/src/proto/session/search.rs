//! SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4), answered with SEARCH or, for
//! IMAP4rev2 clients and RETURN options, ESEARCH (RFC 4731).
//!
//! The criteria are first evaluated on what the session knows (flags, sizes, dates, numbers);
//! only messages they leave undecided are loaded, in batches, to look at their header and text.

use imap_codec::imap_types::core::{AString, Charset};
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use tidings_core::{MessageMeta, SystemFlag};
use tidings_message::Message;

use super::render::{day_of, days_from_civil};
use super::selected::uid_set;
use super::{Pending, Session, State};
use crate::proto::extended::SearchReturn;
use crate::proto::mailbox::Selected;
use crate::proto::wire::Status;
use crate::proto::{MailboxError, Request, Response};

/// Most search keys (counting every nested one) one SEARCH may hold; each is evaluated for
/// every message, so this bounds the work a command can ask for.
const SEARCH_KEYS_MAX: usize = 1000;

/// A search key, compiled from the client's: strings decoded, dates as day numbers, sets as
/// sorted ranges.
#[derive(Debug, Clone)]
enum Key {
    All,
    Flag(SystemFlag, bool),
    Keyword(String, bool),
    /// RECENT and NEW: no message is recent in this server (`\Recent` is not kept).
    Never,
    Numbers(Ranges),
    Uids(Ranges),
    Larger(u64),
    Smaller(u64),
    /// Internal date before / on / since a day.
    Date(Compare, i64),
    /// Date field before / on / since a day.
    SentDate(Compare, i64),
    Header(String, String),
    Body(String),
    Text(String),
    Not(Box<Key>),
    Or(Box<Key>, Box<Key>),
    And(Vec<Key>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Before,
    On,
    Since,
}

impl Compare {
    fn holds(self, day: i64, against: i64) -> bool {
        match self {
            Compare::Before => day < against,
            Compare::On => day == against,
            Compare::Since => day >= against,
        }
    }
}

/// Sorted, disjoint inclusive ranges.
#[derive(Debug, Clone, Default)]
struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    fn of(set: &SequenceSet, largest: u32) -> Ranges {
        let value = |v: &SeqOrUid| match v {
            SeqOrUid::Value(n) => n.get(),
            SeqOrUid::Asterisk => largest,
        };
        let mut ranges: Vec<(u32, u32)> = set
            .0
            .as_ref()
            .iter()
            .map(|sequence| match sequence {
                Sequence::Single(v) => (value(v), value(v)),
                Sequence::Range(a, b) => (value(a).min(value(b)), value(a).max(value(b))),
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (low, high) in ranges {
            match merged.last_mut() {
                Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
                _ => merged.push((low, high)),
            }
        }
        Ranges(merged)
    }

    fn contains(&self, n: u32) -> bool {
        let index = self.0.partition_point(|&(_, high)| high < n);
        self.0.get(index).is_some_and(|&(low, _)| low <= n)
    }
}

/// What one message looks like to the evaluator.
struct Candidate<'a> {
    number: u32,
    meta: &'a MessageMeta,
    message: Option<&'a Message<'a>>,
}

impl Key {
    /// Whether the message matches; `None` when that needs its content and it is not loaded.
    fn eval(&self, c: &Candidate<'_>) -> Option<bool> {
        Some(match self {
            Key::All => true,
            Key::Flag(flag, set) => c.meta.flags.has(*flag) == *set,
            Key::Keyword(keyword, set) => c.meta.flags.has_keyword(keyword) == *set,
            Key::Never => false,
            Key::Numbers(ranges) => ranges.contains(c.number),
            Key::Uids(ranges) => ranges.contains(c.meta.uid),
            Key::Larger(n) => c.meta.size > *n,
            Key::Smaller(n) => c.meta.size < *n,
            Key::Date(compare, day) => compare.holds(day_of(c.meta.internal_date), *day),
            Key::SentDate(compare, day) => {
                let message = c.message?;
                message.sent_day().is_some_and(|sent| compare.holds(sent, *day))
            }
            Key::Header(field, needle) => c.message?.header_contains(field, needle),
            Key::Body(needle) => c.message?.body_contains(needle),
            Key::Text(needle) => c.message?.text_contains(needle),
            Key::Not(key) => !key.eval(c)?,
            Key::Or(a, b) => match (a.eval(c), b.eval(c)) {
                (Some(true), _) | (_, Some(true)) => true,
                (Some(false), Some(false)) => false,
                _ => return None,
            },
            Key::And(keys) => {
                let mut unknown = false;
                for key in keys {
                    match key.eval(c) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => unknown = true,
                    }
                }
                if unknown {
                    return None;
                }
                true
            }
        })
    }
}

/// A SEARCH in progress.
#[derive(Debug)]
pub(crate) struct SearchJob {
    tag: String,
    uid: bool,
    key: Key,
    /// ESEARCH options (`None`: a plain SEARCH response).
    esearch: Option<SearchReturn>,
    /// Matching UIDs so far (not in order).
    matched: Vec<u32>,
    /// UIDs the criteria could not decide without content, ascending.
    undecided: Vec<u32>,
    next: usize,
}

impl Session {
    pub(crate) fn search(
        &mut self,
        tag: &str,
        charset: Option<&Charset<'_>>,
        criteria: Vec<SearchKey<'static>>,
        uid: bool,
        options: Option<SearchReturn>,
    ) {
        if let Some(charset) = charset {
            let name = charset.as_ref();
            if !name.eq_ignore_ascii_case("UTF-8") && !name.eq_ignore_ascii_case("US-ASCII") {
                return self.finish(tag, Status::No, Some("BADCHARSET (UTF-8 US-ASCII)"), "Unsupported charset", false);
            }
        }
        let State::Selected(selected) = &self.state else {
            return;
        };
        let mut keys_left = SEARCH_KEYS_MAX;
        let key = match compile_all(&criteria, selected, &mut keys_left) {
            Ok(key) => key,
            Err(text) => return self.reply_bad(Some(tag), text),
        };
        let mut matched = Vec::new();
        let mut undecided = Vec::new();
        for (index, slot) in selected.messages.iter().enumerate() {
            if slot.expunged {
                continue;
            }
            let candidate = Candidate { number: index as u32 + 1, meta: &slot.meta, message: None };
            match key.eval(&candidate) {
                Some(true) => matched.push(slot.meta.uid),
                Some(false) => {}
                None => undecided.push(slot.meta.uid),
            }
        }
        let esearch = options.or(self.rev2.then(|| SearchReturn { all: true, ..SearchReturn::default() }));
        let job = SearchJob { tag: tag.to_owned(), uid, key, esearch, matched, undecided, next: 0 };
        self.search_continue(job);
    }

    /// Loads the next batch of undecided messages, or answers when none is left.
    pub(super) fn search_continue(&mut self, mut job: SearchJob) {
        let State::Selected(selected) = &self.state else {
            return self.finish(&job.tag, Status::No, None, "No mailbox selected", false);
        };
        if job.next >= job.undecided.len() {
            return self.search_done(job);
        }
        let limits = &self.config.limits;
        let (start, mut bytes) = (job.next, 0u64);
        while let Some(&uid) = job.undecided.get(job.next) {
            let count = job.next - start;
            if count > 0 && (count >= limits.fetch_batch_messages || bytes >= limits.fetch_batch_bytes) {
                break;
            }
            bytes = bytes.saturating_add(selected.index_of(uid).map_or(0, |i| selected.messages[i].meta.size));
            job.next += 1;
        }
        let request = Request::Fetch {
            mailbox: selected.name.clone(),
            uids: job.undecided[start..job.next].to_vec(),
            content: true,
        };
        self.request(request, Pending::Search(job));
    }

    pub(super) fn search_resolved(&mut self, mut job: SearchJob, response: Response) {
        let messages = match response {
            Response::Messages(Ok(messages)) => messages,
            Response::Messages(Err(error)) => return self.mailbox_error(&job.tag, error, false, false),
            other => {
                debug_assert!(false, "SEARCH fetch answered with {other:?}");
                return self.mailbox_error(&job.tag, MailboxError::TryLater, false, false);
            }
        };
        if let State::Selected(selected) = &self.state {
            for stored in &messages {
                let (Some(index), Some(content)) = (selected.index_of(stored.meta.uid), &stored.content) else {
                    continue;
                };
                let message = Message::parse(content);
                let candidate = Candidate { number: index as u32 + 1, meta: &stored.meta, message: Some(&message) };
                if job.key.eval(&candidate) == Some(true) {
                    job.matched.push(stored.meta.uid);
                }
            }
        }
        self.search_continue(job);
    }

    fn search_done(&mut self, mut job: SearchJob) {
        let State::Selected(selected) = &self.state else {
            return;
        };
        job.matched.sort_unstable();
        job.matched.dedup();
        // Results in the client's terms: UIDs, or the messages' sequence numbers (ascending
        // either way, since UIDs ascend with sequence numbers).
        let results: Vec<u32> = if job.uid {
            job.matched
        } else {
            job.matched.iter().filter_map(|&uid| selected.index_of(uid)).map(|i| i as u32 + 1).collect()
        };
        match job.esearch {
            None => {
                let mut line = String::from("SEARCH");
                for n in &results {
                    line.push(' ');
                    line.push_str(&n.to_string());
                }
                self.wire.untagged(format_args!("{line}"));
            }
            Some(options) => {
                let mut line = format!("ESEARCH (TAG \"{}\")", job.tag.replace(['"', '\\'], ""));
                if job.uid {
                    line.push_str(" UID");
                }
                if let (true, Some(min)) = (options.min, results.first()) {
                    line.push_str(&format!(" MIN {min}"));
                }
                if let (true, Some(max)) = (options.max, results.last()) {
                    line.push_str(&format!(" MAX {max}"));
                }
                if options.count {
                    line.push_str(&format!(" COUNT {}", results.len()));
                }
                if options.all && !results.is_empty() {
                    line.push_str(&format!(" ALL {}", uid_set(results.iter().copied())));
                }
                self.wire.untagged(format_args!("{line}"));
            }
        }
        self.finish(&job.tag, Status::Ok, None, "SEARCH completed", false);
    }
}

/// The criteria, ANDed.
fn compile_all(keys: &[SearchKey<'_>], selected: &Selected, left: &mut usize) -> Result<Key, &'static str> {
    let mut compiled = Vec::with_capacity(keys.len().min(SEARCH_KEYS_MAX));
    for key in keys {
        compiled.push(compile(key, selected, left)?);
    }
    Ok(if compiled.len() == 1 { compiled.remove(0) } else { Key::And(compiled) })
}

fn compile(key: &SearchKey<'_>, selected: &Selected, left: &mut usize) -> Result<Key, &'static str> {
    *left = left.checked_sub(1).ok_or("Too many search keys")?;
    let text = |value: &AString<'_>| {
        std::str::from_utf8(value.as_ref()).map(str::to_owned).map_err(|_| "Search string is not UTF-8")
    };
    let count = u32::try_from(selected.count()).unwrap_or(u32::MAX);
    let highest_uid = selected.messages.last().map_or(0, |s| s.meta.uid);
    Ok(match key {
        SearchKey::And(keys) => compile_all(keys.as_ref(), selected, left)?,
        SearchKey::SequenceSet(set) => Key::Numbers(Ranges::of(set, count)),
        SearchKey::Uid(set) => Key::Uids(Ranges::of(set, highest_uid)),
        SearchKey::All => Key::All,
        SearchKey::Answered => Key::Flag(SystemFlag::Answered, true),
        SearchKey::Deleted => Key::Flag(SystemFlag::Deleted, true),
        SearchKey::Draft => Key::Flag(SystemFlag::Draft, true),
        SearchKey::Flagged => Key::Flag(SystemFlag::Flagged, true),
        SearchKey::Seen => Key::Flag(SystemFlag::Seen, true),
        SearchKey::Unanswered => Key::Flag(SystemFlag::Answered, false),
        SearchKey::Undeleted => Key::Flag(SystemFlag::Deleted, false),
        SearchKey::Undraft => Key::Flag(SystemFlag::Draft, false),
        SearchKey::Unflagged => Key::Flag(SystemFlag::Flagged, false),
        SearchKey::Unseen => Key::Flag(SystemFlag::Seen, false),
        SearchKey::Keyword(atom) => Key::Keyword(atom.as_ref().to_owned(), true),
        SearchKey::Unkeyword(atom) => Key::Keyword(atom.as_ref().to_owned(), false),
        SearchKey::New | SearchKey::Recent => Key::Never,
        SearchKey::Old => Key::All,
        SearchKey::Larger(n) => Key::Larger(u64::from(*n)),
        SearchKey::Smaller(n) => Key::Smaller(u64::from(*n)),
        SearchKey::Before(date) => Key::Date(Compare::Before, day_number(date)?),
        SearchKey::On(date) => Key::Date(Compare::On, day_number(date)?),
        SearchKey::Since(date) => Key::Date(Compare::Since, day_number(date)?),
        SearchKey::SentBefore(date) => Key::SentDate(Compare::Before, day_number(date)?),
        SearchKey::SentOn(date) => Key::SentDate(Compare::On, day_number(date)?),
        SearchKey::SentSince(date) => Key::SentDate(Compare::Since, day_number(date)?),
        SearchKey::Bcc(value) => Key::Header("Bcc".into(), text(value)?),
        SearchKey::Cc(value) => Key::Header("Cc".into(), text(value)?),
        SearchKey::From(value) => Key::Header("From".into(), text(value)?),
        SearchKey::To(value) => Key::Header("To".into(), text(value)?),
        SearchKey::Subject(value) => Key::Header("Subject".into(), text(value)?),
        SearchKey::Header(field, value) => Key::Header(text(field)?, text(value)?),
        SearchKey::Body(value) => Key::Body(text(value)?),
        SearchKey::Text(value) => Key::Text(text(value)?),
        SearchKey::Not(key) => Key::Not(Box::new(compile(key, selected, left)?)),
        SearchKey::Or(a, b) => Key::Or(Box::new(compile(a, selected, left)?), Box::new(compile(b, selected, left)?)),
        SearchKey::ModSequence { .. } => return Err("MODSEQ needs CONDSTORE, which is not supported"),
    })
}

/// A SEARCH date as days since 1970-01-01.
fn day_number(date: &NaiveDate) -> Result<i64, &'static str> {
    // chrono writes a NaiveDate as `YYYY-MM-DD`; imap-codec only makes four-digit years.
    let text = date.as_ref().to_string();
    let mut parts = text.splitn(3, '-');
    let mut number = || parts.next().and_then(|p| p.parse::<i64>().ok());
    match (number(), number(), number()) {
        (Some(year), Some(month @ 1..=12), Some(day @ 1..=31)) => Ok(days_from_civil(year, month as u32, day as u32)),
        _ => Err("Invalid date"),
    }
}
