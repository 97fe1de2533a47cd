//! The MIME part tree of a stored message, as byte ranges of the stored octets (RFC 2045,
//! RFC 2046 §5.1, RFC 2046 §5.2.1).
//!
//! The parser reads the message once, line by line, the way RFC 2046 §5.1.1 describes: a line
//! that begins with `--` and the boundary of any enclosing multipart (the longest such boundary,
//! the innermost on a tie) is a delimiter, whatever follows it on the line; the CRLF before it
//! belongs to the delimiter. A delimiter of an outer multipart also ends every part nested in
//! it (a missing close delimiter), and it ends a MIME header early when it comes before the
//! blank line. Nothing is decoded here: each part is three offsets into the stored octets.

use std::borrow::Cow;

use memchr::memmem;

use crate::header;
use crate::params::{self, ContentType};

/// Deepest nesting of multiparts and message/rfc822 parts that is parsed into parts. A part
/// deeper than this is reported as a single part (its content is not split).
pub const NESTING_MAX: usize = 100;

/// Parts a message is split into, at most (a few more for the placeholder parts of empty
/// multiparts). Once reached, the rest of the enclosing multipart is treated as its epilogue.
pub const PARTS_MAX: usize = 10_000;

/// Longest boundary parameter used to split a multipart, in octets (RFC 2046 §5.1.1 allows 70;
/// real mail sometimes has more, a line is at most 998).
const BOUNDARY_BYTES_MAX: usize = 998;

/// The part at index 0 of every tree: the message itself.
pub(crate) const ROOT: u32 = 0;

/// One MIME entity: a header block and content, as offsets into the stored message.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// First octet of the header (the message header for a message, the MIME header for a part).
    pub start: usize,
    /// First octet of the content: just past the blank line, or where the header was cut short.
    pub body: usize,
    /// Just past the last content octet (before the CRLF that belongs to the next delimiter).
    pub end: usize,
    /// The Content-Type field, parsed, when the header has one.
    pub content_type: Option<ContentType<'a>>,
    /// Whether the enclosing multipart is multipart/digest (default type message/rfc822).
    pub in_digest: bool,
    pub kind: Kind,
}

/// What a part contains.
#[derive(Debug)]
pub(crate) enum Kind {
    /// Content that is not split further.
    Leaf,
    /// A multipart's body parts, in order (never empty: a multipart without any gets one empty
    /// text/plain placeholder, as Dovecot reports it).
    Multipart(Vec<u32>),
    /// A message/rfc822 part: the index of the encapsulated message's own entity.
    Message(u32),
}

impl<'a> Part<'a> {
    /// The header block, blank line included when there is one.
    pub fn header<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        &raw[self.start..self.body]
    }

    /// The content octets as stored (still in their transfer encoding).
    pub fn content<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        &raw[self.body..self.end]
    }

    /// The media type in effect (RFC 2045 §5.2): the Content-Type's when it is valid, else
    /// text/plain, or message/rfc822 for a part of a multipart/digest without Content-Type.
    pub fn media_type(&self) -> (&[u8], &[u8]) {
        match &self.content_type {
            Some(ContentType { media: Some((ty, subtype)), .. }) => (ty, subtype),
            None if self.in_digest => (b"message", b"rfc822"),
            _ => (b"text", b"plain"),
        }
    }

    /// The Content-Type parameters (empty without a Content-Type field).
    pub fn params(&self) -> &[params::Param<'a>] {
        self.content_type.as_ref().map_or(&[], |ct| &ct.params)
    }

    pub fn is_text(&self) -> bool {
        self.media_type().0.eq_ignore_ascii_case(b"text")
    }
}

/// The parsed structure of a message.
#[derive(Debug)]
pub(crate) struct Tree<'a> {
    /// Every entity in document order; [`ROOT`] is the message.
    pub parts: Vec<Part<'a>>,
}

impl<'a> Tree<'a> {
    pub fn parse(raw: &'a [u8]) -> Tree<'a> {
        let mut parser =
            Parser { raw, parts: Vec::new(), boundaries: Vec::new(), delimiter_start: memmem::Finder::new(b"\n--") };
        let (root, _) = parser.entity(0, 0, false);
        debug_assert_eq!(root, ROOT);
        debug_assert_eq!(parser.parts[0].end, raw.len());
        Tree { parts: parser.parts }
    }

    pub fn part(&self, index: u32) -> &Part<'a> {
        &self.parts[index as usize]
    }

    /// The parts numbered 1, 2, ... inside a message whose own entity is `entity`
    /// (RFC 9051 §6.4.5): a multipart's body parts, or else the entity itself as part 1.
    fn numbered<'t>(&'t self, entity: &'t u32) -> &'t [u32] {
        match &self.part(*entity).kind {
            Kind::Multipart(children) => children,
            _ => std::slice::from_ref(entity),
        }
    }

    /// The part a part number (`1.2.3`) names, or `None` when there is no such part.
    /// The empty number names nothing.
    pub fn resolve(&self, number: &[std::num::NonZeroU32]) -> Option<u32> {
        let mut current = None;
        let mut numbered = self.numbered(&ROOT);
        for n in number {
            let index = *numbered.get(n.get() as usize - 1)?;
            current = Some(index);
            numbered = match &self.part(index).kind {
                Kind::Multipart(children) => children,
                Kind::Message(entity) => self.numbered(entity),
                Kind::Leaf => &[],
            };
        }
        current
    }
}

/// The offset where the message header ends and the body begins (just past the blank line, or
/// the end of the message when there is none).
pub(crate) fn header_end(raw: &[u8]) -> usize {
    let mut line = 0;
    while line < raw.len() {
        if raw[line] == b'\n' {
            return line + 1;
        }
        if raw[line..].starts_with(b"\r\n") {
            return line + 2;
        }
        line = header::line_end(raw, line);
    }
    raw.len()
}

/// A delimiter line found in the body (RFC 2046 §5.1.1).
#[derive(Debug, Clone, Copy)]
struct Delimiter {
    /// Where the content before it ends (the line end before the delimiter belongs to it).
    content_end: usize,
    /// Where the delimiter line's own line end begins.
    line_end: usize,
    /// Just past the delimiter line.
    after: usize,
    /// Index of the enclosing multipart's boundary in the parser's stack.
    level: usize,
    /// Whether this is a close delimiter (`--boundary--`).
    close: bool,
}

struct Parser<'a> {
    raw: &'a [u8],
    parts: Vec<Part<'a>>,
    /// Boundaries of the multiparts enclosing the current position, outermost first.
    boundaries: Vec<Cow<'a, [u8]>>,
    delimiter_start: memmem::Finder<'static>,
}

impl<'a> Parser<'a> {
    /// Parses the entity (header and content) that starts at `start`; returns its index and the
    /// delimiter that ended it (`None`: the end of the message).
    fn entity(&mut self, start: usize, depth: usize, in_digest: bool) -> (u32, Option<Delimiter>) {
        let raw = self.raw;
        let index = self.parts.len() as u32;
        let (body, cut_short) = self.header(start);
        let content_type = header::find(&raw[start..body], b"content-type").map(|f| params::content_type(f.value));
        self.parts.push(Part { start, body, end: body, content_type, in_digest, kind: Kind::Leaf });
        let part = &self.parts[index as usize];
        let (ty, subtype) = part.media_type();
        let multipart = ty.eq_ignore_ascii_case(b"multipart");
        let message = ty.eq_ignore_ascii_case(b"message") && subtype.eq_ignore_ascii_case(b"rfc822");
        let digest = multipart && subtype.eq_ignore_ascii_case(b"digest");
        let boundary = part
            .content_type
            .as_ref()
            .filter(|_| multipart)
            .and_then(|ct| ct.params.iter().find(|p| p.name.eq_ignore_ascii_case(b"boundary")))
            .map(|p| p.value.clone())
            .filter(|b| !b.is_empty() && b.len() <= BOUNDARY_BYTES_MAX);
        let may_nest = depth < NESTING_MAX && self.parts.len() < PARTS_MAX;
        let (kind, end) = match (cut_short, boundary) {
            // A delimiter ended the header: the content is empty.
            (Some(delimiter), _) => {
                let kind = if multipart {
                    Kind::Multipart(vec![self.placeholder(body)])
                } else if message {
                    Kind::Message(self.placeholder(body))
                } else {
                    Kind::Leaf
                };
                (kind, Some(delimiter))
            }
            (None, Some(boundary)) if may_nest => {
                let (mut children, end) = self.multipart(body, boundary, depth, digest);
                if children.is_empty() {
                    children.push(self.placeholder(end.map_or(raw.len(), |d| d.content_end)));
                }
                (Kind::Multipart(children), end)
            }
            (None, _) if multipart => {
                // No usable boundary (or too deep): the content is not split.
                let end = self.leaf(body);
                let at = end.map_or(raw.len(), |d| d.content_end);
                (Kind::Multipart(vec![self.placeholder(at)]), end)
            }
            (None, _) if message && may_nest => {
                let (message, end) = self.entity(body, depth + 1, false);
                (Kind::Message(message), end)
            }
            (None, _) if message => {
                // Too deep: the encapsulated message is not parsed.
                let end = self.leaf(body);
                (Kind::Message(self.placeholder(body)), end)
            }
            (None, _) => (Kind::Leaf, self.leaf(body)),
        };
        let part = &mut self.parts[index as usize];
        part.kind = kind;
        part.end = end.map_or(raw.len(), |d| d.content_end);
        debug_assert!(part.start <= part.body && part.body <= part.end);
        (index, end)
    }

    /// Reads a header block from `start`: returns where the content begins, and the delimiter
    /// when one comes before the blank line (the header, and the part, end there).
    fn header(&self, start: usize) -> (usize, Option<Delimiter>) {
        let raw = self.raw;
        let mut line = start;
        while line < raw.len() {
            let rest = &raw[line..];
            if rest[0] == b'\n' {
                return (line + 1, None);
            }
            if rest.starts_with(b"\r\n") {
                return (line + 2, None);
            }
            if rest.starts_with(b"--")
                && let Some(delimiter) = self.delimiter_at(start, line)
            {
                return (delimiter.content_end, Some(delimiter));
            }
            line = header::line_end(raw, line);
        }
        (raw.len(), None)
    }

    /// Content that is not split: it runs to the next delimiter of an enclosing multipart.
    fn leaf(&self, body: usize) -> Option<Delimiter> {
        self.next_delimiter(body, body)
    }

    /// The body parts of a multipart whose content starts at `body`; returns them and the
    /// delimiter of an enclosing multipart that ended this one (after its epilogue, if any).
    fn multipart(
        &mut self,
        body: usize,
        boundary: Cow<'a, [u8]>,
        depth: usize,
        digest: bool,
    ) -> (Vec<u32>, Option<Delimiter>) {
        self.boundaries.push(boundary);
        let level = self.boundaries.len() - 1;
        let mut children = Vec::new();
        // The preamble runs to the first delimiter.
        let mut next = self.next_delimiter(body, body);
        let end = loop {
            let Some(delimiter) = next else {
                break None;
            };
            if delimiter.level < level {
                // An enclosing multipart's delimiter: this one had no close delimiter.
                break Some(delimiter);
            }
            debug_assert_eq!(delimiter.level, level);
            if delimiter.close || self.parts.len() >= PARTS_MAX {
                // The epilogue runs to a delimiter of an enclosing multipart. When there is no
                // epilogue, the close delimiter's line end is the CRLF of that delimiter
                // (RFC 2046 §5.1.1 grammar: `close-delimiter [CRLF epilogue]` then
                // `CRLF dash-boundary`), so this multipart ends right after `--boundary--`.
                self.boundaries.pop();
                let end = self.next_delimiter(delimiter.after, delimiter.line_end);
                return (children, end);
            }
            let (child, child_end) = self.entity(delimiter.after, depth + 1, digest);
            children.push(child);
            next = child_end;
        };
        self.boundaries.pop();
        (children, end)
    }

    /// An empty text/plain part at `at`, standing in for the body parts of a multipart that
    /// has none (Dovecot reports the same, so clients see a valid BODYSTRUCTURE).
    fn placeholder(&mut self, at: usize) -> u32 {
        let index = self.parts.len() as u32;
        self.parts.push(Part { start: at, body: at, end: at, content_type: None, in_digest: false, kind: Kind::Leaf });
        index
    }

    /// The first delimiter line at or after `from` (a line start), for the boundaries in force.
    /// The content it ends does not end before `floor`.
    fn next_delimiter(&self, from: usize, floor: usize) -> Option<Delimiter> {
        if self.boundaries.is_empty() {
            return None;
        }
        let raw = self.raw;
        let mut line = from;
        while line < raw.len() {
            if let Some(delimiter) = self.delimiter_at(floor, line) {
                return Some(delimiter);
            }
            line += self.delimiter_start.find(&raw[line..])? + 1;
        }
        None
    }

    /// The delimiter on the line starting at `line`, if it is one. The content it ends does not
    /// end before `floor` (where that content starts, normally).
    fn delimiter_at(&self, floor: usize, line: usize) -> Option<Delimiter> {
        let raw = self.raw;
        let after_dashes = raw[line..].strip_prefix(b"--")?;
        let mut best: Option<(usize, usize)> = None;
        for (level, boundary) in self.boundaries.iter().enumerate().rev() {
            if after_dashes.starts_with(boundary) && best.is_none_or(|(_, len)| boundary.len() > len) {
                best = Some((level, boundary.len()));
            }
        }
        let (level, len) = best?;
        let close = after_dashes[len..].starts_with(b"--");
        let mut content_end = line;
        if line > floor && raw[line - 1] == b'\n' {
            content_end = line - 1;
            if content_end > floor && raw[content_end - 1] == b'\r' {
                content_end -= 1;
            }
        }
        let after = header::line_end(raw, line);
        let mut line_end = after;
        if line_end > line && raw[line_end - 1] == b'\n' {
            line_end -= 1;
            if line_end > line && raw[line_end - 1] == b'\r' {
                line_end -= 1;
            }
        }
        Some(Delimiter { content_end, line_end, after, level, close })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (start, body, end) of every part, in document order.
    fn offsets(raw: &[u8]) -> Vec<(usize, usize, usize)> {
        Tree::parse(raw).parts.iter().map(|p| (p.start, p.body, p.end)).collect()
    }

    fn contents(raw: &[u8]) -> Vec<String> {
        let tree = Tree::parse(raw);
        tree.parts.iter().map(|p| String::from_utf8_lossy(p.content(raw)).into_owned()).collect()
    }

    #[test]
    fn a_message_without_blank_line_is_all_header() {
        assert_eq!(offsets(b"Subject: x\r\n"), [(0, 12, 12)]);
        assert_eq!(header_end(b"Subject: x\r\n"), 12);
    }

    #[test]
    fn an_empty_message_is_one_empty_part() {
        assert_eq!(offsets(b""), [(0, 0, 0)]);
    }

    #[test]
    fn the_line_end_before_a_delimiter_belongs_to_the_delimiter() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
                    preamble\r\n--b\r\n\r\none\r\n--b\r\nX: y\r\n\r\ntwo\r\n\r\n--b--\r\nepilogue\r\n";
        assert_eq!(contents(raw)[1..], ["one", "two\r\n"]);
        let tree = Tree::parse(raw);
        assert_eq!(tree.parts[0].end, raw.len());
    }

    #[test]
    fn a_nested_multipart_ends_with_its_close_delimiter_when_there_is_no_epilogue() {
        let raw = b"Content-Type: multipart/mixed; boundary=out\r\n\r\n\
                    --out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n\
                    --in\r\n\r\ninner\r\n--in--\r\n--out\r\n\r\nsecond\r\n--out--\r\n";
        let tree = Tree::parse(raw);
        assert!(tree.parts[1].content(raw).ends_with(b"inner\r\n--in--"));
        let with_epilogue = b"Content-Type: multipart/mixed; boundary=out\r\n\r\n\
                    --out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n\
                    --in\r\n\r\ninner\r\n--in--\r\nepilogue\r\n--out--\r\n";
        let tree = Tree::parse(with_epilogue);
        assert!(tree.parts[1].content(with_epilogue).ends_with(b"--in--\r\nepilogue"));
    }

    #[test]
    fn a_delimiter_needs_only_to_begin_the_line() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
                    --b  trailing junk\r\n\r\none\r\n--b--junk\r\n";
        assert_eq!(contents(raw)[1..], ["one"]);
    }

    #[test]
    fn a_boundary_in_the_middle_of_a_line_is_content() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
                    --b\r\n\r\nnot --b here\r\n--b--\r\n";
        assert_eq!(contents(raw)[1..], ["not --b here"]);
    }

    #[test]
    fn the_longest_matching_boundary_wins() {
        let raw = b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n\
                    --ab\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n\
                    --abc\r\n\r\ninner\r\n--abc--\r\n--ab\r\n\r\nouter\r\n--ab--\r\n";
        let tree = Tree::parse(raw);
        assert_eq!(tree.parts.len(), 4);
        assert_eq!(tree.parts[2].content(raw), b"inner");
        assert_eq!(tree.parts[3].content(raw), b"outer");
    }

    #[test]
    fn an_outer_delimiter_ends_an_inner_multipart_without_close_delimiter() {
        let raw = b"Content-Type: multipart/mixed; boundary=out\r\n\r\n\
                    --out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n\
                    --in\r\n\r\ninner\r\n--out\r\n\r\nsecond\r\n--out--\r\n";
        let tree = Tree::parse(raw);
        assert_eq!(contents(raw)[2..], ["inner", "second"]);
        assert!(matches!(&tree.parts[0].kind, Kind::Multipart(c) if c == &[1, 3]));
        assert_eq!(tree.parts[1].content(raw), b"--in\r\n\r\ninner");
    }

    #[test]
    fn a_delimiter_before_the_blank_line_cuts_the_header_short() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
                    --b\r\nContent-Type: text/plain\r\n--b--\r\n";
        let tree = Tree::parse(raw);
        assert_eq!(tree.parts[1].header(raw), b"Content-Type: text/plain");
        assert_eq!(tree.parts[1].content(raw), b"");
    }

    #[test]
    fn a_header_cut_short_keeps_its_kind_with_empty_content() {
        let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n\
                    --a\r\nContent-Type: multipart/mixed; boundary=ab\r\n--ab\r\n\
                    Content-Type: message/rfc822\r\n--a--\r\n";
        let tree = Tree::parse(raw);
        assert!(matches!(&tree.parts[0].kind, Kind::Multipart(c) if c.len() == 2));
        assert!(matches!(&tree.parts[1].kind, Kind::Multipart(c) if c.len() == 1));
        let Kind::Multipart(children) = &tree.parts[0].kind else { unreachable!() };
        assert!(matches!(tree.part(children[1]).kind, Kind::Message(_)));
        assert_eq!(tree.part(children[1]).content(raw), b"");
    }

    #[test]
    fn a_multipart_without_delimiters_gets_one_empty_placeholder_part() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\nno parts here\r\n";
        let tree = Tree::parse(raw);
        assert!(matches!(&tree.parts[0].kind, Kind::Multipart(c) if c == &[1]));
        assert_eq!(tree.parts[1].start, raw.len());
        assert_eq!(tree.parts[1].end, raw.len());
        let no_boundary = b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n";
        assert!(matches!(&Tree::parse(no_boundary).parts[0].kind, Kind::Multipart(c) if c.len() == 1));
    }

    #[test]
    fn message_rfc822_content_is_a_nested_message() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
                    --b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--b--\r\n";
        let tree = Tree::parse(raw);
        assert!(matches!(tree.parts[1].kind, Kind::Message(2)));
        assert_eq!(tree.parts[1].content(raw), b"Subject: in\r\n\r\nbody");
        assert_eq!(tree.parts[2].header(raw), b"Subject: in\r\n\r\n");
        assert_eq!(tree.parts[2].content(raw), b"body");
    }

    #[test]
    fn parts_of_a_digest_default_to_message_rfc822() {
        let raw = b"Content-Type: multipart/digest; boundary=b\r\n\r\n\
                    --b\r\n\r\nSubject: in\r\n\r\nbody\r\n--b--\r\n";
        let tree = Tree::parse(raw);
        assert_eq!(tree.parts[1].media_type(), (&b"message"[..], &b"rfc822"[..]));
        assert!(matches!(tree.parts[1].kind, Kind::Message(2)));
    }

    #[test]
    fn bare_lf_line_ends_are_understood() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--\n";
        assert_eq!(contents(raw)[1..], ["one"]);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_not_split() {
        let mut raw = Vec::new();
        for _ in 0..NESTING_MAX + 5 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: deep\r\n\r\nbody\r\n");
        let tree = Tree::parse(&raw);
        // The deepest message/rfc822 part stays a message, with an empty placeholder inside.
        assert_eq!(tree.parts.len(), NESTING_MAX + 2);
        let deepest = &tree.parts[NESTING_MAX];
        assert!(matches!(deepest.kind, Kind::Message(_)));
        assert!(deepest.content(&raw).ends_with(b"Subject: deep\r\n\r\nbody\r\n"));
    }

    #[test]
    fn parts_beyond_the_limit_are_left_in_the_epilogue() {
        let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..PARTS_MAX + 50 {
            raw.extend_from_slice(b"--b\r\n\r\nx\r\n");
        }
        raw.extend_from_slice(b"--b--\r\n");
        let tree = Tree::parse(&raw);
        assert_eq!(tree.parts.len(), PARTS_MAX);
        assert_eq!(tree.parts[0].end, raw.len());
    }

    #[test]
    fn part_numbers_follow_rfc9051() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
                    --b\r\n\r\none\r\n\
                    --b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--b--\r\n";
        let tree = Tree::parse(raw);
        let n = |v: &[u32]| -> Vec<std::num::NonZeroU32> { v.iter().map(|&i| i.try_into().unwrap()).collect() };
        assert_eq!(tree.resolve(&n(&[1])), Some(1));
        assert_eq!(tree.resolve(&n(&[2])), Some(2));
        assert_eq!(tree.resolve(&n(&[2, 1])), Some(3));
        assert_eq!(tree.resolve(&n(&[2, 2])), None);
        assert_eq!(tree.resolve(&n(&[1, 1])), None);
        assert_eq!(tree.resolve(&n(&[3])), None);
        let single = Tree::parse(b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(single.resolve(&n(&[1])), Some(ROOT));
        assert_eq!(single.resolve(&n(&[2])), None);
    }
}
