//! Authenticated-state commands on mailboxes (RFC 9051 §6.3): SELECT, EXAMINE, CREATE, DELETE,
//! RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (with LIST-EXTENDED, RFC 5258; LIST-STATUS, RFC 5819;
//! SPECIAL-USE, RFC 6154; CHILDREN, RFC 3348), LSUB, STATUS (STATUS=SIZE, RFC 8438), APPEND
//! (APPENDUID, RFC 4315).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;
use tidings_core::{INBOX, MAILBOX_DELIMITER, MailboxInfo, MailboxSnapshot, MailboxStatus, SystemFlag, superior_names};

use super::{Pending, Session, State};
use crate::proto::extended::{ListCommand, StatusItem};
use crate::proto::mailbox::Selected;
use crate::proto::names::{self, NameError, Pattern};
use crate::proto::wire::Status;
use crate::proto::{MailboxError, Request, Response};

/// Most mailbox patterns one LIST may give (RFC 5258 allows a list); each is matched against
/// every mailbox name.
const LIST_PATTERNS_MAX: usize = 100;

/// SELECT or EXAMINE waiting for the snapshot.
#[derive(Debug)]
pub(crate) struct SelectJob {
    tag: String,
    name: String,
    read_only: bool,
}

/// STATUS waiting for the mailbox list (or, for DELETED, the snapshot).
#[derive(Debug)]
pub(crate) struct StatusJob {
    tag: String,
    name: String,
    items: Vec<StatusItem>,
}

/// LIST or LSUB waiting for the mailbox list.
#[derive(Debug)]
pub(crate) struct ListJob {
    tag: String,
    command: ListCommand,
    patterns: Vec<Pattern>,
}

/// One `* LIST` (or LSUB) response to write, and the status for its LIST-STATUS response.
#[derive(Debug)]
pub(crate) struct ListEntry {
    name: String,
    attributes: Vec<String>,
    /// The name is listed only for RECURSIVEMATCH: it gets `("CHILDINFO" ("SUBSCRIBED"))`.
    child_info: bool,
    /// The existing mailbox's status, when RETURN (STATUS ...) asked for one.
    status: Option<MailboxStatus>,
}

/// LIST ... RETURN (STATUS (... DELETED ...)) writing its responses: the list only has the
/// status the store keeps per mailbox, so each mailbox's snapshot is read for its `\Deleted`
/// count, one mailbox at a time.
#[derive(Debug)]
pub(crate) struct ListStatusJob {
    tag: String,
    items: Vec<StatusItem>,
    /// Entries still to write; the first is the one whose snapshot was asked for.
    entries: VecDeque<ListEntry>,
}

/// CREATE, DELETE, RENAME, SUBSCRIBE or UNSUBSCRIBE waiting for the store.
#[derive(Debug)]
pub(crate) struct DoneJob {
    tag: String,
    command: &'static str,
    kind: DoneKind,
}

#[derive(Debug)]
enum DoneKind {
    Create,
    Delete(String),
    Rename { from: String, to: String },
    Subscribe,
}

/// APPEND waiting for the store.
#[derive(Debug)]
pub(crate) struct AppendJob {
    tag: String,
    name: String,
}

impl Session {
    /// Replies to a refused mailbox name.
    pub(crate) fn name_error(&mut self, tag: &str, error: NameError) {
        match error {
            NameError::Encoding if self.utf8_names() => self.reply_bad(Some(tag), "Mailbox name is not UTF-8"),
            NameError::Encoding => self.reply_bad(Some(tag), "Mailbox name is not valid modified UTF-7"),
            NameError::Invalid(error) => self.finish(tag, Status::No, Some("CANNOT"), &error.to_string(), true),
        }
    }

    /// Replies to a failed store operation; `target` marks the destination of APPEND, COPY
    /// or MOVE, where a missing mailbox is `TRYCREATE` (RFC 9051 §6.3.12).
    pub(crate) fn mailbox_error(&mut self, tag: &str, error: MailboxError, target: bool, expunges: bool) {
        let (code, text) = match error {
            MailboxError::NoSuchMailbox if target => ("TRYCREATE", Cow::Borrowed("Mailbox does not exist")),
            MailboxError::NoSuchMailbox => ("NONEXISTENT", Cow::Borrowed("Mailbox does not exist")),
            MailboxError::AlreadyExists => ("ALREADYEXISTS", Cow::Borrowed("Mailbox already exists")),
            MailboxError::HasChildren => ("HASCHILDREN", Cow::Borrowed("Mailbox has inferior mailboxes")),
            MailboxError::Forbidden(reason) | MailboxError::Invalid(reason) => {
                ("CANNOT", Cow::Owned(one_line(&reason)))
            }
            MailboxError::TryLater => ("UNAVAILABLE", Cow::Borrowed("Try again later")),
        };
        self.finish(tag, Status::No, Some(code), &text, expunges);
    }

    pub(super) fn select(&mut self, tag: &str, mailbox: &Mailbox<'_>, read_only: bool) {
        let name = match names::mailbox(mailbox, self.utf8_names()) {
            Ok(name) => name,
            Err(error) => return self.name_error(tag, error),
        };
        // RFC 9051 §6.3.2: the selected mailbox is closed (without expunging) first, whatever
        // the outcome; IMAP4rev2 clients are told.
        if matches!(self.state, State::Selected(_)) {
            self.state = State::Authenticated;
            if self.rev2 {
                self.wire.untagged(format_args!("OK [CLOSED] Previous mailbox closed"));
            }
        }
        let job = SelectJob { tag: tag.to_owned(), name: name.clone(), read_only };
        self.request(Request::Select { mailbox: name }, Pending::Select(job));
    }

    pub(super) fn select_resolved(&mut self, job: SelectJob, response: Response) {
        let snapshot = match response {
            Response::Selected(Ok(snapshot)) => snapshot,
            Response::Selected(Err(error)) => return self.mailbox_error(&job.tag, error, false, true),
            other => return self.wrong_response(&job.tag, &other),
        };
        let selected = Selected::new(job.name, job.read_only, snapshot);
        let utf8 = self.utf8_names();
        let flags = flag_list(&selected.keywords);
        self.wire.untagged(format_args!("FLAGS ({flags})"));
        if selected.read_only {
            self.wire.untagged(format_args!("OK [PERMANENTFLAGS ()] No permanent flags permitted"));
        } else {
            self.wire.untagged(format_args!("OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"));
        }
        self.wire.untagged(format_args!("{} EXISTS", selected.count()));
        if !self.rev2 {
            self.wire.untagged(format_args!("0 RECENT"));
            let first_unseen = selected.messages.iter().position(|s| !s.meta.flags.has(SystemFlag::Seen));
            if let Some(index) = first_unseen {
                self.wire.untagged(format_args!("OK [UNSEEN {}] First unseen", index + 1));
            }
        }
        self.wire.untagged(format_args!("OK [UIDVALIDITY {}] UIDs valid", selected.uidvalidity));
        self.wire.untagged(format_args!("OK [UIDNEXT {}] Predicted next UID", selected.uidnext));
        // RFC 9051 §6.3.2: IMAP4rev2 clients get the mailbox's name as LIST gives it.
        if self.rev2 {
            self.wire.text("* LIST () \"/\" ");
            self.wire.astring(&names::encode(&selected.name, utf8), utf8);
            self.wire.end();
        }
        let (code, command) = if selected.read_only { ("READ-ONLY", "EXAMINE") } else { ("READ-WRITE", "SELECT") };
        self.state = State::Selected(selected);
        self.changed = false;
        self.wire.tagged(&job.tag, Status::Ok, Some(code), &format!("{command} completed"));
    }

    pub(super) fn create(&mut self, tag: &str, mailbox: &Mailbox<'_>) {
        let name = match names::mailbox(mailbox, self.utf8_names()) {
            Ok(name) => name,
            Err(error) => return self.name_error(tag, error),
        };
        let job = DoneJob { tag: tag.to_owned(), command: "CREATE", kind: DoneKind::Create };
        self.request(Request::Create { mailbox: name }, Pending::Done(job));
    }

    pub(super) fn delete(&mut self, tag: &str, mailbox: &Mailbox<'_>) {
        let name = match names::mailbox(mailbox, self.utf8_names()) {
            Ok(name) => name,
            Err(error) => return self.name_error(tag, error),
        };
        if name == INBOX {
            return self.finish(tag, Status::No, Some("CANNOT"), "INBOX cannot be deleted", true);
        }
        let job = DoneJob { tag: tag.to_owned(), command: "DELETE", kind: DoneKind::Delete(name.clone()) };
        self.request(Request::Delete { mailbox: name }, Pending::Done(job));
    }

    pub(super) fn rename(&mut self, tag: &str, from: &Mailbox<'_>, to: &Mailbox<'_>) {
        let utf8 = self.utf8_names();
        let (from, to) = match (names::mailbox(from, utf8), names::mailbox(to, utf8)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(error), _) | (_, Err(error)) => return self.name_error(tag, error),
        };
        let job = DoneJob {
            tag: tag.to_owned(),
            command: "RENAME",
            kind: DoneKind::Rename { from: from.clone(), to: to.clone() },
        };
        self.request(Request::Rename { from, to }, Pending::Done(job));
    }

    pub(super) fn subscribe(&mut self, tag: &str, mailbox: &Mailbox<'_>, subscribed: bool) {
        let name = match names::mailbox(mailbox, self.utf8_names()) {
            Ok(name) => name,
            Err(error) => return self.name_error(tag, error),
        };
        let command = if subscribed { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
        let job = DoneJob { tag: tag.to_owned(), command, kind: DoneKind::Subscribe };
        self.request(Request::Subscribe { mailbox: name, subscribed }, Pending::Done(job));
    }

    pub(super) fn done_resolved(&mut self, job: DoneJob, response: Response) {
        match response {
            Response::Done(Ok(())) => {}
            Response::Done(Err(error)) => return self.mailbox_error(&job.tag, error, false, true),
            other => return self.wrong_response(&job.tag, &other),
        }
        if let State::Selected(selected) = &mut self.state {
            match &job.kind {
                // Renaming INBOX leaves an empty INBOX behind (RFC 9051 §6.3.6): the selected
                // INBOX stays selected, and learns of its emptiness at the next sync.
                DoneKind::Rename { from, .. } if from == INBOX && selected.name == INBOX => self.changed = true,
                DoneKind::Rename { from, to } => {
                    if let Some(rest) = selected.name.strip_prefix(from.as_str())
                        && (rest.is_empty() || rest.starts_with(MAILBOX_DELIMITER))
                    {
                        selected.name = format!("{to}{rest}");
                    }
                }
                DoneKind::Delete(name) if *name == selected.name => {
                    self.state = State::Authenticated;
                    if self.rev2 {
                        self.wire.untagged(format_args!("OK [CLOSED] The selected mailbox is deleted"));
                    }
                }
                _ => {}
            }
        }
        self.finish(&job.tag, Status::Ok, None, &format!("{} completed", job.command), true);
    }

    pub(super) fn status(&mut self, tag: &str, mailbox: &Mailbox<'_>, item_names: &[StatusDataItemName]) {
        let name = match names::mailbox(mailbox, self.utf8_names()) {
            Ok(name) => name,
            Err(error) => return self.name_error(tag, error),
        };
        let mut items = Vec::with_capacity(item_names.len());
        for item in item_names {
            match StatusItem::from_codec(item) {
                Some(item) => items.push(item),
                None => return self.reply_bad(Some(tag), "DELETED-STORAGE is not supported"),
            }
        }
        let needs_flags = items.contains(&StatusItem::Deleted);
        let job = StatusJob { tag: tag.to_owned(), name: name.clone(), items };
        if needs_flags {
            self.request(Request::Select { mailbox: name }, Pending::Status(job));
        } else {
            self.request(Request::ListMailboxes, Pending::Status(job));
        }
    }

    pub(super) fn status_resolved(&mut self, job: StatusJob, response: Response) {
        let (status, deleted) = match response {
            Response::Mailboxes(Ok(list)) => match list.into_iter().find(|m| m.name == job.name) {
                Some(info) => (info.status, 0),
                None => return self.mailbox_error(&job.tag, MailboxError::NoSuchMailbox, false, true),
            },
            Response::Selected(Ok(MailboxSnapshot { status, messages })) => {
                let deleted = messages.iter().filter(|m| m.flags.has(SystemFlag::Deleted)).count() as u32;
                (status, deleted)
            }
            Response::Mailboxes(Err(error)) | Response::Selected(Err(error)) => {
                return self.mailbox_error(&job.tag, error, false, true);
            }
            other => return self.wrong_response(&job.tag, &other),
        };
        self.write_status(&job.name, &job.items, &status, deleted);
        self.finish(&job.tag, Status::Ok, None, "STATUS completed", true);
    }

    /// `* STATUS <name> (<item> <value> ...)`, items in the order asked.
    fn write_status(&mut self, name: &str, items: &[StatusItem], status: &MailboxStatus, deleted: u32) {
        let utf8 = self.utf8_names();
        let values: Vec<String> = items
            .iter()
            .map(|&item| {
                let value = match item {
                    StatusItem::Messages => u64::from(status.messages),
                    StatusItem::UidNext => u64::from(status.uidnext),
                    StatusItem::UidValidity => u64::from(status.uidvalidity),
                    StatusItem::Unseen => u64::from(status.unseen),
                    StatusItem::Deleted => u64::from(deleted),
                    StatusItem::Size => status.size,
                    StatusItem::Recent => 0,
                    StatusItem::HighestModSeq => status.highest_modseq,
                };
                format!("{} {value}", item.name())
            })
            .collect();
        self.wire.text("* STATUS ");
        self.wire.astring(&names::encode(name, utf8), utf8);
        self.wire.fmt(format_args!(" ({})", values.join(" ")));
        self.wire.end();
    }

    /// LIST or LSUB in their RFC 3501 form.
    pub(super) fn list_plain(&mut self, tag: &str, reference: &Mailbox<'_>, pattern: &ListMailbox<'_>, lsub: bool) {
        let command = ListCommand {
            lsub,
            reference: names::raw(reference),
            patterns: vec![names::list_raw(pattern)],
            ..ListCommand::default()
        };
        self.list(tag, command);
    }

    pub(super) fn list(&mut self, tag: &str, command: ListCommand) {
        if command.patterns.len() > LIST_PATTERNS_MAX {
            return self.reply_bad(Some(tag), "Too many LIST patterns");
        }
        let utf8 = self.utf8_names();
        let reference = match names::decode(&command.reference, utf8) {
            Ok(reference) => reference,
            Err(error) => return self.name_error(tag, error),
        };
        let mut patterns = Vec::with_capacity(command.patterns.len());
        for raw in &command.patterns {
            match names::decode(raw, utf8) {
                Ok(pattern) => patterns.push(Pattern::new(&reference, &pattern)),
                Err(error) => return self.name_error(tag, error),
            }
        }
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the reference's root.
        if command.patterns.len() == 1 && command.patterns[0].is_empty() {
            let verb = if command.lsub { "LSUB" } else { "LIST" };
            self.wire.untagged(format_args!("{verb} (\\Noselect) \"/\" \"\""));
            return self.finish(tag, Status::Ok, None, &format!("{verb} completed"), true);
        }
        let job = ListJob { tag: tag.to_owned(), command, patterns };
        self.request(Request::ListMailboxes, Pending::List(job));
    }

    pub(super) fn list_resolved(&mut self, job: ListJob, response: Response) {
        let mailboxes = match response {
            Response::Mailboxes(Ok(mailboxes)) => mailboxes,
            Response::Mailboxes(Err(error)) => return self.mailbox_error(&job.tag, error, false, true),
            other => return self.wrong_response(&job.tag, &other),
        };
        let tree = Tree::new(mailboxes);
        let command = &job.command;
        let matches = |name: &str| job.patterns.iter().any(|p| p.matches(name));
        let percent = job.patterns.iter().any(Pattern::ends_with_percent);
        let verb = if command.lsub { "LSUB" } else { "LIST" };
        let nonexistent = if self.rev2 || command.extended { "\\NonExistent" } else { "\\Noselect" };
        let mut entries = Vec::new();
        for name in tree.nodes.iter() {
            let info = tree.existing.get(name.as_str());
            let subscribed = info.is_some_and(|i| i.subscribed);
            let special_use = info.and_then(|i| i.special_use.as_deref());
            // Whether the name is selected by the options, or reported only because a
            // descendant is (RECURSIVEMATCH's CHILDINFO, or LSUB's parent of `%`).
            let (listed, child_info) = if command.lsub {
                let parent = percent && !subscribed && tree.descendants(name).any(|d| tree.subscribed(d));
                (subscribed || parent, false)
            } else if command.select_subscribed {
                let child = command.recursive_match && tree.descendants(name).any(|d| tree.subscribed(d));
                (subscribed, child && !subscribed)
            } else if command.select_special_use {
                (special_use.is_some(), false)
            } else {
                (true, false)
            };
            if !(listed || child_info) || !matches(name) {
                continue;
            }
            let mut attributes: Vec<&str> = Vec::new();
            if command.lsub {
                if !subscribed {
                    attributes.push("\\Noselect");
                }
            } else {
                if info.is_none() {
                    attributes.push(nonexistent);
                }
                attributes.push(if tree.has_children(name) { "\\HasChildren" } else { "\\HasNoChildren" });
                if subscribed && command.return_subscribed {
                    attributes.push("\\Subscribed");
                }
                if let Some(special_use) = special_use
                    && special_use.starts_with('\\')
                    && special_use[1..].bytes().all(crate::proto::wire::is_astring_char)
                {
                    attributes.push(special_use);
                }
            }
            entries.push(ListEntry {
                name: name.clone(),
                attributes: attributes.into_iter().map(str::to_owned).collect(),
                child_info: child_info && !listed,
                status: command.return_status.as_ref().and(info).map(|info| info.status.clone()),
            });
        }
        match command.return_status.clone() {
            // RFC 5819 §2: the STATUS responses are those STATUS would give, DELETED too.
            Some(items) if items.contains(&StatusItem::Deleted) => {
                let job = ListStatusJob { tag: job.tag, items, entries: entries.into() };
                self.list_status_continue(job);
            }
            items => {
                for entry in &entries {
                    self.write_list_entry(verb, entry);
                    if let (Some(items), Some(status)) = (&items, &entry.status) {
                        self.write_status(&entry.name, items, status, 0);
                    }
                }
                self.finish(&job.tag, Status::Ok, None, &format!("{verb} completed"), true);
            }
        }
    }

    /// `* LIST (<attributes>) "/" <name>` (or LSUB), with CHILDINFO when the entry has it.
    fn write_list_entry(&mut self, verb: &str, entry: &ListEntry) {
        let utf8 = self.utf8_names();
        self.wire.fmt(format_args!("* {verb} ({}) \"/\" ", entry.attributes.join(" ")));
        self.wire.astring(&names::encode(&entry.name, utf8), utf8);
        if entry.child_info {
            self.wire.text(" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
        }
        self.wire.end();
    }

    /// Writes the entries of a LIST-STATUS with DELETED up to the next existing mailbox, whose
    /// snapshot it asks for; finishes when none is left.
    fn list_status_continue(&mut self, mut job: ListStatusJob) {
        while let Some(entry) = job.entries.front() {
            if entry.status.is_some() {
                let mailbox = entry.name.clone();
                self.request(Request::Select { mailbox }, Pending::ListStatus(job));
                return;
            }
            if let Some(entry) = job.entries.pop_front() {
                self.write_list_entry("LIST", &entry);
            }
        }
        self.finish(&job.tag, Status::Ok, None, "LIST completed", true);
    }

    pub(super) fn list_status_resolved(&mut self, mut job: ListStatusJob, response: Response) {
        let Some(entry) = job.entries.pop_front() else {
            debug_assert!(false, "a LIST-STATUS snapshot with no entry waiting for it");
            return self.finish(&job.tag, Status::Ok, None, "LIST completed", true);
        };
        self.write_list_entry("LIST", &entry);
        match response {
            Response::Selected(Ok(MailboxSnapshot { status, messages })) => {
                let deleted = messages.iter().filter(|m| m.flags.has(SystemFlag::Deleted)).count() as u32;
                self.write_status(&entry.name, &job.items, &status, deleted);
            }
            // Gone since the list was read: listed without a status (RFC 5819 §2 lets the
            // server leave out a STATUS it cannot give).
            Response::Selected(Err(_)) => {}
            other => return self.wrong_response(&job.tag, &other),
        }
        self.list_status_continue(job);
    }

    pub(super) fn append(
        &mut self,
        tag: &str,
        mailbox: &Mailbox<'_>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) {
        let name = match names::mailbox(mailbox, self.utf8_names()) {
            Ok(name) => name,
            Err(error) => return self.name_error(tag, error),
        };
        let flags = match flags_from(&flags) {
            Ok(flags) => flags,
            Err(text) => return self.reply_bad(Some(tag), &text),
        };
        let internal_date = date.map(|date| date.as_ref().timestamp());
        let message = match message {
            LiteralOrLiteral8::Literal(literal) => literal.into_inner().into_owned(),
            LiteralOrLiteral8::Literal8(literal) => literal.data.into_owned(),
        };
        // Stored messages have CRLF line ends and no NUL (ARCHITECTURE.md), which POP3's
        // byte-stuffing relies on; RFC 3516 §4.4 answers binary content a store cannot keep
        // with UNKNOWN-CTE.
        if message.contains(&0) {
            return self.finish(
                tag,
                Status::No,
                Some("UNKNOWN-CTE"),
                "Messages with NUL octets cannot be stored",
                true,
            );
        }
        let message = crlf_line_ends(message);
        let job = AppendJob { tag: tag.to_owned(), name: name.clone() };
        self.request(Request::Append { mailbox: name, flags, internal_date, message }, Pending::Append(job));
    }

    pub(super) fn append_resolved(&mut self, job: AppendJob, response: Response) {
        let (uidvalidity, uid) = match response {
            Response::Appended(Ok(appended)) => appended,
            Response::Appended(Err(error)) => return self.mailbox_error(&job.tag, error, true, true),
            other => return self.wrong_response(&job.tag, &other),
        };
        // RFC 9051 §6.3.12: a client that appends to its selected mailbox hears of the new
        // message; the next command syncs.
        if let State::Selected(selected) = &self.state
            && selected.name == job.name
        {
            self.changed = true;
        }
        self.finish(&job.tag, Status::Ok, Some(&format!("APPENDUID {uidvalidity} {uid}")), "APPEND completed", true);
    }

    /// A response of the wrong kind for the request (a driver bug): a temporary failure.
    pub(crate) fn wrong_response(&mut self, tag: &str, response: &Response) {
        debug_assert!(false, "request answered with {response:?}");
        self.mailbox_error(tag, MailboxError::TryLater, false, false);
    }
}

/// Flags from a client's flag list (APPEND, STORE). `\Recent` is ignored (it is not stored);
/// other unknown system flags and invalid keywords are refused.
pub(crate) fn flags_from(flags: &[Flag<'_>]) -> Result<tidings_core::Flags, String> {
    let mut result = tidings_core::Flags::new();
    for flag in flags {
        match flag {
            Flag::Seen => result.set(SystemFlag::Seen, true),
            Flag::Answered => result.set(SystemFlag::Answered, true),
            Flag::Flagged => result.set(SystemFlag::Flagged, true),
            Flag::Deleted => result.set(SystemFlag::Deleted, true),
            Flag::Draft => result.set(SystemFlag::Draft, true),
            Flag::Keyword(atom) => result.add_keyword(atom.as_ref()).map_err(|e| format!("Invalid flag: {e}"))?,
            Flag::Extension(_) if flag.to_string().eq_ignore_ascii_case("\\Recent") => {}
            Flag::Extension(_) => return Err(format!("Unknown system flag {}", flag)),
        }
    }
    Ok(result)
}

/// The message with every bare CR and bare LF made CRLF (clients that write their own line
/// ends); unchanged, without a copy, when it has none.
fn crlf_line_ends(message: Vec<u8>) -> Vec<u8> {
    let bare = message.iter().enumerate().any(|(i, &b)| match b {
        b'\n' => i == 0 || message[i - 1] != b'\r',
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        _ => false,
    });
    if !bare {
        return message;
    }
    let mut fixed = Vec::with_capacity(message.len() + message.len() / 32);
    for (i, &b) in message.iter().enumerate() {
        match b {
            b'\r' if message.get(i + 1) == Some(&b'\n') => fixed.push(b'\r'),
            b'\r' => fixed.extend_from_slice(b"\r\n"),
            b'\n' if i > 0 && message[i - 1] == b'\r' => fixed.push(b'\n'),
            b'\n' => fixed.extend_from_slice(b"\r\n"),
            _ => fixed.push(b),
        }
    }
    fixed
}

/// The flag list of FLAGS and PERMANENTFLAGS: the system flags and the keywords in use.
pub(crate) fn flag_list(keywords: &BTreeSet<String>) -> String {
    let mut list: Vec<&str> = SystemFlag::ALL.iter().map(|f| f.imap_name()).collect();
    list.extend(keywords.iter().map(String::as_str));
    list.join(" ")
}

/// Text with CR and LF (and other controls) made spaces, for a response line.
pub(crate) fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The hierarchy of an account's mailboxes: every existing name and every name superior to
/// one, sorted with INBOX first.
struct Tree {
    existing: BTreeMap<String, MailboxInfo>,
    nodes: Vec<String>,
}

impl Tree {
    fn new(mailboxes: Vec<MailboxInfo>) -> Tree {
        let existing: BTreeMap<String, MailboxInfo> = mailboxes.into_iter().map(|m| (m.name.clone(), m)).collect();
        let mut nodes: BTreeSet<String> = BTreeSet::new();
        for name in existing.keys() {
            nodes.insert(name.clone());
            nodes.extend(superior_names(name).map(str::to_owned));
        }
        let mut nodes: Vec<String> = nodes.into_iter().collect();
        nodes.sort_by_key(|name| (name != INBOX, name.clone()));
        Tree { existing, nodes }
    }

    /// Existing names below `name`.
    fn descendants<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("{name}{MAILBOX_DELIMITER}");
        self.existing.range(prefix.clone()..).map(|(k, _)| k.as_str()).take_while(move |k| k.starts_with(&prefix))
    }

    fn has_children(&self, name: &str) -> bool {
        self.descendants(name).next().is_some()
    }

    fn subscribed(&self, name: &str) -> bool {
        self.existing.get(name).is_some_and(|m| m.subscribed)
    }
}
