//! Stored messages as the webmail API shows them: summaries for lists, whole messages with their
//! text, sanitised HTML and attachments, attachment downloads. Pure: octets in, JSON-ready values
//! out. Decoding (RFC 2047 words, charsets, transfer encodings, dates) is mail-parser's.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::Serialize;
use utoipa::ToSchema;

/// Characters of body text in a summary's `preview`.
pub const PREVIEW_CHARS: usize = 120;

/// Octets of a message parsed for its summary: a larger message is summarised from its first
/// this many octets (header, first text part; attachments beyond it are not seen).
pub const SUMMARY_PARSE_BYTES_MAX: usize = 256 * 1024;

/// A mailbox in an address field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MailAddress {
    /// The display name, decoded (RFC 2047), if any.
    pub name: Option<String>,
    /// `local@domain` (empty when the field had a group or a malformed entry without one).
    pub address: String,
}

/// A message in a list: what a message list or a search result shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    /// The folder it is in.
    pub folder: String,
    /// Its UID in the folder.
    pub uid: u32,
    /// The subject, decoded (empty when there is none).
    pub subject: String,
    /// The first author, if any.
    pub from: Option<MailAddress>,
    /// The `To:` recipients.
    pub to: Vec<MailAddress>,
    /// The `Date:` field, Unix seconds (the arrival time when the field is missing or unreadable).
    pub date: i64,
    /// Octets as stored.
    pub size: u64,
    /// `\Seen`.
    pub seen: bool,
    /// `\Flagged`.
    pub flagged: bool,
    /// `\Answered`.
    pub answered: bool,
    /// Whether it has attachments.
    pub has_attachments: bool,
    /// The start of its text, at most 120 characters, whitespace collapsed.
    pub preview: String,
}

/// The flags a summary or a message shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// `\Seen`.
    pub seen: bool,
    /// `\Flagged`.
    pub flagged: bool,
    /// `\Answered`.
    pub answered: bool,
}

/// One attachment of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AttachmentInfo {
    /// Its number, from 0, for the download path.
    pub index: usize,
    /// The file name the sender gave (or `attachment-N`).
    pub filename: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Decoded octets.
    pub size: usize,
}

/// A whole message as the reader shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MessageView {
    /// Its UID in the folder.
    pub uid: u32,
    /// The folder.
    pub folder: String,
    /// The subject, decoded.
    pub subject: String,
    /// The authors.
    pub from: Vec<MailAddress>,
    /// `To:`.
    pub to: Vec<MailAddress>,
    /// `Cc:`.
    pub cc: Vec<MailAddress>,
    /// `Reply-To:`.
    pub reply_to: Vec<MailAddress>,
    /// The `Date:` field, Unix seconds (the arrival time when missing).
    pub date: i64,
    /// `Message-ID:` without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To:` ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// `References:` ids, without angle brackets.
    pub references: Vec<String>,
    /// Octets as stored.
    pub size: u64,
    /// `\Seen` (true: reading marks it).
    pub seen: bool,
    /// `\Flagged`.
    pub flagged: bool,
    /// `\Answered`.
    pub answered: bool,
    /// The text/plain body, or text made from the HTML body.
    pub text: String,
    /// The HTML body, sanitised (no scripts, handlers, forms, frames or style elements; remote
    /// images removed unless allowed); null when the message has no HTML.
    pub html: Option<String>,
    /// Whether the HTML refers to remote images (removed from `html` unless allowed).
    pub has_remote_images: bool,
    /// The attachments.
    pub attachments: Vec<AttachmentInfo>,
}

/// One attachment's content for a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentContent {
    /// The file name.
    pub filename: String,
    /// `type/subtype` as the part declared it (text parts are UTF-8 after decoding: `; charset=utf-8`).
    pub content_type: String,
    /// Decoded octets.
    pub data: Vec<u8>,
}

/// HTML after [`sanitize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    /// The clean HTML (a fragment).
    pub html: String,
    /// Whether the input had `img` elements with remote (`http:`, `https:`, `//`) sources.
    pub has_remote_images: bool,
}

fn parse(raw: &[u8]) -> Option<mail_parser::Message<'_>> {
    MessageParser::default().parse(raw)
}

fn addresses(address: Option<&mail_parser::Address<'_>>) -> Vec<MailAddress> {
    address
        .map(|a| {
            a.iter()
                .map(|addr| MailAddress {
                    name: addr.name().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
                    address: addr.address().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(list) => list.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Whitespace collapsed to single spaces, cut to `chars` characters.
pub fn preview(text: &str, chars: usize) -> String {
    let mut out = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= chars {
            break;
        }
    }
    out.chars().take(chars).collect()
}

fn is_text_body(part: &mail_parser::MessagePart<'_>) -> bool {
    matches!(part.body, PartType::Text(_) | PartType::Html(_))
}

/// A list entry for a stored message (parsing at most [`SUMMARY_PARSE_BYTES_MAX`] octets of it).
pub fn summary(folder: &str, uid: u32, raw: &[u8], size: u64, internal_date: i64, flags: Seen) -> Summary {
    let cut = raw.len().min(SUMMARY_PARSE_BYTES_MAX);
    let message = parse(&raw[..cut]);
    let Some(message) = message else {
        return Summary {
            folder: folder.to_owned(),
            uid,
            subject: String::new(),
            from: None,
            to: Vec::new(),
            date: internal_date,
            size,
            seen: flags.seen,
            flagged: flags.flagged,
            answered: flags.answered,
            has_attachments: false,
            preview: String::new(),
        };
    };
    let text = message.body_text(0).filter(|_| message.text_part(0).is_some_and(is_text_body));
    Summary {
        folder: folder.to_owned(),
        uid,
        subject: message.subject().unwrap_or_default().to_owned(),
        from: addresses(message.from()).into_iter().next(),
        to: addresses(message.to()),
        date: message.date().map(|d| d.to_timestamp()).unwrap_or(internal_date),
        size,
        seen: flags.seen,
        flagged: flags.flagged,
        answered: flags.answered,
        has_attachments: message.attachment_count() > 0,
        preview: text.map(|t| preview(&t, PREVIEW_CHARS)).unwrap_or_default(),
    }
}

/// Whether `c` is a bidirectional formatting character (Unicode category Cf: the marks U+200E,
/// U+200F and U+061C, the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069),
/// which can make a file name display other than it is (`exe.txt` shown for `txt.exe`).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn attachment_name(part: &mail_parser::MessagePart<'_>, index: usize) -> String {
    let name = part.attachment_name().map(str::to_owned).or_else(|| {
        part.message().and_then(|m| m.subject()).map(|s| format!("{}.eml", s.chars().take(60).collect::<String>()))
    });
    // Only the last path component, without control characters or bidi controls.
    let name: String = name
        .as_deref()
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
        .unwrap_or("")
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." { format!("attachment-{}", index + 1) } else { name.to_owned() }
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    let declared = part.content_type().map(|ct| match ct.subtype() {
        Some(sub) => format!("{}/{}", ct.ctype(), sub),
        None => ct.ctype().to_owned(),
    });
    let fallback = match &part.body {
        PartType::Message(_) => "message/rfc822",
        PartType::Text(_) => "text/plain",
        PartType::Html(_) => "text/html",
        _ => "application/octet-stream",
    };
    let value = declared.unwrap_or_else(|| fallback.to_owned()).to_ascii_lowercase();
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
    match value.split_once('/') {
        Some((t, s)) if token(t) && token(s) => value,
        _ => fallback.to_owned(),
    }
}

/// The whole message for the reader; `None` when the octets are not a message at all.
pub fn view(
    uid: u32,
    folder: &str,
    raw: &[u8],
    internal_date: i64,
    flags: Seen,
    allow_images: bool,
) -> Option<MessageView> {
    let message = parse(raw)?;
    let text = message.body_text(0).map(Cow::into_owned).unwrap_or_default();
    let html = message.html_part(0).and_then(|p| match &p.body {
        PartType::Html(h) => Some(sanitize(h, allow_images)),
        _ => None,
    });
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| AttachmentInfo {
            index,
            filename: attachment_name(part, index),
            content_type: content_type(part),
            size: part.contents().len(),
        })
        .collect();
    Some(MessageView {
        uid,
        folder: folder.to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        from: addresses(message.from()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        reply_to: addresses(message.reply_to()),
        date: message.date().map(|d| d.to_timestamp()).unwrap_or(internal_date),
        message_id: message.message_id().map(str::to_owned),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        size: raw.len() as u64,
        seen: flags.seen,
        flagged: flags.flagged,
        answered: flags.answered,
        text,
        has_remote_images: html.as_ref().is_some_and(|h| h.has_remote_images),
        html: html.map(|h| h.html),
        attachments,
    })
}

/// What a reply or a forward takes from the original.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    /// `Message-ID:` with angle brackets.
    pub message_id: Option<String>,
    /// Its `References:` (or else `In-Reply-To:`) ids, with angle brackets.
    pub references: Vec<String>,
    /// Its attachments.
    pub attachments: Vec<AttachmentContent>,
}

/// The ids and attachments of a message that is answered or forwarded.
pub fn original(raw: &[u8]) -> Original {
    let Some(message) = parse(raw) else { return Original::default() };
    let bracket = |id: String| format!("<{id}>");
    let mut references: Vec<String> = ids(message.references()).into_iter().map(bracket).collect();
    if references.is_empty() {
        references = ids(message.in_reply_to()).into_iter().map(bracket).collect();
    }
    let attachments = (0..message.attachment_count()).filter_map(|i| attachment_of(&message, i)).collect();
    Original { message_id: message.message_id().map(|id| format!("<{id}>")), references, attachments }
}

fn attachment_of(message: &mail_parser::Message<'_>, index: usize) -> Option<AttachmentContent> {
    let part = message.attachment(u32::try_from(index).ok()?)?;
    let mut content_type = content_type(part);
    if matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
        content_type.push_str("; charset=utf-8");
    }
    Some(AttachmentContent { filename: attachment_name(part, index), content_type, data: part.contents().to_vec() })
}

/// Attachment `index` (from 0) of a message, decoded; `None` when there is no such attachment.
pub fn attachment(raw: &[u8], index: usize) -> Option<AttachmentContent> {
    attachment_of(&parse(raw)?, index)
}

/// The `Content-Type` a download is served with: the part's own type, except for types a browser
/// would run or render as a page of this origin (HTML, XML, SVG, JavaScript…), which become
/// `application/octet-stream`.
pub fn download_type(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let passive = essence.starts_with("image/") && essence != "image/svg+xml"
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
        || essence == "text/plain"
        || essence == "text/csv"
        || essence == "text/calendar"
        || essence == "application/pdf"
        || essence == "application/zip"
        || essence == "message/rfc822";
    if passive { content_type.to_owned() } else { "application/octet-stream".to_owned() }
}

/// `Content-Disposition: attachment` with the file name as an RFC 5987 `filename*` (UTF-8,
/// percent-encoded) and an ASCII `filename` fallback (RFC 6266 §4.3).
pub fn content_disposition(filename: &str) -> String {
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' { c } else { '_' })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The CSS properties a `style` attribute keeps: layout, text and colour only. None of them
/// takes a `url()` (no `background`, `background-image`, `border-image`, `list-style`, `content`,
/// `cursor`, `filter`, `mask`…), so a style cannot load anything.
pub const STYLE_PROPERTIES: &[&str] = &[
    "background-color",
    "border",
    "border-bottom",
    "border-bottom-color",
    "border-bottom-style",
    "border-bottom-width",
    "border-collapse",
    "border-color",
    "border-left",
    "border-left-color",
    "border-left-style",
    "border-left-width",
    "border-radius",
    "border-right",
    "border-right-color",
    "border-right-style",
    "border-right-width",
    "border-spacing",
    "border-style",
    "border-top",
    "border-top-color",
    "border-top-style",
    "border-top-width",
    "border-width",
    "caption-side",
    "clear",
    "color",
    "direction",
    "display",
    "float",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-height",
    "max-width",
    "min-height",
    "min-width",
    "overflow",
    "overflow-wrap",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "table-layout",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-overflow",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "word-break",
    "word-spacing",
    "word-wrap",
];

/// The URL schemes the sanitised HTML may use (`data` only for images, see [`sanitize`]).
const URL_SCHEMES: [&str; 4] = ["http", "https", "mailto", "data"];

/// What an attribute's URL is, judged on the scheme a URL parser sees (which drops tabs, line
/// breaks and leading C0 controls and spaces, so `d&#9;ata:` is `data:`).
#[derive(Debug, PartialEq, Eq)]
enum UrlKind {
    /// `http:` or `https:`.
    Remote,
    /// A `data:` URL of a raster image (`image/*` but not SVG).
    ImageData,
    /// Any other `data:` URL.
    OtherData,
    /// Another absolute URL (`mailto:`, …).
    Other,
    /// Relative, or not a URL.
    Unusable,
}

fn url_kind(value: &str) -> UrlKind {
    let Ok(url) = url::Url::parse(value) else { return UrlKind::Unusable };
    match url.scheme() {
        "http" | "https" => UrlKind::Remote,
        "data" => {
            // The path of a data: URL is `<media type>[;params][;base64],<data>`.
            let path = url.path();
            let media = path.split([',', ';']).next().unwrap_or("").trim().to_ascii_lowercase();
            match media.strip_prefix("image/") {
                Some(sub) if !sub.is_empty() && !sub.starts_with("svg") => UrlKind::ImageData,
                _ => UrlKind::OtherData,
            }
        }
        _ => UrlKind::Other,
    }
}

/// Cleans mail HTML with ammonia: no `script`, `style`, `iframe`, `object`, `embed`, `form` or
/// other active element (script and style contents dropped), no event handler attributes, only
/// `http:`, `https:` and `mailto:` URLs, no relative URLs; links get
/// `rel="noopener noreferrer"` and `target="_blank"`; `img` keeps `data:` sources of raster
/// images (`image/*`, not SVG; no other element or attribute keeps a `data:` URL), and remote
/// ones only when `allow_remote_images` (`cid:` images are dropped). URL schemes are judged as a
/// browser parses them. Presentational attributes stay; `style` attributes keep only
/// [`STYLE_PROPERTIES`], none of which can load anything.
pub fn sanitize(html: &str, allow_remote_images: bool) -> Sanitized {
    let remote = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&remote);
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["center", "font"])
        .add_clean_content_tags(["title", "noscript", "template"])
        .add_generic_attributes(["style", "align", "valign", "bgcolor", "width", "height", "dir"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes("table", ["border", "cellpadding", "cellspacing", "background"])
        .add_tag_attributes("td", ["background", "nowrap"])
        .set_tag_attribute_value("a", "target", "_blank")
        .link_rel(Some("noopener noreferrer"))
        .url_relative(ammonia::UrlRelative::Deny)
        .url_schemes(URL_SCHEMES.into_iter().collect())
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
        .strip_comments(true)
        .attribute_filter(move |element, attribute, value| {
            let url_attribute = matches!(attribute, "src" | "href" | "background" | "cite" | "srcset");
            if !url_attribute {
                return Some(value.into());
            }
            if attribute == "srcset" {
                return None;
            }
            let image = element == "img" && attribute == "src" || attribute == "background";
            match url_kind(value) {
                UrlKind::ImageData if element == "img" && attribute == "src" => Some(value.into()),
                UrlKind::ImageData | UrlKind::OtherData | UrlKind::Unusable => None,
                UrlKind::Remote if image => {
                    seen.store(true, Ordering::Relaxed);
                    allow_remote_images.then(|| value.into())
                }
                UrlKind::Other if image => None,
                UrlKind::Remote | UrlKind::Other => Some(value.into()),
            }
        });
    let html = builder.clean(html).to_string();
    Sanitized { html, has_remote_images: remote.load(Ordering::Relaxed) }
}

/// The Content-Security-Policy of the HTML view: a sandbox (no script, no forms, no same-origin
/// access), nothing loaded but inline styles and `data:` images, and remote images only when
/// allowed; framable by this origin only.
pub fn html_view_policy(allow_images: bool) -> String {
    let images = if allow_images { "data: https: http:" } else { "data:" };
    format!(
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src {images}; frame-ancestors 'self'"
    )
}

/// A full HTML page around sanitised HTML, for the sandboxed frame.
pub fn html_page(clean: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"></head>\
         <body>{clean}</body></html>\n"
    )
}

/// Indexes `[start, end)` of page `page` (from 1) of `per_page` items out of `total`, counting
/// from the newest; empty past the last page.
pub fn page_range(total: usize, page: usize, per_page: usize) -> std::ops::Range<usize> {
    let start = page.saturating_sub(1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    start..end
}

/// Pages of `per_page` needed for `total` items (at least 1).
pub fn page_count(total: usize, per_page: usize) -> usize {
    total.div_ceil(per_page.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_styles_frames_and_forms_go_with_their_content() {
        let dirty = "<p>hi</p><script>alert(1)</script><style>p{color:red}</style>\
                     <iframe src=\"https://x.example/\"></iframe><form action=\"/x\"><input name=a></form>\
                     <object data=\"x.swf\"></object><embed src=\"x\"><b>bold</b>";
        let clean = sanitize(dirty, false).html;
        for gone in ["script", "alert", "<style", "color:red", "iframe", "form", "input", "object", "embed"] {
            assert!(!clean.contains(gone), "{gone} in {clean}");
        }
        assert!(clean.contains("<p>hi</p>") && clean.contains("<b>bold</b>"), "{clean}");
    }

    #[test]
    fn event_handlers_and_javascript_urls_are_removed() {
        let clean = sanitize(
            "<a href=\"javascript:alert(1)\" onclick=\"x()\">a</a><img src=x onerror=\"alert(1)\">\
             <div onmouseover=\"y()\" style=\"color: blue\">d</div><a href=\"JaVaScRiPt:alert(2)\">b</a>",
            false,
        )
        .html;
        for gone in ["javascript", "JaVaScRiPt", "onclick", "onerror", "onmouseover", "alert"] {
            assert!(!clean.contains(gone), "{gone} in {clean}");
        }
        assert!(clean.contains("style=\"color:blue\""), "{clean}");
    }

    #[test]
    fn data_urls_are_judged_as_a_browser_parses_them() {
        for sneaky in [
            "<a href=\"d&#9;ata:text/html,<script>alert(1)</script>\">x</a>",
            "<a href=\"&#1;data:text/html;base64,PHNjcmlwdD4=\">x</a>",
            "<a href=\"da&#10;ta:text/html,x\">x</a>",
            "<a href=\" DATA:text/html,x\">x</a>",
            "<img src=\"d&#9;ata:image/svg+xml;base64,PHN2Zz4=\">",
            "<img src=\"&#1;data:text/html,x\">",
            "<table background=\"data:image/png;base64,AA==\"><tr><td>x</td></tr></table>",
        ] {
            let clean = sanitize(sneaky, true).html;
            assert!(!clean.contains("ata:"), "{sneaky} gave {clean}");
        }
        let png = sanitize("<img src=\"d&#9;ata:image/png;base64,AA==\">", false).html;
        assert!(png.contains("src="), "a raster image stays: {png}");
        for scheme in ["ftp://x.example/", "tel:+1", "cid:a@b", "file:///etc/passwd"] {
            let clean = sanitize(&format!("<a href=\"{scheme}\">x</a>"), false).html;
            assert!(!clean.contains("href"), "{scheme}: {clean}");
        }
        assert!(sanitize("<a href=\"mailto:ta@example.org\">x</a>", false).html.contains("mailto:"));
    }

    #[test]
    fn styles_keep_no_property_that_can_load_anything() {
        let html = "<div style=\"color: red; background: url(https://t.example/a.gif); \
                    background-image: url('https://t.example/b.gif'); list-style-image: url(https://t.example/c); \
                    border-image: url(https://t.example/d) 30; cursor: url(https://t.example/e), auto; \
                    content: url(https://t.example/f); font-size: 12px\">x</div>";
        for allow in [false, true] {
            let clean = sanitize(html, allow).html;
            assert!(!clean.contains("t.example") && !clean.contains("url("), "{clean}");
            assert!(clean.contains("style=\"color:red;font-size:12px\""), "{clean}");
        }
        let escaped = sanitize("<p style=\"backgr\\ound: url(https://t.example/g)\">x</p>", true).html;
        assert!(!escaped.contains("t.example"), "{escaped}");
    }

    #[test]
    fn links_open_elsewhere_without_referrer() {
        let clean = sanitize("<a href=\"https://example.org/\" target=\"_self\">x</a>", false).html;
        assert!(clean.contains("rel=\"noopener noreferrer\""), "{clean}");
        assert!(clean.contains("target=\"_blank\"") && !clean.contains("_self"), "{clean}");
        assert!(clean.contains("href=\"https://example.org/\""), "{clean}");
        let relative = sanitize("<a href=\"/api/v1/session\">x</a>", false).html;
        assert!(!relative.contains("href"), "{relative}");
    }

    #[test]
    fn remote_images_are_blocked_unless_allowed() {
        let html = "<img src=\"https://tracker.example/p.gif\" alt=\"t\"><img src=\"//cdn.example/x.png\">\
                    <img src=\"cid:logo@x\"><img src=\"data:image/png;base64,iVBORw0KGgo=\">";
        let blocked = sanitize(html, false);
        assert!(blocked.has_remote_images);
        assert!(!blocked.html.contains("tracker.example") && !blocked.html.contains("cdn.example"), "{}", blocked.html);
        assert!(!blocked.html.contains("cid:"), "{}", blocked.html);
        assert!(blocked.html.contains("data:image/png"), "{}", blocked.html);
        let allowed = sanitize(html, true);
        assert!(
            allowed.has_remote_images && allowed.html.contains("https://tracker.example/p.gif"),
            "{}",
            allowed.html
        );
        assert!(!sanitize("<img src=\"data:image/png;base64,AA==\">", false).has_remote_images);
        let svg = sanitize("<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">", true).html;
        assert!(!svg.contains("svg"), "{svg}");
    }

    #[test]
    fn content_disposition_encodes_per_rfc_5987() {
        assert_eq!(content_disposition("a.pdf"), "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf");
        assert_eq!(
            content_disposition("Grüße \"x\".txt"),
            "attachment; filename=\"Gr__e _x_.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.txt"
        );
        assert!(content_disposition("a\r\nb").is_ascii() && !content_disposition("a\r\nb").contains('\n'));
    }

    #[test]
    fn active_types_download_as_octet_streams() {
        assert_eq!(download_type("image/png"), "image/png");
        assert_eq!(download_type("text/plain; charset=utf-8"), "text/plain; charset=utf-8");
        for active in ["text/html", "image/svg+xml", "application/xhtml+xml", "text/javascript", "application/xml"] {
            assert_eq!(download_type(active), "application/octet-stream", "{active}");
        }
    }

    #[test]
    fn paging_counts_from_the_newest_and_stops_at_the_end() {
        assert_eq!(page_range(10, 1, 3), 0..3);
        assert_eq!(page_range(10, 4, 3), 9..10);
        assert_eq!(page_range(10, 5, 3), 10..10);
        assert_eq!(page_range(0, 1, 50), 0..0);
        assert_eq!(page_range(5, usize::MAX, usize::MAX), 5..5);
        assert_eq!(page_count(10, 3), 4);
        assert_eq!(page_count(0, 3), 1);
        assert_eq!(page_count(9, 3), 3);
    }

    #[test]
    fn a_multipart_message_gives_text_html_and_attachments() {
        let raw = b"From: =?utf-8?q?Ann_M=C3=BCller?= <ann@example.org>\r\n\
            To: ta@example.org, Bob <bob@example.org>\r\n\
            Subject: =?utf-8?q?caf=C3=A9?=\r\n\
            Date: Tue, 1 Jul 2025 10:00:00 +0000\r\n\
            Message-ID: <m1@example.org>\r\n\
            Content-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n\
            --c\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello   there\r\nworld\r\n\
            --c\r\nContent-Type: text/html\r\n\r\n<p onclick=x>Hello</p><script>evil()</script>\r\n--c--\r\n\
            --b\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=\"../r.pdf\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n";
        let flags = Seen { seen: true, ..Seen::default() };
        let s = summary("INBOX", 3, raw, raw.len() as u64, 0, flags);
        assert_eq!(s.subject, "café");
        assert_eq!(s.from, Some(MailAddress { name: Some("Ann Müller".into()), address: "ann@example.org".into() }));
        assert_eq!(s.to.len(), 2);
        assert_eq!(s.date, 1_751_364_000);
        assert!(s.has_attachments && s.seen && !s.flagged);
        assert_eq!(s.preview, "Hello there world");
        let v = view(3, "INBOX", raw, 0, flags, false).unwrap();
        assert_eq!(v.message_id.as_deref(), Some("m1@example.org"));
        assert!(v.text.contains("Hello   there"));
        let html = v.html.unwrap();
        assert!(html.contains("Hello") && !html.contains("evil") && !html.contains("onclick"), "{html}");
        assert_eq!(v.attachments.len(), 1);
        assert_eq!(v.attachments[0].filename, "r.pdf");
        assert_eq!(v.attachments[0].content_type, "application/pdf");
        let a = attachment(raw, 0).unwrap();
        assert_eq!(a.data, b"%PDF");
        assert!(attachment(raw, 1).is_none());
        let o = original(raw);
        assert_eq!(o.message_id.as_deref(), Some("<m1@example.org>"));
        assert_eq!(o.attachments.len(), 1);
    }

    #[test]
    fn bidi_controls_leave_attachment_names() {
        // "invoice\u{202E}fdp.exe" shows as "invoiceexe.pdf".
        let raw = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
            --b\r\nContent-Type: application/octet-stream\r\n\
            Content-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe%E2%81%A6%E2%80%8F%D8%9C\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--b--\r\n";
        let v = view(1, "INBOX", raw.as_bytes(), 0, Seen::default(), false).unwrap();
        assert_eq!(v.attachments[0].filename, "invoicefdp.exe");
        assert_eq!(attachment(raw.as_bytes(), 0).unwrap().filename, "invoicefdp.exe");
        assert!(is_bidi_control('\u{2067}') && !is_bidi_control('\u{200D}') && !is_bidi_control('a'));
    }

    #[test]
    fn previews_collapse_whitespace_and_stop_at_the_limit() {
        assert_eq!(preview("a\r\n\r\n  b\tc", 120), "a b c");
        assert_eq!(preview(&"x ".repeat(200), 5), "x x x");
        assert_eq!(preview("", 5), "");
    }

    #[test]
    fn the_html_view_policy_sandboxes_and_loads_remote_images_only_when_allowed() {
        let strict = html_view_policy(false);
        assert!(strict.starts_with("sandbox") && !strict.contains("allow-scripts") && !strict.contains("https:"));
        assert!(strict.contains("frame-ancestors 'self'"));
        assert!(html_view_policy(true).contains("img-src data: https: http:"));
    }
}
