//! Modified UTF-7, the mailbox name encoding of IMAP4rev1 (RFC 3501 §5.1.3): printable ASCII
//! other than `&` stands for itself, `&-` for `&`, and anything else is UTF-16 in a modified
//! base64 (`,` for `/`, no padding) between `&` and `-`.

/// The modified base64 alphabet (RFC 3501 §5.1.3, RFC 2152 with `,` for `/`).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes a UTF-8 name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Writes `&<base64 of the UTF-16 units>-` for the pending units, if any.
fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for unit in units.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        bit_count += 16;
        while bit_count >= 6 {
            bit_count -= 6;
            out.push(char::from(ALPHABET[((bits >> bit_count) & 0x3f) as usize]));
        }
        bits &= (1 << bit_count) - 1;
    }
    if bit_count > 0 {
        out.push(char::from(ALPHABET[((bits << (6 - bit_count)) & 0x3f) as usize]));
    }
    out.push('-');
}

/// Why a name is not valid modified UTF-7 (see [`decode`] for what is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf7;

/// Decodes a modified UTF-7 name, strictly: octets outside printable ASCII, an unterminated or
/// empty shift (`&-` excepted), base64 outside the alphabet, leftover bits that are not zero,
/// broken UTF-16 surrogates, and encoded printable ASCII are all refused.
pub fn decode(name: &[u8]) -> Result<String, InvalidUtf7> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some((&first, tail)) = rest.split_first() {
        if !(0x20..0x7f).contains(&first) {
            return Err(InvalidUtf7);
        }
        if first != b'&' {
            out.push(char::from(first));
            rest = tail;
            continue;
        }
        let end = tail.iter().position(|&b| b == b'-').ok_or(InvalidUtf7)?;
        let (encoded, after) = (&tail[..end], &tail[end + 1..]);
        if encoded.is_empty() {
            out.push('&');
        } else {
            decode_shift(encoded, &mut out)?;
        }
        rest = after;
    }
    Ok(out)
}

/// Decodes the base64 between `&` and `-` into `out`.
fn decode_shift(encoded: &[u8], out: &mut String) -> Result<(), InvalidUtf7> {
    let mut units = Vec::with_capacity(encoded.len() * 6 / 16);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for &b in encoded {
        let value = ALPHABET.iter().position(|&a| a == b).ok_or(InvalidUtf7)? as u32;
        bits = (bits << 6) | value;
        bit_count += 6;
        if bit_count >= 16 {
            bit_count -= 16;
            units.push(((bits >> bit_count) & 0xffff) as u16);
            bits &= (1 << bit_count) - 1;
        }
    }
    // RFC 2152: what is left must be fewer than six bits, all zero.
    if bit_count >= 6 || bits != 0 || units.is_empty() {
        return Err(InvalidUtf7);
    }
    for c in char::decode_utf16(units) {
        let c = c.map_err(|_| InvalidUtf7)?;
        // Printable ASCII must stand for itself (RFC 3501 §5.1.3).
        if (' '..='~').contains(&c) {
            return Err(InvalidUtf7);
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_example_round_trips() {
        let name = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(encode(name), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        assert_eq!(decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(), name);
    }

    #[test]
    fn ampersand_and_accents() {
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode(b"Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(decode(b"Entw&APw-rfe").unwrap(), "Entwürfe");
        assert_eq!(encode("\u{1f600}"), "&2D3eAA-");
        assert_eq!(decode(b"&2D3eAA-").unwrap(), "\u{1f600}");
    }

    #[test]
    fn invalid_forms_are_refused() {
        for bad in [
            &b"&"[..],
            b"a&AOk",
            b"&AOk/-",
            b"&AOl-",
            b"&AGE-",
            b"&2D0-",
            b"&A-",
            b"caf\xc3\xa9",
            b"tab\there",
            b"&3gA-",
        ] {
            assert_eq!(decode(bad), Err(InvalidUtf7), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn every_char_round_trips() {
        let text: String = ['a', '&', 'é', '€', '\u{10348}', '-', ' ', '中'].iter().collect();
        assert_eq!(decode(encode(&text).as_bytes()).unwrap(), text);
    }
}
