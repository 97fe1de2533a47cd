//! The loop of one WebSocket: reads frames and hands text to the [`Session`], delivers the hub's
//! events from the connection's outbox, pings, keeps the timeouts, and closes (RFC 6455 §7).
//!
//! Sending waits for the client: the frames one wake-up found are written before anything else
//! is done, each step (a frame taken into the write buffer, the flush) bounded by
//! `[web] ws_write_timeout_secs`, and the connection reads no new request while a
//! reply is pending, so a client that sends without reading is held back by its own socket.
//! Events that pile up meanwhile wait in the bounded outbox; past its limit the client is a slow
//! consumer and the socket is closed with 1008.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::debug;

use tidings_chat::{Event, Received, RenderKey, Renders};
use tidings_core::ChatMessage;
use tidings_net::Shutdown;

use super::api::{ErrorCode, Outgoing};
use super::session::{Flow, Session, close};
use crate::HttpConfig;

/// Longest close reason, octets: a control frame's payload is at most 125 octets, two of them
/// the status code (RFC 6455 §5.5).
const CLOSE_REASON_BYTES_MAX: usize = 123;

/// How long, after our close frame, the client may take to end the TCP connection.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// How the loop ended.
struct End {
    /// What the other members see (the quit reason).
    reason: String,
    /// The close frame to send, if the connection can still take one.
    close: Option<(u16, String)>,
}

impl End {
    fn closing(code: u16, reason: impl Into<String>) -> End {
        let reason = reason.into();
        End { close: Some((code, reason.clone())), reason }
    }

    fn gone(reason: &str) -> End {
        End { reason: reason.into(), close: None }
    }
}

enum Woke {
    Frame(Option<Result<Message, WsError>>),
    Events(Received),
    Mail(bool),
    Timer,
    Shutdown,
}

/// `reason` cut to fit a close frame, on a character boundary.
fn close_reason(reason: &str) -> Utf8Bytes {
    let mut end = reason.len().min(CLOSE_REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Utf8Bytes::from(reason[..end].to_owned())
}

/// The close a read error calls for, if the client can still be told.
fn read_error(e: &WsError, message_bytes_max: usize) -> End {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            End::closing(close::MESSAGE_TOO_BIG, format!("message too big: at most {message_bytes_max} octets"))
        }
        WsError::Capacity(_) => End::closing(close::MESSAGE_TOO_BIG, "message too big"),
        WsError::Utf8(_) => End::closing(close::INVALID_DATA, "text frame is not UTF-8"),
        WsError::Protocol(p) => End::closing(close::PROTOCOL_ERROR, format!("protocol error: {p}")),
        _ => End::gone("Connection closed"),
    }
}

/// Sends one frame within `timeout`; false when the client is gone or takes nothing for that long.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    frame: Message,
    timeout: Duration,
) -> bool {
    matches!(tokio::time::timeout(timeout, ws.send(frame)).await, Ok(Ok(())))
}

/// Frames a socket's pending list keeps room for between wake-ups (a larger one is let go).
const FRAMES_KEPT: usize = 16;

/// The renderer key of `message` frames (one rendering per message for every socket).
static MESSAGE_FRAMES: u8 = 0;

/// The `message` frame of room message `m`: serialized by the first socket that delivers it and
/// kept with the event (`renders`), so every member's socket sends the same octets.
fn message_frame(m: &ChatMessage, renders: &Renders) -> Utf8Bytes {
    let key = RenderKey { frontend: &MESSAGE_FRAMES as *const u8 as usize, variant: 0 };
    renders.get_or_render(key, || Utf8Bytes::from(Outgoing::Message { message: m.into() }.to_json()))
}

/// Sends `frames` (JSON texts), then flushes: the frames of one wake-up share the socket's write
/// buffer and go out in as few writes as it takes. Each step (a frame taken, the flush) may wait
/// at most `timeout` for the client; a step the socket can take at once sets no timer. False when
/// the client is gone or stalls that long.
async fn send_all<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    frames: impl Iterator<Item = Utf8Bytes>,
    timeout: Duration,
) -> bool {
    for frame in frames {
        // A feed that is not ready at once has not taken its frame (readiness comes first), so
        // the clone, cheap for shared octets, is what is sent, once.
        let fed = match ws.feed(Message::Text(frame.clone())).now_or_never() {
            Some(fed) => fed,
            None => match tokio::time::timeout(timeout, ws.feed(Message::Text(frame))).await {
                Ok(fed) => fed,
                Err(_) => return false,
            },
        };
        if fed.is_err() {
            return false;
        }
    }
    let flushed = match ws.flush().now_or_never() {
        Some(flushed) => flushed,
        None => match tokio::time::timeout(timeout, ws.flush()).await {
            Ok(flushed) => flushed,
            Err(_) => return false,
        },
    };
    flushed.is_ok()
}

/// Runs the WebSocket until the client, the session, a timeout, a slow consumer or shutdown ends
/// it; then the hub forgets the connection and the socket is closed.
pub async fn run<S>(mut ws: WebSocketStream<S>, mut session: Session, mut shutdown: Shutdown, config: &HttpConfig)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let write_timeout = Duration::from_secs(config.ws_write_timeout_secs);
    let ping_interval = Duration::from_secs(config.ws_ping_interval_secs);
    let idle_timeout = Duration::from_secs(config.ws_idle_timeout_secs);
    let started = Instant::now();
    let login_deadline = started + Duration::from_secs(config.login_timeout_secs);
    let mut last_input = started;
    let mut next_ping = started + ping_interval;
    let mut out = vec![session.hello()];
    let mut frames: Vec<Utf8Bytes> = Vec::new();
    // The account's mailbox changes, from login on (`mail` and `mailboxes` events).
    let mut mail: Option<tokio::sync::watch::Receiver<u64>> = None;
    // One timer for the connection's deadlines, moved only when the next deadline changes.
    let timer = tokio::time::sleep_until(next_ping.min(last_input + idle_timeout).min(login_deadline));
    tokio::pin!(timer);
    let end = 'session: loop {
        // Events (rendered as they are taken) and replies: one wake-up makes only one kind.
        frames.extend(out.drain(..).map(|frame| Utf8Bytes::from(frame.to_json())));
        if !frames.is_empty() && !send_all(&mut ws, frames.drain(..), write_timeout).await {
            break 'session End::gone("Write error");
        }
        if frames.capacity() > FRAMES_KEPT {
            // A burst's list is not kept for the socket's life.
            frames = Vec::new();
        }
        if mail.is_none() && session.conn().is_some() {
            mail = session.watch_mail().await;
        }
        let outbox = session.conn().map(|c| std::sync::Arc::clone(c.outbox()));
        let mut deadline = next_ping.min(last_input + idle_timeout);
        if outbox.is_none() {
            deadline = deadline.min(login_deadline);
        }
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        // Events first: those a request caused reach the client before the next request's reply.
        let woke = tokio::select! {
            biased;
            _ = shutdown.recv() => Woke::Shutdown,
            events = async {
                match &outbox {
                    Some(outbox) => outbox.recv().await,
                    None => std::future::pending().await,
                }
            } => Woke::Events(events),
            changed = async {
                match &mut mail {
                    Some(watcher) => watcher.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => Woke::Mail(changed),
            frame = ws.next() => Woke::Frame(frame),
            () = &mut timer => Woke::Timer,
        };
        match woke {
            Woke::Frame(None) => break End::gone("Connection closed"),
            Woke::Frame(Some(Err(e))) => {
                debug!(error = %e, "WebSocket read failed");
                break read_error(&e, config.ws_message_bytes_max);
            }
            Woke::Frame(Some(Ok(frame))) => {
                last_input = Instant::now();
                let flow = match frame {
                    Message::Text(text) => session.text(text.as_str(), &mut out).await,
                    Message::Binary(_) => session.binary(&mut out),
                    // The client's close: the library answers it; the stream then ends.
                    Message::Close(_) => {
                        let _ = tokio::time::timeout(write_timeout, ws.flush()).await;
                        break End::gone("Connection closed");
                    }
                    // Pings are answered by the library; pongs and pings only show the client is there.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
                };
                if let Flow::Close(code, reason) = flow {
                    break 'session End::closing(code, reason);
                }
            }
            Woke::Events(Received::Events(events)) => {
                for event in &events {
                    match event.as_ref() {
                        Event::Message(m, renders) if session.conn().is_some() => {
                            frames.push(message_frame(m, renders))
                        }
                        _ => frames.extend(session.event(event).map(|frame| Utf8Bytes::from(frame.to_json()))),
                    }
                }
            }
            Woke::Events(Received::Closed(reason)) => break End::closing(close::POLICY_VIOLATION, reason),
            Woke::Mail(true) => out.extend(session.mail_changed().await),
            // The store dropped the watcher (shutting down): no more mail events.
            Woke::Mail(false) => mail = None,
            Woke::Timer => {
                let now = Instant::now();
                if session.conn().is_none() && now >= login_deadline {
                    let message = format!("log in within {} seconds", config.login_timeout_secs);
                    out.push(Outgoing::error(None, ErrorCode::Unauthorized, message));
                    break End::closing(close::POLICY_VIOLATION, "login timeout");
                }
                if now >= last_input + idle_timeout {
                    break End::closing(close::GOING_AWAY, "idle timeout");
                }
                if now >= next_ping {
                    next_ping = now + ping_interval;
                    if !session.authorized() {
                        out.push(Outgoing::error(None, ErrorCode::Unauthorized, "the session has ended: log in again"));
                        break End::closing(close::POLICY_VIOLATION, "session ended");
                    }
                    if !send(&mut ws, Message::Ping(Default::default()), write_timeout).await {
                        break End::gone("Write error");
                    }
                }
            }
            Woke::Shutdown => break End::closing(close::GOING_AWAY, "Server shutting down"),
        }
    };
    debug!(reason = end.reason, "WebSocket session ended");
    session.end(&end.reason);
    if let Some((code, reason)) = end.close {
        frames.extend(out.drain(..).map(|frame| Utf8Bytes::from(frame.to_json())));
        let _ = send_all(&mut ws, frames.drain(..), write_timeout).await;
        let frame = CloseFrame { code: CloseCode::from(code), reason: close_reason(&reason) };
        let _ = send(&mut ws, Message::Close(Some(frame)), write_timeout).await;
    }
    linger(ws.get_mut()).await;
}

/// Ends our half of the TCP connection after the close frame, then reads (and drops) what the
/// client still sends until it closes too, for at most [`CLOSE_LINGER`]. Closing a socket with
/// unread input would reset it, and the client could lose our close frame.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) {
    let deadline = Instant::now() + CLOSE_LINGER;
    let _ = tokio::time::timeout_at(deadline, io.shutdown()).await;
    let mut scratch = [0u8; 1024];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, io.read(&mut scratch)).await {
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn chat_message(id: &str, body: &str) -> tidings_core::ChatMessage {
        tidings_core::ChatMessage {
            id: id.into(),
            room: tidings_core::RoomName::parse("#r").unwrap(),
            seq: 1,
            at_ms: 1_700_000_000_000,
            nick: "alice".into(),
            account: None,
            via: tidings_core::Frontend::Web,
            kind: tidings_core::MessageKind::Text,
            body: body.into(),
        }
    }

    #[test]
    fn a_message_frame_is_what_the_event_renders_and_is_kept_with_it() {
        let (a, b) = (chat_message("01A", "one"), chat_message("01B", "two"));
        let (renders_a, renders_b) = (Renders::default(), Renders::default());
        let rendered = |m: &ChatMessage| {
            super::super::api::event(&Event::Message(Arc::new(m.clone()), Renders::default()), 0).unwrap().to_json()
        };
        assert_eq!(message_frame(&a, &renders_a).as_str(), rendered(&a));
        assert_eq!(message_frame(&b, &renders_b).as_str(), rendered(&b));
        assert_eq!((renders_a.len(), renders_b.len()), (1, 1), "each event keeps its own frame");
        // A second member of the fan-out gets the kept frame, whatever it is asked for.
        assert_eq!(message_frame(&chat_message("01A", "changed"), &renders_a).as_str(), rendered(&a));
    }

    #[test]
    fn close_reasons_fit_a_control_frame_on_a_character_boundary() {
        assert_eq!(close_reason("short").as_str(), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= CLOSE_REASON_BYTES_MAX && cut.len() == 122, "{}", cut.len());
    }

    #[test]
    fn read_errors_map_to_close_codes() {
        let too_long = WsError::Capacity(CapacityError::MessageTooLong { size: 10, max_size: 5 });
        assert_eq!(read_error(&too_long, 5).close.map(|c| c.0), Some(close::MESSAGE_TOO_BIG));
        assert_eq!(read_error(&WsError::Utf8("x".into()), 5).close.map(|c| c.0), Some(close::INVALID_DATA));
        assert_eq!(read_error(&WsError::ConnectionClosed, 5).close, None);
    }
}
