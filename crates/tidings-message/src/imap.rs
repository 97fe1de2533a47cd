//! Message octets as IMAP strings (RFC 9051 §4.3).

use std::borrow::Cow;

use imap_codec::imap_types::core::{IString, Literal, NString, Quoted};

/// `bytes` as an IMAP string: quoted when every octet is a 7-bit TEXT-CHAR, a literal
/// otherwise. NUL cannot be sent in either (RFC 9051 §4.3) and is dropped; stored messages have
/// none, so this only matters for malformed input.
pub(crate) fn istring(bytes: Cow<'_, [u8]>) -> IString<'static> {
    if Quoted::validate(&*bytes).is_ok()
        && let Ok(text) = String::from_utf8(bytes.to_vec())
        && let Ok(quoted) = Quoted::try_from(text)
    {
        return IString::Quoted(quoted);
    }
    let mut octets = bytes.into_owned();
    octets.retain(|&b| b != 0);
    match Literal::try_from(octets) {
        Ok(literal) => IString::Literal(literal),
        // Unreachable (NUL is the only octet a literal cannot carry); an empty string is the
        // harmless answer.
        Err(_) => IString::Quoted(Quoted::unvalidated("")),
    }
}

pub(crate) fn istr(text: &str) -> IString<'static> {
    istring(Cow::Borrowed(text.as_bytes()))
}

/// `Some` as a string, `None` as NIL.
pub(crate) fn nstring(bytes: Option<Cow<'_, [u8]>>) -> NString<'static> {
    NString(bytes.map(istring))
}
