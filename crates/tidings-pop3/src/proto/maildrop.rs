//! The locked maildrop of a session in the TRANSACTION state: the listing loaded at login and the
//! messages marked deleted (RFC 1939 §5). Marks live only here until the UPDATE state.

use super::effect::MessageInfo;

/// Why a message number names no message that may be acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageError {
    /// Outside `1..=count` (RFC 1939 §5: numbers are 1-based and fixed for the session).
    NoSuchMessage,
    /// Marked deleted in this session (RFC 1939 §5: "may not refer to a deleted message").
    AlreadyDeleted,
}

/// The listing of a locked maildrop and this session's deletion marks.
#[derive(Debug)]
pub(crate) struct Maildrop {
    /// Message n is `messages[n - 1]`.
    messages: Vec<MessageInfo>,
    /// `deleted[n - 1]`: message n is marked deleted.
    deleted: Vec<bool>,
    /// Messages not marked deleted.
    live_count: usize,
    /// Octets of the messages not marked deleted.
    live_octets: u64,
}

impl Maildrop {
    pub(crate) fn new(messages: Vec<MessageInfo>) -> Maildrop {
        debug_assert!(
            messages.iter().all(|m| is_valid_unique_id(&m.unique_id)),
            "unique-ids must be 1 to 70 characters in 0x21..=0x7E (RFC 1939 §7)"
        );
        let live_octets = messages.iter().fold(0u64, |sum, message| sum.saturating_add(message.size));
        Maildrop { deleted: vec![false; messages.len()], live_count: messages.len(), live_octets, messages }
    }

    /// Messages not marked deleted.
    pub(crate) fn live_count(&self) -> usize {
        self.live_count
    }

    /// Octets of the messages not marked deleted (RFC 1939 §5 `STAT`).
    pub(crate) fn live_octets(&self) -> u64 {
        self.live_octets
    }

    /// Message `number` (1-based), if it exists and is not marked deleted.
    pub(crate) fn get(&self, number: u32) -> Result<&MessageInfo, MessageError> {
        let index = Self::index(number).ok_or(MessageError::NoSuchMessage)?;
        let message = self.messages.get(index).ok_or(MessageError::NoSuchMessage)?;
        if self.deleted[index] {
            return Err(MessageError::AlreadyDeleted);
        }
        Ok(message)
    }

    /// Marks message `number` deleted (RFC 1939 §5 `DELE`).
    pub(crate) fn delete(&mut self, number: u32) -> Result<(), MessageError> {
        let size = self.get(number)?.size;
        if let Some(index) = Self::index(number) {
            self.deleted[index] = true;
            self.live_count -= 1;
            self.live_octets = self.live_octets.saturating_sub(size);
        }
        Ok(())
    }

    /// Unmarks every message (RFC 1939 §5 `RSET`).
    pub(crate) fn reset(&mut self) {
        self.deleted.fill(false);
        self.live_count = self.messages.len();
        self.live_octets = self.messages.iter().fold(0u64, |sum, message| sum.saturating_add(message.size));
    }

    /// The messages not marked deleted, with their numbers, in order.
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, &MessageInfo)> {
        self.messages
            .iter()
            .zip(&self.deleted)
            .enumerate()
            .filter(|(_, (_, deleted))| !**deleted)
            .map(|(index, (message, _))| (index + 1, message))
    }

    /// UIDs of the messages marked deleted, in message-number order.
    pub(crate) fn marked_uids(&self) -> Vec<u32> {
        self.messages.iter().zip(&self.deleted).filter(|(_, deleted)| **deleted).map(|(m, _)| m.uid).collect()
    }

    fn index(number: u32) -> Option<usize> {
        usize::try_from(number).ok()?.checked_sub(1)
    }
}

/// A unique-id as RFC 1939 §7 allows: 1 to 70 characters in 0x21..=0x7E. The driver's listing
/// must hold only these, because they are written to the client as they are.
fn is_valid_unique_id(unique_id: &str) -> bool {
    (1..=70).contains(&unique_id.len()) && unique_id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maildrop() -> Maildrop {
        Maildrop::new(
            [(10, 100), (20, 200), (30, 300)]
                .into_iter()
                .map(|(uid, size)| MessageInfo { uid, size, unique_id: format!("u{uid}") })
                .collect(),
        )
    }

    #[test]
    fn numbers_are_one_based() {
        let maildrop = maildrop();
        assert_eq!(maildrop.get(1).map(|m| m.uid), Ok(10));
        assert_eq!(maildrop.get(3).map(|m| m.uid), Ok(30));
        assert_eq!(maildrop.get(0), Err(MessageError::NoSuchMessage));
        assert_eq!(maildrop.get(4), Err(MessageError::NoSuchMessage));
        assert_eq!(maildrop.get(u32::MAX), Err(MessageError::NoSuchMessage));
    }

    #[test]
    fn deleting_updates_counts_and_hides_the_message() {
        let mut maildrop = maildrop();
        assert_eq!(maildrop.delete(2), Ok(()));
        assert_eq!(maildrop.delete(2), Err(MessageError::AlreadyDeleted));
        assert_eq!((maildrop.live_count(), maildrop.live_octets()), (2, 400));
        assert_eq!(maildrop.live().map(|(n, _)| n).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(maildrop.marked_uids(), [20]);
        maildrop.reset();
        assert_eq!((maildrop.live_count(), maildrop.live_octets()), (3, 600));
        assert!(maildrop.marked_uids().is_empty());
    }
}
