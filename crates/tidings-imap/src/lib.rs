//! IMAP for tidings (being written).
