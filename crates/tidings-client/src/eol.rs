//! Line ends: IMAP and SMTP carry messages with CRLF (RFC 5322 §2.1); mbox files and Maildir
//! files on Unix hold them with LF.

/// `octets` with every LF that has no CR before it turned into CRLF; CRLF stays as it is.
pub fn lf_to_crlf(octets: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(octets.len() + octets.len() / 32);
    let mut previous = 0u8;
    for &b in octets {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// `octets` with every CRLF turned into LF; a CR alone stays as it is.
pub fn crlf_to_lf(octets: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(octets.len());
    let mut i = 0;
    while i < octets.len() {
        if octets[i] == b'\r' && octets.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(octets[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_text_survives_a_trip_through_lf() {
        let message = b"Subject: x\r\n\r\nbody\r\n\r\nend\r\n";
        assert_eq!(crlf_to_lf(message), b"Subject: x\n\nbody\n\nend\n");
        assert_eq!(lf_to_crlf(&crlf_to_lf(message)), message);
    }

    #[test]
    fn mixed_line_ends_become_crlf() {
        assert_eq!(lf_to_crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\rd");
    }
}
