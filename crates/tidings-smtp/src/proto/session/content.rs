//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030): receiving the message, checking it, and handing it
//! over for delivery.

use super::{Pending, Phase, Session};
use crate::proto::data::{DataDecoder, DataError, received_field_count};
use crate::proto::transaction::protocol_name;
use crate::proto::{DeliveryVerdict, Request, Trace, Transaction};

/// Most decimal digits accepted in a BDAT chunk size (fits a `u64`).
const CHUNK_SIZE_DIGITS_MAX: usize = 19;

impl Session {
    pub(super) fn data(&mut self, args: &str) {
        let Some(transaction) = &self.transaction else {
            self.reply(503, "5.5.1", "Need MAIL command first");
            return;
        };
        let (chunked, no_recipients) = (transaction.chunks.is_some(), transaction.recipients.is_empty());
        if !args.trim().is_empty() {
            self.reply(501, "5.5.4", "Syntax: DATA");
        } else if chunked {
            // RFC 3030 §2: DATA and BDAT cannot be mixed in one transaction.
            self.reply(503, "5.5.1", "DATA is not allowed after BDAT");
        } else if no_recipients {
            self.reply(554, "5.5.1", "No valid recipients");
        } else {
            self.write_reply(354, None, &["End data with <CR><LF>.<CR><LF>"]);
            let limits = &self.config.limits;
            self.phase = Phase::Data(DataDecoder::new(
                limits.message_bytes_max,
                limits.text_line_bytes_max,
                self.config.bare_line_ending,
            ));
        }
    }

    /// `BDAT size [LAST]`. The chunk's octets follow the command line and are consumed whatever
    /// happens, since the client sends them without waiting (RFC 3030 §2).
    pub(super) fn bdat(&mut self, args: &str) {
        let mut words = args.split_ascii_whitespace();
        let size = words
            .next()
            .filter(|digits| digits.len() <= CHUNK_SIZE_DIGITS_MAX && digits.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok());
        let last = match words.next() {
            None => Some(false),
            Some(word) if word.eq_ignore_ascii_case("LAST") => Some(true),
            Some(_) => None,
        };
        let (Some(size), Some(last), None) = (size, last, words.next()) else {
            // Without a valid size the chunk's end cannot be found, so the stream cannot be
            // resynchronised: say why and close.
            self.reply(501, "5.5.4", "Syntax: BDAT size [LAST]; closing the connection");
            self.enter_closed();
            return;
        };
        let extended = self.extended();
        let limits = &self.config.limits;
        let accepted = match &mut self.transaction {
            Some(transaction) if extended && !transaction.recipients.is_empty() => {
                transaction.chunks.get_or_insert_with(|| {
                    DataDecoder::new_chunked(
                        limits.message_bytes_max,
                        limits.text_line_bytes_max,
                        self.config.bare_line_ending,
                    )
                });
                true
            }
            _ => false,
        };
        self.phase = Phase::Chunk { remaining: size, size, last, accepted };
    }

    /// Takes what is buffered of the current chunk; returns whether the chunk is complete (and
    /// answered).
    pub(super) fn consume_chunk(&mut self) -> bool {
        let Phase::Chunk { remaining, size, last, accepted } = &mut self.phase else {
            return true;
        };
        let available = self.input.len() - self.input_pos;
        let take = usize::try_from(*remaining).map_or(available, |remaining| remaining.min(available));
        if *accepted && let Some(decoder) = self.transaction.as_mut().and_then(|t| t.chunks.as_mut()) {
            decoder.decode(&self.input[self.input_pos..self.input_pos + take]);
        }
        self.input_pos += take;
        *remaining -= take as u64;
        if *remaining > 0 {
            return false;
        }
        let (size, last, accepted) = (*size, *last, *accepted);
        self.phase = Phase::Command;
        self.chunk_complete(size, last, accepted);
        true
    }

    fn chunk_complete(&mut self, size: u64, last: bool, accepted: bool) {
        self.record(|| format!("C: <message data, {size} octets>"));
        if !accepted {
            self.reply(503, "5.5.1", "BDAT needs EHLO, MAIL and at least one accepted RCPT");
            return;
        }
        let Some(transaction) = &mut self.transaction else {
            debug_assert!(false, "an accepted chunk without a transaction");
            return;
        };
        let too_big = transaction.chunks.as_ref().is_some_and(DataDecoder::is_too_big);
        if too_big {
            self.transaction = None;
            self.reply_too_big();
        } else if !last {
            self.reply(250, "2.0.0", &format!("{size} octets received"));
        } else if let Some(decoder) = transaction.chunks.take() {
            self.message_complete(decoder);
        }
    }

    /// The message has been received in full: check it, and ask for delivery. The transaction
    /// ends here whatever the outcome.
    pub(super) fn message_complete(&mut self, decoder: DataDecoder) {
        if decoder.is_ended() {
            self.record(|| format!("C: <message data, {} octets>", decoder.size()));
        }
        let Some(transaction) = self.transaction.take() else {
            debug_assert!(false, "message content without a transaction");
            return;
        };
        let data = match decoder.finish() {
            Ok(data) => data,
            Err(DataError::TooBig { .. }) => return self.reply_too_big(),
            Err(DataError::Nul) => {
                return self.reply(550, "5.6.0", "Message refused: NUL octets are not allowed in mail");
            }
            Err(DataError::BareLineEnding) => {
                return self.reply(
                    550,
                    "5.6.0",
                    "Message refused: bare CR or LF found; lines must end with CRLF (RFC 5321 section 2.3.8)",
                );
            }
            Err(DataError::LineTooLong) => {
                let max = self.config.limits.text_line_bytes_max;
                return self.reply(
                    550,
                    "5.6.0",
                    &format!(
                        "Message refused: a line is longer than {max} octets including CRLF \
                         (RFC 5321 section 4.5.3.1.6)"
                    ),
                );
            }
        };
        let received_max = self.config.limits.received_fields_max;
        if received_field_count(&data, received_max) > received_max {
            return self.reply(
                554,
                "5.4.6",
                &format!("Message refused: more than {received_max} Received header fields, probably a mail loop"),
            );
        }
        let helo = self.helo.as_ref();
        let trace = Trace {
            helo: helo.map(|helo| helo.name.clone()).unwrap_or_default(),
            peer: self.config.peer,
            hostname: self.config.hostname.clone(),
            protocol: protocol_name(
                helo.is_some_and(|helo| helo.extended),
                transaction.smtputf8,
                self.tls,
                self.account.is_some(),
            ),
            recipient: match transaction.recipients.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            },
        };
        let delivery = Transaction {
            reverse_path: transaction.reverse_path,
            recipients: transaction.recipients,
            data,
            body: transaction.body,
            smtputf8: transaction.smtputf8,
            trace,
        };
        self.issue(Request::Deliver(delivery), Pending::Delivery);
    }

    pub(super) fn delivery_resolved(&mut self, verdict: DeliveryVerdict) {
        match verdict {
            DeliveryVerdict::Accepted { id } => self.reply(250, "2.0.0", &format!("Ok: queued as {id}")),
            DeliveryVerdict::TempFail { reason } => self.reply(451, "4.3.0", &reason),
            DeliveryVerdict::PermFail { reason } => self.reply(554, "5.3.0", &reason),
        }
    }

    fn reply_too_big(&mut self) {
        let max = self.config.limits.message_bytes_max;
        self.reply(552, "5.3.4", &format!("Message size exceeds fixed maximum message size of {max} octets"));
    }
}
