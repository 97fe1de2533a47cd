//! The SASL PLAIN mechanism (RFC 4616) as POP3 carries it (RFC 5034 §4): base64 of
//! `authzid NUL authcid NUL passwd`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why a PLAIN response was refused; each maps to one `-ERR` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlainError {
    /// Not base64 (RFC 4648 §4, padded).
    Base64,
    /// Not `authzid NUL authcid NUL passwd` with a non-empty authcid and password, or not UTF-8.
    Malformed,
    /// The client asked to act as another user; this server allows no proxy authorization.
    AuthorizationIdentity,
}

/// Credentials from a PLAIN response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PlainCredentials {
    /// The authentication identity (the user name).
    pub(crate) user: String,
    pub(crate) password: String,
}

/// Decodes a client's base64 PLAIN response; `"="` (RFC 5034 §4: an empty initial response) is
/// taken as empty only where `equals_is_empty` says so.
pub(crate) fn decode_plain(encoded: &[u8], equals_is_empty: bool) -> Result<PlainCredentials, PlainError> {
    let decoded = if equals_is_empty && encoded == b"=" {
        Vec::new()
    } else {
        STANDARD.decode(encoded).map_err(|_| PlainError::Base64)?
    };
    let credentials = parse_plain(&decoded);
    // The decoded buffer holds the password; clear it before it goes back to the allocator.
    let mut decoded = decoded;
    decoded.fill(0);
    credentials
}

fn parse_plain(message: &[u8]) -> Result<PlainCredentials, PlainError> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PlainError::Malformed);
    };
    if authcid.is_empty() || password.is_empty() || password.contains(&0) {
        return Err(PlainError::Malformed);
    }
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| PlainError::Malformed);
    let (authzid, user, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if !authzid.is_empty() && authzid != user {
        return Err(PlainError::AuthorizationIdentity);
    }
    Ok(PlainCredentials { user, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(plain: &[u8]) -> Vec<u8> {
        STANDARD.encode(plain).into_bytes()
    }

    #[test]
    fn empty_authzid_gives_the_authcid_and_password() {
        assert_eq!(
            decode_plain(&encode(b"\0alice@example.org\0pass word"), false),
            Ok(PlainCredentials { user: "alice@example.org".into(), password: "pass word".into() })
        );
    }

    #[test]
    fn authzid_equal_to_authcid_is_accepted() {
        assert!(decode_plain(&encode(b"bob\0bob\0pw"), false).is_ok());
    }

    #[test]
    fn authzid_of_another_user_is_refused() {
        assert_eq!(decode_plain(&encode(b"admin\0bob\0pw"), false), Err(PlainError::AuthorizationIdentity));
    }

    #[test]
    fn malformed_messages_are_refused() {
        for plain in [&b""[..], b"bob", b"\0bob", b"\0\0pw", b"\0bob\0", b"\0bob\0p\0w", b"\0\xff\0pw"] {
            assert_eq!(decode_plain(&encode(plain), false), Err(PlainError::Malformed), "{plain:?}");
        }
        assert_eq!(decode_plain(b"=", true), Err(PlainError::Malformed));
    }

    #[test]
    fn bad_base64_is_refused() {
        assert_eq!(decode_plain(b"not base64!", false), Err(PlainError::Base64));
        assert_eq!(decode_plain(b"=", false), Err(PlainError::Base64));
    }
}
