//! Selected-state commands other than FETCH and SEARCH (RFC 9051 §6.4): CHECK, CLOSE,
//! UNSELECT, EXPUNGE and UID EXPUNGE (RFC 4315), STORE, COPY (COPYUID, RFC 4315) and MOVE
//! (RFC 6851); and the reporting of the selected mailbox's changes (RFC 9051 §7.5.1).

use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;
use tidings_core::{FlagChange, SystemFlag};

use super::mailboxes::{flag_list, flags_from};
use super::{Pending, Session, State, Then};
use crate::proto::mailbox::{Selected, SetError};
use crate::proto::names;
use crate::proto::wire::Status;
use crate::proto::{CopyResult, MailboxError, Request, Response};

/// STORE waiting for the store.
#[derive(Debug)]
pub(crate) struct StoreJob {
    tag: String,
    uid: bool,
    silent: bool,
}

/// COPY or MOVE waiting for the store.
#[derive(Debug)]
pub(crate) struct CopyJob {
    tag: String,
    remove: bool,
    /// The destination is the selected mailbox.
    into_selected: bool,
}

/// EXPUNGE, UID EXPUNGE or CLOSE waiting for the store.
#[derive(Debug)]
pub(crate) struct ExpungeJob {
    tag: String,
    close: bool,
}

impl Session {
    /// Writes the changes of the selected mailbox the client has not heard of: with
    /// `expunges`, EXPUNGE for messages gone; then FLAGS when new keywords appeared, EXISTS when
    /// the count grew, and FETCH for changed flags. RFC 9051 §7.5.1 forbids EXPUNGE while
    /// answering FETCH, STORE or SEARCH, whose replies pass `false`.
    pub(crate) fn report_updates(&mut self, expunges: bool) {
        let State::Selected(selected) = &mut self.state else {
            return;
        };
        if expunges {
            for number in selected.remove_expunged() {
                self.wire.untagged(format_args!("{number} EXPUNGE"));
            }
        }
        self.announce_keywords();
        let State::Selected(selected) = &mut self.state else {
            return;
        };
        if selected.count() != selected.exists_reported {
            selected.exists_reported = selected.count();
            self.wire.untagged(format_args!("{} EXISTS", selected.count()));
        }
        for (index, slot) in selected.messages.iter_mut().enumerate() {
            if slot.flags_changed && !slot.expunged {
                slot.flags_changed = false;
                self.wire.untagged(format_args!(
                    "{} FETCH (UID {} FLAGS ({}))",
                    index + 1,
                    slot.meta.uid,
                    slot.meta.flags
                ));
            }
        }
    }

    /// FLAGS (and PERMANENTFLAGS) again when keywords new to the client appeared.
    pub(crate) fn announce_keywords(&mut self) {
        let State::Selected(selected) = &mut self.state else {
            return;
        };
        if !selected.keywords_changed {
            return;
        }
        selected.keywords_changed = false;
        let flags = flag_list(&selected.keywords);
        self.wire.untagged(format_args!("FLAGS ({flags})"));
        if !selected.read_only {
            self.wire.untagged(format_args!("OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"));
        }
    }

    /// The tagged reply ending a command, after the updates the command may carry.
    pub(crate) fn finish(&mut self, tag: &str, status: Status, code: Option<&str>, text: &str, expunges: bool) {
        self.report_updates(expunges);
        self.wire.tagged(tag, status, code, text);
    }

    pub(super) fn sync_resolved(&mut self, then: Then, response: Response) {
        match response {
            Response::Synced(Ok(sync)) => {
                if let State::Selected(selected) = &mut self.state {
                    // Another mailbox of that name (deleted and created again): none of the
                    // client's UIDs or sequence numbers mean anything any more.
                    if sync.uidvalidity != selected.uidvalidity {
                        self.wire.bye("The selected mailbox was replaced; select it again");
                        return;
                    }
                    selected.apply_sync(sync);
                }
            }
            Response::Synced(Err(MailboxError::NoSuchMailbox)) => {
                self.wire.bye("The selected mailbox no longer exists");
                return;
            }
            // The changes are learnt at a later sync; the command goes on with what is known.
            Response::Synced(Err(_)) => {}
            other => debug_assert!(false, "Sync answered with {other:?}"),
        }
        match then {
            Then::Command(command) => {
                self.report_updates(false);
                self.command(*command, true);
            }
            Then::Idle => self.report_updates(true),
        }
    }

    /// The selected mailbox; only called in the selected state.
    fn selected(&self) -> Option<&Selected> {
        match &self.state {
            State::Selected(selected) => Some(selected),
            _ => None,
        }
    }

    /// Replies BAD to a sequence set naming no valid messages.
    pub(crate) fn set_error(&mut self, tag: &str, error: SetError) {
        match error {
            SetError::OutOfRange => self.reply_bad(Some(tag), "Invalid message sequence number"),
            SetError::Empty => self.reply_bad(Some(tag), "No messages"),
        }
    }

    /// The UIDs of the messages a set names, leaving out those already expunged.
    pub(crate) fn uids_of(&self, set: &SequenceSet, uid: bool) -> Result<Vec<u32>, SetError> {
        let Some(selected) = self.selected() else {
            return Ok(Vec::new());
        };
        let indices = selected.resolve(set, uid)?;
        Ok(indices
            .into_iter()
            .filter(|&i| !selected.messages[i].expunged)
            .map(|i| selected.messages[i].meta.uid)
            .collect())
    }

    /// CHECK: nothing to do but report (the mailbox was synced before it ran).
    pub(super) fn check(&mut self, tag: &str) {
        self.finish(tag, Status::Ok, None, "CHECK completed", true);
    }

    pub(super) fn unselect(&mut self, tag: &str) {
        self.state = State::Authenticated;
        self.wire.tagged(tag, Status::Ok, None, "UNSELECT completed");
    }

    /// CLOSE: removes the `\Deleted` messages silently, unless read-only, and unselects.
    pub(super) fn close(&mut self, tag: &str) {
        let uids = self.deleted_uids(None);
        match (self.selected(), uids) {
            (Some(selected), Ok(uids)) if !selected.read_only && !uids.is_empty() => {
                let mailbox = selected.name.clone();
                let job = ExpungeJob { tag: tag.to_owned(), close: true };
                self.request(Request::Expunge { mailbox, uids }, Pending::Expunge(job));
            }
            _ => {
                self.state = State::Authenticated;
                self.wire.tagged(tag, Status::Ok, None, "CLOSE completed");
            }
        }
    }

    /// UIDs of the messages flagged `\Deleted`, within `set` when given (UID EXPUNGE).
    fn deleted_uids(&self, set: Option<&SequenceSet>) -> Result<Vec<u32>, SetError> {
        let Some(selected) = self.selected() else {
            return Ok(Vec::new());
        };
        let indices = match set {
            Some(set) => selected.resolve(set, true)?,
            None => (0..selected.count()).collect(),
        };
        Ok(indices
            .into_iter()
            .map(|i| &selected.messages[i])
            .filter(|s| !s.expunged && s.meta.flags.has(SystemFlag::Deleted))
            .map(|s| s.meta.uid)
            .collect())
    }

    pub(super) fn expunge(&mut self, tag: &str, set: Option<SequenceSet>) {
        let Some(selected) = self.selected() else {
            return;
        };
        if selected.read_only {
            return self.finish(tag, Status::No, Some("READ-ONLY"), "Mailbox is read-only", true);
        }
        let mailbox = selected.name.clone();
        let uids = match self.deleted_uids(set.as_ref()) {
            Ok(uids) => uids,
            Err(error) => return self.set_error(tag, error),
        };
        if uids.is_empty() {
            return self.finish(tag, Status::Ok, None, "EXPUNGE completed", true);
        }
        let job = ExpungeJob { tag: tag.to_owned(), close: false };
        self.request(Request::Expunge { mailbox, uids }, Pending::Expunge(job));
    }

    pub(super) fn expunge_resolved(&mut self, job: ExpungeJob, response: Response) {
        let result = match response {
            Response::Expunged(result) => result,
            other => {
                debug_assert!(false, "Expunge answered with {other:?}");
                Err(MailboxError::TryLater)
            }
        };
        if job.close {
            // CLOSE closes whatever happened (RFC 9051 §6.4.2).
            self.state = State::Authenticated;
            return match result {
                Ok(_) => self.wire.tagged(&job.tag, Status::Ok, None, "CLOSE completed"),
                Err(error) => self.mailbox_error(&job.tag, error, false, false),
            };
        }
        match result {
            Ok(removed) => {
                if let State::Selected(selected) = &mut self.state {
                    for uid in removed {
                        if let Some(index) = selected.index_of(uid) {
                            selected.messages[index].expunged = true;
                        }
                    }
                }
                self.finish(&job.tag, Status::Ok, None, "EXPUNGE completed", true);
            }
            Err(error) => self.mailbox_error(&job.tag, error, false, true),
        }
    }

    pub(super) fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: Vec<Flag<'static>>,
        uid: bool,
    ) {
        let Some(selected) = self.selected() else {
            return;
        };
        if selected.read_only {
            return self.finish(tag, Status::No, Some("READ-ONLY"), "Mailbox is read-only", false);
        }
        let mailbox = selected.name.clone();
        let uids = match self.uids_of(set, uid) {
            Ok(uids) => uids,
            Err(error) => return self.set_error(tag, error),
        };
        let flags = match flags_from(&flags) {
            Ok(flags) => flags,
            Err(text) => return self.reply_bad(Some(tag), &text),
        };
        if uids.is_empty() {
            return self.finish(tag, Status::Ok, None, "STORE completed", false);
        }
        let change = match kind {
            StoreType::Replace => FlagChange::Replace,
            StoreType::Add => FlagChange::Add,
            StoreType::Remove => FlagChange::Remove,
        };
        let job = StoreJob { tag: tag.to_owned(), uid, silent: response == StoreResponse::Silent };
        self.request(Request::Store { mailbox, uids, change, flags }, Pending::Store(job));
    }

    pub(super) fn store_resolved(&mut self, job: StoreJob, response: Response) {
        let metas = match response {
            Response::Stored(Ok(metas)) => metas,
            Response::Stored(Err(error)) => return self.mailbox_error(&job.tag, error, false, false),
            other => return self.wrong_response(&job.tag, &other),
        };
        let mut changed = Vec::new();
        if let State::Selected(selected) = &mut self.state {
            for meta in metas {
                if let Some(index) = selected.index_of(meta.uid) {
                    selected.update(index, meta);
                    changed.push(index);
                }
            }
        }
        self.announce_keywords();
        if let State::Selected(selected) = &mut self.state {
            for index in changed {
                let slot = &mut selected.messages[index];
                if slot.expunged {
                    continue;
                }
                // The reply reports the flags (unless .SILENT), so they are no news later.
                slot.flags_changed = false;
                if !job.silent {
                    let uid = if job.uid { format!(" UID {}", slot.meta.uid) } else { String::new() };
                    self.wire.untagged(format_args!("{} FETCH (FLAGS ({}){uid})", index + 1, slot.meta.flags));
                }
            }
        }
        self.finish(&job.tag, Status::Ok, None, "STORE completed", false);
    }

    pub(super) fn copy(&mut self, tag: &str, set: &SequenceSet, mailbox: &Mailbox<'_>, uid: bool, remove: bool) {
        let command = if remove { "MOVE" } else { "COPY" };
        let Some(selected) = self.selected() else {
            return;
        };
        if remove && selected.read_only {
            return self.finish(tag, Status::No, Some("READ-ONLY"), "Mailbox is read-only", true);
        }
        let from = selected.name.clone();
        let uids = match self.uids_of(set, uid) {
            Ok(uids) => uids,
            Err(error) => return self.set_error(tag, error),
        };
        let to = match names::mailbox(mailbox, self.utf8_names()) {
            Ok(to) => to,
            Err(error) => return self.name_error(tag, error),
        };
        if uids.is_empty() {
            return self.finish(tag, Status::Ok, None, &format!("{command} completed; no messages"), true);
        }
        let job = CopyJob { tag: tag.to_owned(), remove, into_selected: to == from };
        self.request(Request::Copy { from, to, uids, remove }, Pending::Copy(job));
    }

    pub(super) fn copy_resolved(&mut self, job: CopyJob, response: Response) {
        let CopyResult { uidvalidity, pairs } = match response {
            Response::Copied(Ok(result)) => result,
            Response::Copied(Err(error)) => return self.mailbox_error(&job.tag, error, true, true),
            other => return self.wrong_response(&job.tag, &other),
        };
        if job.into_selected {
            self.changed = true;
        }
        let code = (!pairs.is_empty()).then(|| {
            let sources = uid_set(pairs.iter().map(|p| p.0));
            let destinations = uid_set(pairs.iter().map(|p| p.1));
            format!("COPYUID {uidvalidity} {sources} {destinations}")
        });
        if !job.remove {
            return self.finish(&job.tag, Status::Ok, code.as_deref(), "COPY completed", true);
        }
        // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
        if let Some(code) = &code {
            self.wire.untagged(format_args!("OK [{code}] Moved"));
        }
        if let State::Selected(selected) = &mut self.state {
            for (source, _) in &pairs {
                if let Some(index) = selected.index_of(*source) {
                    selected.messages[index].expunged = true;
                }
            }
        }
        self.finish(&job.tag, Status::Ok, None, "MOVE completed", true);
    }
}

/// A UID set in the given order, consecutive runs as ranges (RFC 4315 `uid-set`).
pub(crate) fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let push = |out: &mut String, (start, end): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
    };
    for uid in uids {
        run = match run {
            Some((start, end)) if end.checked_add(1) == Some(uid) => Some((start, uid)),
            Some(done) => {
                push(&mut out, done);
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    if let Some(done) = run {
        push(&mut out, done);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_keep_order_and_compress_runs() {
        assert_eq!(uid_set([1, 2, 3, 7, 9, 10].into_iter()), "1:3,7,9:10");
        assert_eq!(uid_set([5, 4].into_iter()), "5,4");
        assert_eq!(uid_set(std::iter::empty()), "");
    }
}
