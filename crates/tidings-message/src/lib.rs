//! MIME structure of stored messages for IMAP (being written).
