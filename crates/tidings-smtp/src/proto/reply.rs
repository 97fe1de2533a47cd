//! SMTP replies (RFC 5321 §4.2) with optional enhanced status codes (RFC 2034, RFC 3463).

/// Formats one reply as wire lines without their CRLF: `code SP text` for a single line;
/// `code "-" text` for every line but the last of a multi-line reply (RFC 5321 §4.2.1).
///
/// `enhanced` (e.g. `"2.1.0"`) is put before the text of every line, as RFC 2034 §4 asks.
/// Control characters in the text (which may quote client or driver data) become spaces so a
/// reply can never be split or forged.
pub(crate) fn format_lines(code: u16, enhanced: Option<&str>, lines: &[&str]) -> Vec<String> {
    debug_assert!((200..600).contains(&code) || code == 334 || code == 354, "reply code {code}");
    let count = lines.len().max(1);
    let mut formatted = Vec::with_capacity(count);
    for index in 0..count {
        let text = lines.get(index).copied().unwrap_or("");
        let separator = if index + 1 == count { ' ' } else { '-' };
        let mut line = String::with_capacity(text.len() + 12);
        line.push_str(&code.to_string());
        line.push(separator);
        if let Some(enhanced) = enhanced {
            line.push_str(enhanced);
            if !text.is_empty() {
                line.push(' ');
            }
        }
        line.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }));
        formatted.push(line);
    }
    formatted
}

/// The reply a listener sends before closing a connection it refuses, for instance over its
/// connection limits (RFC 5321 §3.1 allows `421` in place of the greeting), e.g.
/// `421 4.7.0 mx.example Too many connections, try again later\r\n`.
///
/// Control characters in `reason` become spaces.
pub fn refuse_connection(hostname: &str, reason: &str) -> Vec<u8> {
    let text = format!("{hostname} {reason}");
    let mut out = Vec::with_capacity(text.len() + 12);
    for line in format_lines(421, Some("4.7.0"), &[&text]) {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_reply_is_code_space_text() {
        assert_eq!(format_lines(250, None, &["Ok"]), ["250 Ok"]);
        assert_eq!(format_lines(250, Some("2.0.0"), &["Ok"]), ["250 2.0.0 Ok"]);
    }

    #[test]
    fn multi_line_reply_uses_hyphens_then_a_space_with_the_enhanced_code_on_each_line() {
        assert_eq!(format_lines(214, Some("2.0.0"), &["a", "b", "c"]), ["214-2.0.0 a", "214-2.0.0 b", "214 2.0.0 c"]);
    }

    #[test]
    fn empty_text_keeps_the_separator() {
        assert_eq!(format_lines(334, None, &[""]), ["334 "]);
    }

    #[test]
    fn control_characters_in_text_cannot_split_a_reply() {
        assert_eq!(format_lines(451, Some("4.3.0"), &["disk\r\n250 ok"]), ["451 4.3.0 disk  250 ok"]);
    }

    #[test]
    fn refused_connection_gets_a_421_naming_the_host() {
        assert_eq!(
            refuse_connection("mx.example", "Too many connections, try again later"),
            b"421 4.7.0 mx.example Too many connections, try again later\r\n"
        );
    }
}
