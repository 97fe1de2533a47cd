//! Byte-stuffing of multi-line responses (RFC 1939 §3) and the cut that `TOP` makes (§7).

use memchr::{memchr, memmem};

/// Writes `message` as the body of a multi-line response into `out`: every line that begins
/// with "." gets one more "." in front (RFC 1939 §3), a final CRLF is ensured, and the
/// terminating ".\r\n" is appended.
///
/// With `lines: Some(m)` only the part `TOP msg m` returns is written (RFC 1939 §7): the header
/// section, the blank line that ends it, and the first `m` lines of the body. A message with no
/// blank line is all header and is written whole.
///
/// `message` should have CRLF line ends, as stored. Stuffing also follows a bare LF, so that a
/// client that splits lines on LF alone can never see an early end of the response. A final
/// bare LF or CR is completed to CRLF; an empty message is written as ".\r\n" alone.
///
/// Runs in one pass: `memchr`'s substring search finds the lines that begin with "." and the
/// octets between them are copied in bulk.
pub fn stuff_message(message: &[u8], lines: Option<u32>, out: &mut Vec<u8>) {
    let message = match lines {
        None => message,
        Some(body_lines) => &message[..top_len(message, body_lines)],
    };
    out.reserve(message.len() + 8);
    if message.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut copied = 0;
    for lf in memmem::find_iter(message, b"\n.") {
        out.extend_from_slice(&message[copied..=lf]);
        out.push(b'.');
        copied = lf + 1;
    }
    out.extend_from_slice(&message[copied..]);
    if message.ends_with(b"\r\n") {
        // Already complete.
    } else if message.ends_with(b"\n") {
        out.pop();
        out.extend_from_slice(b"\r\n");
    } else if message.ends_with(b"\r") {
        out.push(b'\n');
    } else if !message.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// Octets of `message` that `TOP` returns with `body_lines` lines of body.
fn top_len(message: &[u8], body_lines: u32) -> usize {
    let Some(body_start) = body_start(message) else {
        return message.len();
    };
    let mut end = body_start;
    for _ in 0..body_lines {
        match memchr(b'\n', &message[end..]) {
            Some(lf) => end += lf + 1,
            None => return message.len(),
        }
    }
    end
}

/// Offset just past the blank line that ends the header section (RFC 5322 §2.1), if any.
fn body_start(message: &[u8]) -> Option<usize> {
    if message.starts_with(b"\r\n") {
        return Some(2);
    }
    if message.starts_with(b"\n") {
        return Some(1);
    }
    let mut from = 0;
    while let Some(lf) = memchr(b'\n', &message[from..]) {
        let next = from + lf + 1;
        let rest = &message[next..];
        if rest.starts_with(b"\r\n") {
            return Some(next + 2);
        }
        if rest.starts_with(b"\n") {
            return Some(next + 1);
        }
        from = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn stuffed(message: &[u8], lines: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        stuff_message(message, lines, &mut out);
        out
    }

    /// Reverses byte-stuffing: drops the terminator and one leading "." of each stuffed line.
    fn unstuff(stuffed: &[u8]) -> Vec<u8> {
        let body = stuffed.strip_suffix(b".\r\n").expect("response ends with .CRLF");
        let mut message = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                assert!(line.starts_with(b".."), "unstuffed line in {stuffed:?}");
                message.extend_from_slice(&line[1..]);
            } else {
                message.extend_from_slice(line);
            }
        }
        message
    }

    #[test]
    fn lines_beginning_with_a_dot_get_one_more_dot() {
        let message = b".first\r\nmiddle\r\n.\r\n..two\r\nlast.\r\n";
        assert_eq!(stuffed(message, None), b"..first\r\nmiddle\r\n..\r\n...two\r\nlast.\r\n.\r\n");
    }

    #[test]
    fn message_without_final_crlf_gets_one() {
        assert_eq!(stuffed(b"a\r\nb", None), b"a\r\nb\r\n.\r\n");
        assert_eq!(stuffed(b"a\r\nb\r", None), b"a\r\nb\r\n.\r\n");
        assert_eq!(stuffed(b"a\r\nb\n", None), b"a\r\nb\r\n.\r\n");
    }

    #[test]
    fn empty_message_is_the_terminator_alone() {
        assert_eq!(stuffed(b"", None), b".\r\n");
    }

    #[test]
    fn a_dot_after_a_bare_lf_is_stuffed_too() {
        assert_eq!(stuffed(b"a\n.\r\n", None), b"a\n..\r\n.\r\n");
    }

    #[test]
    fn output_is_appended_to_what_out_holds() {
        let mut out = b"+OK\r\n".to_vec();
        stuff_message(b"x\r\n", None, &mut out);
        assert_eq!(out, b"+OK\r\nx\r\n.\r\n");
    }

    const MESSAGE: &[u8] = b"Subject: hi\r\nFrom: a@b\r\n\r\none\r\n.two\r\nthree\r\n";

    #[test]
    fn top_zero_is_the_header_section_and_blank_line() {
        assert_eq!(stuffed(MESSAGE, Some(0)), b"Subject: hi\r\nFrom: a@b\r\n\r\n.\r\n");
    }

    #[test]
    fn top_n_adds_n_body_lines_stuffed() {
        assert_eq!(stuffed(MESSAGE, Some(2)), b"Subject: hi\r\nFrom: a@b\r\n\r\none\r\n..two\r\n.\r\n");
    }

    #[test]
    fn top_with_more_lines_than_the_body_is_the_whole_message() {
        assert_eq!(stuffed(MESSAGE, Some(u32::MAX)), stuffed(MESSAGE, None));
    }

    #[test]
    fn top_of_a_message_without_body_is_the_whole_message() {
        assert_eq!(stuffed(b"Subject: x\r\nTo: y", Some(3)), b"Subject: x\r\nTo: y\r\n.\r\n");
    }

    #[test]
    fn top_of_a_message_with_empty_header_section_starts_at_the_body() {
        assert_eq!(stuffed(b"\r\nbody\r\nmore\r\n", Some(1)), b"\r\nbody\r\n.\r\n");
    }

    #[test]
    fn top_of_a_last_body_line_without_crlf_completes_it() {
        assert_eq!(stuffed(b"A: b\r\n\r\nend", Some(5)), b"A: b\r\n\r\nend\r\n.\r\n");
    }

    fn crlf_message() -> impl Strategy<Value = (Vec<u8>, bool)> {
        (prop::collection::vec("[.a-z :]{0,12}", 0..24), any::<bool>()).prop_map(|(lines, final_crlf)| {
            let mut message = lines.join("\r\n").into_bytes();
            if final_crlf && !lines.is_empty() {
                message.extend_from_slice(b"\r\n");
            }
            (message, final_crlf)
        })
    }

    proptest! {
        #[test]
        fn unstuffing_gives_back_the_message((message, _) in crlf_message()) {
            let out = stuffed(&message, None);
            let mut expected = message.clone();
            if !expected.is_empty() && !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(unstuff(&out), expected);
        }

        #[test]
        fn terminator_appears_only_at_the_end(message in prop::collection::vec(
            prop::sample::select(vec![b'.', b'\r', b'\n', b'a']), 0..64)) {
            for lines in [None, Some(0), Some(2)] {
                let out = stuffed(&message, lines);
                let body = &out[..out.len() - 3];
                prop_assert!(out.ends_with(b".\r\n"));
                prop_assert!(body.is_empty() || body.ends_with(b"\r\n"));
                prop_assert!(!body.starts_with(b".\r\n") && !body.starts_with(b".\n"));
                prop_assert!(memmem::find(body, b"\n.\r\n").is_none());
                prop_assert!(memmem::find(body, b"\n.\n").is_none());
            }
        }

        #[test]
        fn top_output_is_a_prefix_of_retr_output((message, _) in crlf_message(), lines in 0u32..30) {
            let retr = unstuff(&stuffed(&message, None));
            let top = unstuff(&stuffed(&message, Some(lines)));
            if top.len() <= retr.len() {
                prop_assert_eq!(&retr[..top.len()], &top[..]);
            } else {
                prop_assert!(false, "TOP longer than RETR");
            }
        }
    }
}
