//! Content-Transfer-Encoding decoding (RFC 2045 §6), lenient as RFC 2045 asks of decoders:
//! octets outside the base64 alphabet are ignored (§6.8), an `=` not followed by two hex digits
//! in quoted-printable is kept as is and whitespace at line ends is dropped (§6.7).

use std::borrow::Cow;

/// A Content-Transfer-Encoding (RFC 2045 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferEncoding {
    /// 7bit, 8bit, binary, or no Content-Transfer-Encoding field: the octets are the content.
    Identity,
    Base64,
    QuotedPrintable,
    /// Anything else (x-uuencode, a typo, ...).
    Unknown,
}

impl TransferEncoding {
    /// The encoding a Content-Transfer-Encoding token names (`None`: no field, 7bit).
    pub fn from_token(token: Option<&[u8]>) -> TransferEncoding {
        let Some(token) = token else {
            return TransferEncoding::Identity;
        };
        if token.eq_ignore_ascii_case(b"base64") {
            TransferEncoding::Base64
        } else if token.eq_ignore_ascii_case(b"quoted-printable") {
            TransferEncoding::QuotedPrintable
        } else if [&b"7bit"[..], b"8bit", b"binary"].iter().any(|identity| token.eq_ignore_ascii_case(identity)) {
            TransferEncoding::Identity
        } else {
            TransferEncoding::Unknown
        }
    }

    /// `content` with this encoding removed; `None` for [`TransferEncoding::Unknown`].
    /// Borrows for the identity encodings.
    pub fn decode<'c>(self, content: &'c [u8]) -> Option<Cow<'c, [u8]>> {
        match self {
            TransferEncoding::Identity => Some(Cow::Borrowed(content)),
            TransferEncoding::Base64 => Some(Cow::Owned(base64(content))),
            TransferEncoding::QuotedPrintable => Some(Cow::Owned(quoted_printable(content))),
            TransferEncoding::Unknown => None,
        }
    }
}

const INVALID: u8 = 0xff;

static BASE64_VALUES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes base64 (RFC 2045 §6.8). Octets outside the alphabet are skipped; `=` ends a
/// quantum, after which decoding goes on (some writers concatenate encoded chunks).
pub(crate) fn base64(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() / 4 * 3 + 3);
    let mut quantum: u32 = 0;
    let mut sextets = 0;
    for &byte in encoded {
        let value = BASE64_VALUES[byte as usize];
        if value != INVALID {
            quantum = quantum << 6 | u32::from(value);
            sextets += 1;
            if sextets == 4 {
                out.extend_from_slice(&quantum.to_be_bytes()[1..]);
                quantum = 0;
                sextets = 0;
            }
        } else if byte == b'=' {
            flush(&mut out, quantum, sextets);
            quantum = 0;
            sextets = 0;
        }
    }
    flush(&mut out, quantum, sextets);
    out
}

/// Emits the octets of an incomplete quantum (two sextets make one octet, three make two).
fn flush(out: &mut Vec<u8>, quantum: u32, sextets: u32) {
    match sextets {
        2 => out.push((quantum >> 4) as u8),
        3 => out.extend_from_slice(&[(quantum >> 10) as u8, (quantum >> 2) as u8]),
        _ => {}
    }
}

/// Decodes quoted-printable (RFC 2045 §6.7). Line ends are kept as written (CRLF or LF);
/// `=` at the end of a line (trailing whitespace allowed) is a soft line break.
pub(crate) fn quoted_printable(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while !rest.is_empty() {
        let (line, line_end, next) = match memchr::memchr(b'\n', rest) {
            Some(lf) => {
                let cr = lf > 0 && rest[lf - 1] == b'\r';
                let content_end = if cr { lf - 1 } else { lf };
                (&rest[..content_end], &rest[content_end..=lf], &rest[lf + 1..])
            }
            None => (rest, &rest[..0], &rest[rest.len()..]),
        };
        // Rule 3: whitespace at the end of an encoded line was added in transport.
        let line = crate::header::trim_end_blanks(line);
        let (line, soft_break) = match line.strip_suffix(b"=") {
            Some(line) => (line, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            let byte = line[i];
            if byte == b'='
                && let (Some(high), Some(low)) = (hex(line.get(i + 1)), hex(line.get(i + 2)))
            {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
            out.push(byte);
            i += 1;
        }
        if !soft_break {
            out.extend_from_slice(line_end);
        }
        rest = next;
    }
    out
}

fn hex(byte: Option<&u8>) -> Option<u8> {
    match *byte? {
        digit @ b'0'..=b'9' => Some(digit - b'0'),
        upper @ b'A'..=b'F' => Some(upper - b'A' + 10),
        lower @ b'a'..=b'f' => Some(lower - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_ignores_line_ends_and_junk() {
        assert_eq!(base64(b"aGVs\r\nbG8g!d29y\r\nbGQ=\r\n"), b"hello world");
        assert_eq!(base64(b"YQ"), b"a");
        assert_eq!(base64(b"YWI="), b"ab");
        assert_eq!(base64(b"YQ==YWI="), b"aab");
    }

    #[test]
    fn quoted_printable_decodes_escapes_and_soft_breaks() {
        assert_eq!(quoted_printable(b"caf=C3=A9 =\r\nau lait\r\n"), "café au lait\r\n".as_bytes());
        assert_eq!(quoted_printable(b"a=3db=3D\n"), b"a=b=\n");
    }

    #[test]
    fn quoted_printable_keeps_a_stray_equals_sign_and_drops_trailing_blanks() {
        assert_eq!(quoted_printable(b"1+1=2 and =ZZ   \r\nend= \t\r\n!"), b"1+1=2 and =ZZ\r\nend!");
    }

    #[test]
    fn unknown_encodings_cannot_be_decoded() {
        assert_eq!(TransferEncoding::from_token(Some(b"x-uuencode")), TransferEncoding::Unknown);
        assert_eq!(TransferEncoding::from_token(Some(b"8BIT")), TransferEncoding::Identity);
        assert_eq!(TransferEncoding::from_token(None), TransferEncoding::Identity);
        assert!(TransferEncoding::Unknown.decode(b"x").is_none());
    }
}
