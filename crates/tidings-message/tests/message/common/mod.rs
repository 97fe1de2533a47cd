//! Helpers shared by the integration tests: messages written with `\n` stored with CRLF,
//! sections written as in a FETCH command, results written as a server sends them.

#![allow(dead_code)]

use std::num::NonZeroU32;

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::{CommandCodec, ResponseCodec};
use tidings_message::Message;

/// `text` with every LF made CRLF, as the server stores messages.
pub fn crlf(text: &str) -> Vec<u8> {
    crlf_bytes(text.as_bytes())
}

pub fn crlf_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    let mut previous = 0;
    for &byte in bytes {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// The section of `BODY[spec]`, parsed as the IMAP layer would get it from a FETCH command.
pub fn section(spec: &str) -> Section<'static> {
    let command = format!("a FETCH 1 BODY[{spec}]\r\n");
    let (_, command) = CommandCodec::default()
        .decode_static(command.as_bytes())
        .unwrap_or_else(|e| panic!("BODY[{spec}] does not parse: {e:?}"));
    let CommandBody::Fetch { macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names), .. } =
        command.body
    else {
        panic!("not a FETCH");
    };
    match names.into_iter().next() {
        Some(MessageDataItemName::BodyExt { section: Some(section), .. }) => section,
        other => panic!("BODY[{spec}] is {other:?}"),
    }
}

/// BODY[spec] of `raw` as text (`None`: no such part).
pub fn fetch(raw: &[u8], spec: &str) -> Option<String> {
    let message = Message::parse(raw);
    let section = if spec.is_empty() { None } else { Some(section(spec)) };
    message.section(section.as_ref()).map(|octets| String::from_utf8_lossy(&octets).into_owned())
}

/// A part number written `1.2.3`.
pub fn part(number: &str) -> Vec<NonZeroU32> {
    if number.is_empty() {
        return Vec::new();
    }
    number.split('.').map(|n| n.parse().expect("a part number")).collect()
}

/// One FETCH data item as a server writes it (`BODYSTRUCTURE (...)`).
pub fn write_item(item: MessageDataItem<'static>) -> String {
    let response = Response::Data(Data::Fetch { seq: NonZeroU32::MIN, items: item.into() });
    let bytes = ResponseCodec::default().encode(&response).dump();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let inner = text.strip_prefix("* 1 FETCH (").and_then(|t| t.strip_suffix(")\r\n")).expect("a FETCH response");
    inner.to_owned()
}

/// The BODYSTRUCTURE of `raw` as a server writes it (without the `BODYSTRUCTURE ` name).
pub fn body_structure(raw: &[u8]) -> String {
    let item = MessageDataItem::BodyStructure(Message::parse(raw).body_structure(true));
    write_item(item)["BODYSTRUCTURE ".len()..].to_owned()
}

/// The BODY of `raw` as a server writes it (without the `BODY ` name).
pub fn body(raw: &[u8]) -> String {
    let item = MessageDataItem::Body(Message::parse(raw).body_structure(false));
    write_item(item)["BODY ".len()..].to_owned()
}

/// The ENVELOPE of `raw` as a server writes it (without the `ENVELOPE ` name).
pub fn envelope(raw: &[u8]) -> String {
    let item = MessageDataItem::Envelope(Message::parse(raw).envelope());
    write_item(item)["ENVELOPE ".len()..].to_owned()
}

/// Encodes a FETCH response with these items and decodes it back with imap-codec's client-side
/// parser: the response must parse, and to the same items.
pub fn round_trips(items: Vec<MessageDataItem<'static>>) -> Result<(), String> {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: items.try_into().map_err(|_| "no items".to_owned())?,
    });
    let bytes = ResponseCodec::default().encode(&response).dump();
    match ResponseCodec::default().decode(&bytes) {
        Ok(([], decoded)) => {
            let again = ResponseCodec::default().encode(&decoded).dump();
            if again == bytes {
                Ok(())
            } else {
                Err(format!(
                    "decodes differently:\n{}\n{}",
                    String::from_utf8_lossy(&bytes),
                    String::from_utf8_lossy(&again)
                ))
            }
        }
        other => Err(format!("does not decode ({other:?}): {}", String::from_utf8_lossy(&bytes))),
    }
}
