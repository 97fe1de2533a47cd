//! FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9; BINARY, RFC 3516).
//!
//! Metadata items are answered from the session's view of the mailbox; anything needing the
//! message's octets loads them in batches ([`Limits::fetch_batch_messages`], at most
//! [`Limits::fetch_batch_bytes`]) and writes each message's response as soon as it is parsed,
//! stopping for [`Step::Flush`](crate::proto::Step::Flush) whenever the output passes
//! [`OUTPUT_BYTES_HIGH_WATER`], so one FETCH holds at most one batch and the unsent output.
//!
//! [`Limits::fetch_batch_messages`]: crate::proto::Limits::fetch_batch_messages
//! [`Limits::fetch_batch_bytes`]: crate::proto::Limits::fetch_batch_bytes

use std::collections::VecDeque;
use std::num::NonZeroU32;

use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::sequence::SequenceSet;
use tidings_core::{FlagChange, Flags, MessageMeta, OUTPUT_BYTES_HIGH_WATER, StoredMessage, SystemFlag};
use tidings_message::{BinaryError, Message};

use super::render::{encoded_item, internal_date, part_text, section_text};
use super::{Pending, Resume, Session, State};
use crate::proto::wire::Status;
use crate::proto::{MailboxError, Request, Response};

/// One FETCH data item, as asked.
#[derive(Debug, Clone)]
enum Item {
    Uid,
    Flags,
    InternalDate,
    Size,
    Envelope,
    /// BODY (`false`) or BODYSTRUCTURE (`true`).
    Structure(bool),
    /// `BODY[section]<partial>` and its RFC822 forms.
    Section {
        section: Option<Section<'static>>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
        form: Form,
    },
    Binary {
        part: Vec<NonZeroU32>,
        partial: Option<(u32, NonZeroU32)>,
        peek: bool,
    },
    BinarySize {
        part: Vec<NonZeroU32>,
    },
}

/// How a section item is named in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Body,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
}

impl Item {
    fn needs_content(&self) -> bool {
        !matches!(self, Item::Uid | Item::Flags | Item::InternalDate | Item::Size)
    }

    /// The whole message or its whole text, without partial: a response as large as the
    /// message.
    fn is_whole(&self) -> bool {
        match self {
            Item::Section { section, partial: None, .. } => matches!(section, None | Some(Section::Text(None))),
            Item::Binary { part, partial: None, .. } => part.is_empty(),
            _ => false,
        }
    }

    /// Reading it sets `\Seen` (RFC 9051 §6.4.5).
    fn sets_seen(&self) -> bool {
        matches!(self, Item::Section { peek: false, .. } | Item::Binary { peek: false, .. })
    }
}

/// Where a FETCH is.
#[derive(Debug)]
enum Phase {
    /// Setting `\Seen` on the unseen messages first.
    SettingSeen,
    /// Loading batches (or writing from metadata).
    Loading,
}

/// A FETCH in progress.
#[derive(Debug)]
pub(crate) struct FetchJob {
    tag: String,
    items: Vec<Item>,
    /// The messages, by UID, ascending.
    targets: Vec<u32>,
    /// The next target to load or write.
    next: usize,
    content: bool,
    phase: Phase,
    /// UIDs whose `\Seen` this FETCH set (their responses carry FLAGS), ascending.
    seen_now: Vec<u32>,
    /// The batch loaded and not yet written.
    loaded: VecDeque<StoredMessage>,
    /// Some message asked for was gone.
    missing: bool,
    /// A BINARY item met a transfer encoding it cannot decode.
    unknown_cte: bool,
    /// Messages in the batch last asked for.
    batch: usize,
    /// An item is a whole message or its whole text, without partial: each response is about
    /// as large as the message, and the output is reserved for them a flush at a time.
    whole: bool,
}

/// Octets of a FETCH response beyond its literal, for reserving output (an estimate).
const RESPONSE_OCTETS_EXTRA: u64 = 256;

impl Session {
    pub(super) fn fetch(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        uid: bool,
    ) {
        let mut items = match items_from(items) {
            Ok(items) => items,
            Err(text) => return self.reply_bad(Some(tag), text),
        };
        if uid && !items.iter().any(|i| matches!(i, Item::Uid)) {
            items.insert(0, Item::Uid);
        }
        let State::Selected(selected) = &self.state else {
            return;
        };
        let indices = match selected.resolve(set, uid) {
            Ok(indices) => indices,
            Err(error) => return self.set_error(tag, error),
        };
        let missing = indices.iter().any(|&i| selected.messages[i].expunged);
        let targets: Vec<u32> =
            indices.iter().map(|&i| &selected.messages[i]).filter(|s| !s.expunged).map(|s| s.meta.uid).collect();
        let unseen: Vec<u32> = if !selected.read_only && items.iter().any(Item::sets_seen) {
            indices
                .iter()
                .map(|&i| &selected.messages[i])
                .filter(|s| !s.expunged && !s.meta.flags.has(SystemFlag::Seen))
                .map(|s| s.meta.uid)
                .collect()
        } else {
            Vec::new()
        };
        let mailbox = selected.name.clone();
        let job = FetchJob {
            tag: tag.to_owned(),
            content: items.iter().any(Item::needs_content),
            whole: items.iter().any(Item::is_whole),
            items,
            targets,
            next: 0,
            phase: Phase::Loading,
            seen_now: Vec::new(),
            loaded: VecDeque::new(),
            missing,
            unknown_cte: false,
            batch: 0,
        };
        if unseen.is_empty() {
            return self.fetch_continue(job);
        }
        let mut seen = Flags::new();
        seen.set(SystemFlag::Seen, true);
        let request = Request::Store { mailbox, uids: unseen, change: FlagChange::Add, flags: seen };
        self.request(request, Pending::Fetch(FetchJob { phase: Phase::SettingSeen, ..job }));
    }

    /// Writes responses until the output passes the high-water mark (then resumes after the
    /// flush), a batch must be loaded (then asks for it), or all are written.
    pub(super) fn fetch_continue(&mut self, mut job: FetchJob) {
        loop {
            if self.wire.pending_output_bytes() >= OUTPUT_BYTES_HIGH_WATER {
                self.resume = Some(Resume::Fetch(job));
                return;
            }
            if job.whole {
                self.reserve_output(&job);
            }
            if let Some(message) = job.loaded.pop_front() {
                self.write_fetch(&mut job, message.meta, message.content.as_deref());
                continue;
            }
            let Some(&uid) = job.targets.get(job.next) else {
                return self.fetch_done(job);
            };
            if !job.content {
                job.next += 1;
                let meta = match &self.state {
                    State::Selected(selected) => selected.index_of(uid).map(|i| selected.messages[i].meta.clone()),
                    _ => None,
                };
                if let Some(meta) = meta {
                    self.write_fetch(&mut job, meta, None);
                }
                continue;
            }
            let State::Selected(selected) = &self.state else {
                return self.fetch_done(job);
            };
            let limits = &self.config.limits;
            let (mut count, mut bytes) = (0usize, 0u64);
            let start = job.next;
            while let Some(&uid) = job.targets.get(job.next) {
                if count > 0 && (count >= limits.fetch_batch_messages || bytes >= limits.fetch_batch_bytes) {
                    break;
                }
                let size = selected.index_of(uid).map_or(0, |i| selected.messages[i].meta.size);
                count += 1;
                bytes = bytes.saturating_add(size);
                job.next += 1;
            }
            job.batch = job.next - start;
            let request = Request::Fetch {
                mailbox: selected.name.clone(),
                uids: job.targets[start..job.next].to_vec(),
                content: true,
            };
            self.request(request, Pending::Fetch(job));
            return;
        }
    }

    /// When the next loaded message does not fit the output, makes room at once for every
    /// response to be written before the next flush: up to the high-water mark and the message
    /// that crosses it, counting the messages of the next batch when this one ends first. The
    /// output would grow that large anyway, but by doublings, each copying what was written.
    fn reserve_output(&mut self, job: &FetchJob) {
        let Some(next) = job.loaded.front() else {
            return;
        };
        let octets = |message: &StoredMessage| message.content.as_ref().map_or(0, |c| c.len() as u64);
        if (self.wire.spare_capacity() as u64) >= octets(next) + RESPONSE_OCTETS_EXTRA {
            return;
        }
        let State::Selected(selected) = &self.state else {
            return;
        };
        let later = job.targets[job.next..]
            .iter()
            .map(|&uid| selected.index_of(uid).map_or(0, |i| selected.messages[i].meta.size));
        // Each response takes at least its message's octets, so once those reach the room left
        // the output is flushed; each takes at most the estimate.
        let room = OUTPUT_BYTES_HIGH_WATER.saturating_sub(self.wire.pending_output_bytes()) as u64;
        let (mut least, mut most) = (0u64, 0u64);
        for size in job.loaded.iter().map(octets).chain(later) {
            least = least.saturating_add(size);
            most = most.saturating_add(size + RESPONSE_OCTETS_EXTRA);
            if least >= room {
                break;
            }
        }
        self.wire.reserve(usize::try_from(most).unwrap_or(usize::MAX));
    }

    pub(super) fn fetch_resolved(&mut self, mut job: FetchJob, response: Response) {
        match (&job.phase, response) {
            (Phase::SettingSeen, Response::Stored(result)) => {
                if let (Ok(metas), State::Selected(selected)) = (result, &mut self.state) {
                    for meta in metas {
                        if let Some(index) = selected.index_of(meta.uid) {
                            if meta.flags.has(SystemFlag::Seen) {
                                job.seen_now.push(meta.uid);
                            }
                            selected.update(index, meta);
                        }
                    }
                    job.seen_now.sort_unstable();
                }
                job.phase = Phase::Loading;
                self.fetch_continue(job);
            }
            (Phase::Loading, Response::Messages(Ok(messages))) => {
                if messages.len() < job.batch {
                    job.missing = true;
                }
                job.loaded = messages.into();
                self.fetch_continue(job);
            }
            (Phase::Loading, Response::Messages(Err(error))) => self.mailbox_error(&job.tag, error, false, false),
            (_, other) => {
                debug_assert!(false, "FETCH request answered with {other:?}");
                self.mailbox_error(&job.tag, MailboxError::TryLater, false, false);
            }
        }
    }

    fn fetch_done(&mut self, job: FetchJob) {
        if job.unknown_cte {
            return self.finish(
                &job.tag,
                Status::No,
                Some("UNKNOWN-CTE"),
                "A part's Content-Transfer-Encoding cannot be decoded; fetch BODY[part] instead",
                false,
            );
        }
        if job.missing {
            return self.finish(&job.tag, Status::Ok, Some("EXPUNGEISSUED"), "Some messages no longer exist", false);
        }
        self.finish(&job.tag, Status::Ok, None, "FETCH completed", false);
    }

    /// Writes `* n FETCH (...)` for one message.
    fn write_fetch(&mut self, job: &mut FetchJob, meta: MessageMeta, content: Option<&[u8]>) {
        let State::Selected(selected) = &mut self.state else {
            return;
        };
        let Some(index) = selected.index_of(meta.uid) else {
            return;
        };
        if selected.messages[index].expunged {
            return;
        }
        if job.content && content.is_none() {
            job.missing = true;
            return;
        }
        selected.update(index, meta);
        let slot = &mut selected.messages[index];
        let seen_now = job.seen_now.binary_search(&slot.meta.uid).is_ok();
        let flags_asked = job.items.iter().any(|i| matches!(i, Item::Flags));
        let with_flags = flags_asked || seen_now || slot.flags_changed;
        slot.flags_changed = false;
        let meta = slot.meta.clone();
        let message = content.map(Message::parse);
        self.wire.fmt(format_args!("* {} FETCH (", index + 1));
        let mut first = true;
        let mut separator = |wire: &mut crate::proto::wire::Wire| {
            if !std::mem::take(&mut first) {
                wire.text(" ");
            }
        };
        for item in &job.items {
            match item {
                // Where the client asked for it (clients and scripts often read the items in
                // request order); the implicit \Seen of this FETCH is already in `meta`.
                Item::Flags => {
                    separator(&mut self.wire);
                    self.wire.fmt(format_args!("FLAGS ({})", meta.flags));
                    continue;
                }
                Item::Uid | Item::InternalDate | Item::Size => {
                    separator(&mut self.wire);
                    match item {
                        Item::Uid => self.wire.fmt(format_args!("UID {}", meta.uid)),
                        Item::InternalDate => {
                            self.wire.fmt(format_args!("INTERNALDATE {}", internal_date(meta.internal_date)))
                        }
                        _ => {
                            let size = content.map_or(meta.size, |c| c.len() as u64);
                            self.wire.fmt(format_args!("RFC822.SIZE {size}"));
                        }
                    }
                    continue;
                }
                _ => {}
            }
            // Content items; `write_fetch` is only called without content when none is asked.
            let Some(message) = &message else {
                continue;
            };
            // BINARY's decoding, done once per item; an encoding it cannot undo leaves the item
            // out and fails the command (RFC 3516 §4.3).
            let binary = match item {
                Item::Binary { part, .. } | Item::BinarySize { part } => match message.binary(part) {
                    Ok(data) => data,
                    Err(BinaryError::UnknownCte) => {
                        job.unknown_cte = true;
                        continue;
                    }
                },
                _ => None,
            };
            separator(&mut self.wire);
            match item {
                Item::Envelope => self.wire.encoded(&encoded_item(MessageDataItem::Envelope(message.envelope()))),
                Item::Structure(extension_data) => {
                    let structure = message.body_structure(*extension_data);
                    let data = if *extension_data {
                        MessageDataItem::BodyStructure(structure)
                    } else {
                        MessageDataItem::Body(structure)
                    };
                    self.wire.encoded(&encoded_item(data));
                }
                Item::Section { section, partial, form, .. } => {
                    match form {
                        Form::Body => self.wire.fmt(format_args!("BODY[{}]", section_text(section.as_ref()))),
                        Form::Rfc822 => self.wire.text("RFC822"),
                        Form::Rfc822Header => self.wire.text("RFC822.HEADER"),
                        Form::Rfc822Text => self.wire.text("RFC822.TEXT"),
                    }
                    let data = message.section(section.as_ref());
                    write_partial(&mut self.wire, data.as_deref(), *partial, false);
                }
                Item::Binary { part, partial, .. } => {
                    self.wire.fmt(format_args!("BINARY[{}]", part_text(part)));
                    write_partial(&mut self.wire, binary.as_deref(), *partial, true);
                }
                Item::BinarySize { part } => {
                    let size = binary.map_or(0, |data| data.len());
                    self.wire.fmt(format_args!("BINARY.SIZE[{}] {size}", part_text(part)));
                }
                Item::Uid | Item::Flags | Item::InternalDate | Item::Size => {}
            }
        }
        if with_flags && !flags_asked {
            // Unasked: the flags this FETCH changed (\Seen) or another session did.
            separator(&mut self.wire);
            self.wire.fmt(format_args!("FLAGS ({})", meta.flags));
        }
        self.wire.text(")");
        self.wire.end();
    }
}

/// Writes `<origin>` when partial, a space, then the data: a literal (literal8 for BINARY
/// data holding NUL), or NIL for a section that does not exist.
fn write_partial(
    wire: &mut crate::proto::wire::Wire,
    data: Option<&[u8]>,
    partial: Option<(u32, NonZeroU32)>,
    binary: bool,
) {
    let data = match (data, partial) {
        (Some(data), Some((origin, length))) => {
            wire.fmt(format_args!("<{origin}>"));
            let start = (origin as usize).min(data.len());
            let end = start.saturating_add(length.get() as usize).min(data.len());
            Some(&data[start..end])
        }
        (data, _) => data,
    };
    wire.text(" ");
    match data {
        Some(data) => wire.literal(data, binary && data.contains(&0)),
        None => wire.text("NIL"),
    }
}

/// The items a FETCH asks for, macros expanded (RFC 9051 §6.4.5).
fn items_from(items: MacroOrMessageDataItemNames<'static>) -> Result<Vec<Item>, &'static str> {
    let names = match items {
        MacroOrMessageDataItemNames::Macro(Macro::Fast) => {
            return Ok(vec![Item::Flags, Item::InternalDate, Item::Size]);
        }
        MacroOrMessageDataItemNames::Macro(Macro::All) => {
            return Ok(vec![Item::Flags, Item::InternalDate, Item::Size, Item::Envelope]);
        }
        MacroOrMessageDataItemNames::Macro(Macro::Full) => {
            return Ok(vec![Item::Flags, Item::InternalDate, Item::Size, Item::Envelope, Item::Structure(false)]);
        }
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
        MacroOrMessageDataItemNames::Macro(_) => return Err("Unknown FETCH macro"),
    };
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        let section = |section, peek, form| Item::Section { section, partial: None, peek, form };
        items.push(match name {
            MessageDataItemName::Uid => Item::Uid,
            MessageDataItemName::Flags => Item::Flags,
            MessageDataItemName::InternalDate => Item::InternalDate,
            MessageDataItemName::Rfc822Size => Item::Size,
            MessageDataItemName::Envelope => Item::Envelope,
            MessageDataItemName::Body => Item::Structure(false),
            MessageDataItemName::BodyStructure => Item::Structure(true),
            MessageDataItemName::BodyExt { section, partial, peek } => {
                Item::Section { section, partial, peek, form: Form::Body }
            }
            MessageDataItemName::Rfc822 => section(None, false, Form::Rfc822),
            MessageDataItemName::Rfc822Header => section(Some(Section::Header(None)), true, Form::Rfc822Header),
            MessageDataItemName::Rfc822Text => section(Some(Section::Text(None)), false, Form::Rfc822Text),
            MessageDataItemName::Binary { section, partial, peek } => Item::Binary { part: section, partial, peek },
            MessageDataItemName::BinarySize { section } => Item::BinarySize { part: section },
            MessageDataItemName::ModSeq => return Err("MODSEQ needs CONDSTORE, which is not supported"),
        });
    }
    Ok(items)
}
