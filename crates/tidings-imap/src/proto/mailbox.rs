//! The selected mailbox as this session's client knows it: messages in sequence-number order,
//! with the changes learnt from the store but not yet reported (RFC 9051 §2.3.1.2, §5.2, §7.5.1).
//!
//! A message expunged elsewhere keeps its sequence number until the session may report the
//! EXPUNGE (never during FETCH, STORE or SEARCH); new messages are appended; flag changes are
//! marked and reported as untagged FETCH responses.

use std::collections::BTreeSet;

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use tidings_core::{Flags, MailboxSnapshot, MailboxSync, MessageMeta};

/// One message of the selected mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) meta: MessageMeta,
    /// Gone from the store; its EXPUNGE is still to be sent.
    pub(crate) expunged: bool,
    /// Its flags changed since the client last heard of them.
    pub(crate) flags_changed: bool,
}

/// Why a sequence set names no valid messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetError {
    /// A message sequence number beyond the mailbox's count (RFC 9051 §9 `seq-number`).
    OutOfRange,
    /// Message sequence numbers in an empty mailbox.
    Empty,
}

/// What the client has been told, and what is still to tell it.
#[derive(Debug)]
pub(crate) struct Selected {
    /// Canonical name.
    pub(crate) name: String,
    /// EXAMINE, or a mailbox the account may not change.
    pub(crate) read_only: bool,
    pub(crate) uidvalidity: u32,
    pub(crate) uidnext: u32,
    /// Highest modification sequence of the last snapshot or sync: what the next sync starts
    /// from. Never raised from STORE results, which would skip others' changes in between.
    pub(crate) highest_modseq: u64,
    /// Ascending UID, so sequence number `n` is index `n - 1`.
    pub(crate) messages: Vec<Slot>,
    /// The EXISTS count the client last heard.
    pub(crate) exists_reported: usize,
    /// Keywords the client has been told of in FLAGS.
    pub(crate) keywords: BTreeSet<String>,
    /// A keyword not in `keywords` came: a new FLAGS response is due.
    pub(crate) keywords_changed: bool,
}

impl Selected {
    /// The mailbox as SELECT finds it; everything in it counts as reported once SELECT answers.
    pub(crate) fn new(name: String, read_only: bool, snapshot: MailboxSnapshot) -> Selected {
        let MailboxSnapshot { status, mut messages } = snapshot;
        // The store promises ascending UIDs; a sequence-number mapping needs them.
        messages.sort_by_key(|m| m.uid);
        messages.dedup_by_key(|m| m.uid);
        let mut keywords = BTreeSet::new();
        for m in &messages {
            keywords.extend(m.flags.keywords().map(str::to_owned));
        }
        let uidnext = status.uidnext.max(messages.last().map_or(1, |m| m.uid.saturating_add(1)));
        Selected {
            name,
            read_only,
            uidvalidity: status.uidvalidity,
            uidnext,
            highest_modseq: status.highest_modseq,
            exists_reported: messages.len(),
            messages: messages.into_iter().map(|meta| Slot { meta, expunged: false, flags_changed: false }).collect(),
            keywords,
            keywords_changed: false,
        }
    }

    /// Messages, counting those expunged but not yet reported (the EXISTS the client knows).
    pub(crate) fn count(&self) -> usize {
        self.messages.len()
    }

    /// The index of the message with this UID, if the session knows it.
    pub(crate) fn index_of(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |s| s.meta.uid).ok()
    }

    /// The messages a sequence set names, as ascending indices without repeats, never more
    /// than the mailbox holds whatever the set's size (RFC 9051 §6.4.8: UIDs that do not exist
    /// are ignored; a UID range with `*` includes the highest UID).
    pub(crate) fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, SetError> {
        if uid {
            return Ok(self.resolve_uids(set));
        }
        let count = u32::try_from(self.messages.len()).unwrap_or(u32::MAX);
        if count == 0 {
            return Err(SetError::Empty);
        }
        let mut ranges = Vec::with_capacity(set.0.as_ref().len());
        for sequence in set.0.as_ref() {
            let (a, b) = bounds(sequence, count);
            if a.max(b) > count {
                return Err(SetError::OutOfRange);
            }
            ranges.push((a.min(b), a.max(b)));
        }
        let mut indices = Vec::new();
        for (low, high) in merge(ranges) {
            indices.extend((low as usize - 1)..(high as usize));
        }
        Ok(indices)
    }

    fn resolve_uids(&self, set: &SequenceSet) -> Vec<usize> {
        let Some(last) = self.messages.last() else {
            return Vec::new();
        };
        let highest = last.meta.uid;
        let ranges = set.0.as_ref().iter().map(|sequence| {
            let (a, b) = bounds(sequence, highest);
            (a.min(b), a.max(b))
        });
        let mut indices = Vec::new();
        for (low, high) in merge(ranges.collect()) {
            let start = self.messages.partition_point(|s| s.meta.uid < low);
            let end = self.messages.partition_point(|s| s.meta.uid <= high);
            indices.extend(start..end);
        }
        indices
    }

    /// Takes in what changed since `highest_modseq`: flags of known messages (marked to be
    /// reported if they differ), new messages (appended), and messages gone (marked expunged).
    pub(crate) fn apply_sync(&mut self, sync: MailboxSync) {
        let MailboxSync { uidnext, highest_modseq, mut uids, changed, .. } = sync;
        uids.sort_unstable();
        uids.dedup();
        for slot in &mut self.messages {
            if !slot.expunged && uids.binary_search(&slot.meta.uid).is_err() {
                slot.expunged = true;
            }
        }
        let highest_known = self.messages.last().map_or(0, |s| s.meta.uid);
        let mut added = Vec::new();
        for meta in changed {
            match self.index_of(meta.uid) {
                Some(index) => self.update(index, meta),
                None if meta.uid > highest_known && uids.binary_search(&meta.uid).is_ok() => added.push(meta),
                None => {}
            }
        }
        added.sort_by_key(|m| m.uid);
        added.dedup_by_key(|m| m.uid);
        // New messages the store listed without their metadata still get a sequence number
        // (and no flags) so that numbering stays right; their flags come with a later sync.
        let unlisted: Vec<MessageMeta> = uids
            .iter()
            .filter(|&&uid| uid > highest_known && added.binary_search_by_key(&uid, |m| m.uid).is_err())
            .map(|&uid| MessageMeta { uid, flags: Flags::new(), modseq: 0, size: 0, internal_date: 0 })
            .collect();
        if !unlisted.is_empty() {
            added.extend(unlisted);
            added.sort_by_key(|m| m.uid);
        }
        for meta in added {
            self.note_keywords(&meta.flags);
            self.messages.push(Slot { meta, expunged: false, flags_changed: false });
        }
        self.uidnext = self.uidnext.max(uidnext);
        if let Some(last) = self.messages.last() {
            self.uidnext = self.uidnext.max(last.meta.uid.saturating_add(1));
        }
        self.highest_modseq = self.highest_modseq.max(highest_modseq);
    }

    /// New metadata for the message at `index` (from a sync, a STORE, or a fetch); its flags
    /// are marked to be reported when they changed.
    pub(crate) fn update(&mut self, index: usize, meta: MessageMeta) {
        self.note_keywords(&meta.flags);
        let slot = &mut self.messages[index];
        if slot.expunged || slot.meta.uid != meta.uid {
            return;
        }
        if slot.meta.flags != meta.flags {
            slot.flags_changed = true;
        }
        slot.meta = meta;
    }

    fn note_keywords(&mut self, flags: &Flags) {
        for keyword in flags.keywords() {
            if !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword)) {
                self.keywords.insert(keyword.to_owned());
                self.keywords_changed = true;
            }
        }
    }

    /// Removes the expunged messages, highest index first, giving each one's sequence number
    /// as it is at the time of its removal (the numbers EXPUNGE responses carry, in the order
    /// they must be sent).
    pub(crate) fn remove_expunged(&mut self) -> Vec<u32> {
        // Removing the highest first leaves the lower numbers as they were, so each EXPUNGE's
        // number is the message's index + 1 now.
        let numbers: Vec<u32> = (0..self.messages.len())
            .rev()
            .filter(|&index| self.messages[index].expunged)
            .map(|index| index as u32 + 1)
            .collect();
        self.messages.retain(|slot| !slot.expunged);
        self.exists_reported = self.exists_reported.saturating_sub(numbers.len());
        numbers
    }
}

/// The numbers a sequence covers, `*` standing for `largest`.
fn bounds(sequence: &Sequence, largest: u32) -> (u32, u32) {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    match sequence {
        Sequence::Single(v) => (value(v), value(v)),
        Sequence::Range(a, b) => (value(a), value(b)),
    }
}

/// Sorted, disjoint ranges covering the same numbers.
fn merge(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len().min(1024));
    for (low, high) in ranges {
        match merged.last_mut() {
            Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::core::Vec1;
    use std::num::NonZeroU32;
    use tidings_core::MailboxStatus;

    fn meta(uid: u32) -> MessageMeta {
        MessageMeta { uid, flags: Flags::new(), modseq: 1, size: 10, internal_date: 0 }
    }

    fn mailbox(uids: &[u32]) -> Selected {
        let status = MailboxStatus { messages: uids.len() as u32, uidnext: 100, uidvalidity: 7, ..Default::default() };
        Selected::new(
            "INBOX".into(),
            false,
            MailboxSnapshot { status, messages: uids.iter().map(|&u| meta(u)).collect() },
        )
    }

    fn set(ranges: &[(u32, Option<u32>)]) -> SequenceSet {
        let v = |n: u32| if n == 0 { SeqOrUid::Asterisk } else { SeqOrUid::Value(NonZeroU32::new(n).unwrap()) };
        let sequences: Vec<Sequence> = ranges
            .iter()
            .map(|&(a, b)| match b {
                None => Sequence::Single(v(a)),
                Some(b) => Sequence::Range(v(a), v(b)),
            })
            .collect();
        SequenceSet(Vec1::try_from(sequences).unwrap())
    }

    #[test]
    fn sequence_numbers_resolve_in_order_without_repeats() {
        let mailbox = mailbox(&[10, 20, 30, 40]);
        assert_eq!(mailbox.resolve(&set(&[(3, Some(0)), (1, None), (2, Some(1))]), false), Ok(vec![0, 1, 2, 3]));
        assert_eq!(mailbox.resolve(&set(&[(5, None)]), false), Err(SetError::OutOfRange));
        assert_eq!(self::mailbox(&[]).resolve(&set(&[(1, Some(0))]), false), Err(SetError::Empty));
    }

    #[test]
    fn uids_that_do_not_exist_are_ignored_and_star_is_the_highest() {
        let mailbox = mailbox(&[10, 20, 30, 40]);
        assert_eq!(mailbox.resolve(&set(&[(15, Some(35))]), true), Ok(vec![1, 2]));
        assert_eq!(mailbox.resolve(&set(&[(500, Some(0))]), true), Ok(vec![3]));
        assert_eq!(mailbox.resolve(&set(&[(1, Some(9)), (41, None)]), true), Ok(vec![]));
        assert_eq!(self::mailbox(&[]).resolve(&set(&[(1, Some(0))]), true), Ok(vec![]));
    }

    #[test]
    fn a_million_ranges_resolve_to_at_most_the_mailbox() {
        let mailbox = mailbox(&[10, 20]);
        let ranges: Vec<(u32, Option<u32>)> = (0..1_000_000u32).map(|i| (i * 10 + 1, Some(i * 10 + 5))).collect();
        let set = set(&ranges);
        assert_eq!(mailbox.resolve(&set, true), Ok(vec![]));
        let everything = self::set(&[(1, Some(u32::MAX))]);
        assert_eq!(mailbox.resolve(&everything, true), Ok(vec![0, 1]));
    }

    #[test]
    fn a_sync_marks_expunged_appends_new_and_flags_changes() {
        let mut mailbox = mailbox(&[10, 20, 30]);
        let mut seen = meta(20);
        seen.flags.set(tidings_core::SystemFlag::Seen, true);
        mailbox.apply_sync(MailboxSync {
            uidvalidity: 7,
            uidnext: 51,
            highest_modseq: 9,
            uids: vec![20, 30, 50],
            changed: vec![seen, meta(50)],
        });
        assert_eq!(mailbox.count(), 4);
        assert!(mailbox.messages[0].expunged);
        assert!(mailbox.messages[1].flags_changed);
        assert_eq!(mailbox.messages[3].meta.uid, 50);
        assert_eq!(mailbox.remove_expunged(), vec![1]);
        assert_eq!(mailbox.count(), 3);
        assert_eq!(mailbox.highest_modseq, 9);
    }
}
