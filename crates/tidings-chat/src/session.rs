//! The driver of line-based chat sessions (the line protocol and IRC): it frames input into
//! bounded lines, hands each to the front-end's session, writes what the session renders, and
//! delivers the connection's outbox events, until the session, the client, a timeout, a slow
//! consumer or shutdown ends it.
//!
//! Reads of plain TCP go through a per-thread scratch buffer, so an idle connection holds no read
//! buffer; only a partial line is kept (at most `line_bytes_max` octets).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use tidings_net::{Accepted, Stream};

use crate::hub::Conn;
use crate::outbox::{Outbox, Received};
use crate::{Event, Hub, SENDQ_EXCEEDED};

/// What the session wants after a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Write what is pending, then close; the reason is what others see (a quit message).
    Close(String),
}

/// A line-based chat session: the protocol state of one connection.
pub trait LineSession: Send {
    /// Handles one input line (without its line end; CR before LF is stripped).
    fn line(&mut self, line: &[u8]) -> impl Future<Output = Flow> + Send;

    /// Renders an outbox event into `out` (or nothing); returns [`Flow::Close`] to end the
    /// connection (the line protocol ends when its member is kicked).
    fn event(&mut self, event: &Event, out: &mut Vec<u8>) -> Flow;

    /// The input line was longer than the limit: the session's answer (e.g. IRC 417, or close).
    fn line_too_long(&mut self) -> Flow;

    /// The client sent nothing for the idle timeout (IRC pings first; others close).
    fn idle(&mut self) -> Flow;

    /// The silence after which [`LineSession::idle`] is called now, when it differs from
    /// [`LineOptions::idle_timeout`] (IRC: the registration timeout before registration, the PING
    /// timeout while a PONG is awaited). The default keeps the configured one.
    fn idle_timeout(&self) -> Option<Duration> {
        None
    }

    /// The outbox was closed (slow consumer): render the farewell into the output.
    fn closing(&mut self, reason: &str);

    /// Takes the octets the session produced since the last call.
    fn take_output(&mut self) -> Vec<u8>;

    /// The hub connection, once registered.
    fn conn(&self) -> Option<&Arc<Conn>>;
}

/// Timeouts and bounds of a line session.
#[derive(Clone, Debug)]
pub struct LineOptions {
    /// Longest input line, octets (line end excluded).
    pub line_bytes_max: usize,
    /// Silence after which [`LineSession::idle`] is called.
    pub idle_timeout: Duration,
    /// A write that takes none of our octets for this long ends the connection.
    pub write_timeout: Duration,
}

/// Longest wait for the client to take the last octets before a close (a slow consumer's last
/// lines may never be read).
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 16 * 1024]);
}

/// Input framing: bytes in, complete lines out, a partial line kept up to the limit.
#[derive(Default)]
struct Framer {
    partial: Vec<u8>,
    /// Skipping the rest of an over-long line.
    discarding: bool,
}

enum Framed {
    Line(Vec<u8>),
    TooLong,
}

impl Framer {
    fn feed(&mut self, mut bytes: &[u8], max: usize, out: &mut Vec<Framed>) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let piece = &bytes[..end];
            bytes = &bytes[end + 1..];
            if self.discarding {
                self.discarding = false;
                self.partial.clear();
                continue;
            }
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(piece);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > max {
                out.push(Framed::TooLong);
            } else {
                out.push(Framed::Line(line));
            }
        }
        if !self.discarding {
            self.partial.extend_from_slice(bytes);
            // One more octet is allowed for a CR that the LF will strip.
            if self.partial.len() > max + 1 {
                self.partial = Vec::new();
                self.discarding = true;
                out.push(Framed::TooLong);
            }
        }
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            self.partial = Vec::new();
        }
    }
}

enum Woke {
    Input(Option<Vec<Framed>>),
    Events(Received),
    Idle,
    Shutdown,
}

/// Runs `session` over `conn` until it ends; then the hub forgets its connection (others see it
/// quit with the reason).
pub async fn run<S: LineSession>(hub: &Hub, conn: Accepted, mut session: S, options: &LineOptions) {
    let Accepted { mut stream, id, mut shutdown, .. } = conn;
    let mut framer = Framer::default();
    let mut tls_buffer = Vec::new();
    let mut out = Vec::new();
    let mut last_input = tokio::time::Instant::now();
    // One idle timer for the connection, moved only when its deadline changes (input, or the
    // session's own timeout): a connection that only receives keeps its timer as it is.
    let idle = tokio::time::sleep_until(last_input + session.idle_timeout().unwrap_or(options.idle_timeout));
    tokio::pin!(idle);
    let reason: String = 'session: loop {
        out.extend(session.take_output());
        let outbox = session.conn().map(|c| Arc::clone(c.outbox()));
        if !out.is_empty() {
            match send(&mut stream, &mut out, options.write_timeout, outbox.as_deref()).await {
                Sent::All => {}
                Sent::Failed => break 'session "Write error".into(),
                // Too slow a reader: the outbox was closed while we waited for the client.
                Sent::OutboxClosed => continue,
            }
        }
        let deadline = last_input + session.idle_timeout().unwrap_or(options.idle_timeout);
        if idle.deadline() != deadline {
            idle.as_mut().reset(deadline);
        }
        let woke = tokio::select! {
            input = read(&mut stream, &mut framer, &mut tls_buffer, options.line_bytes_max) => Woke::Input(input),
            events = async { match &outbox { Some(o) => o.recv().await, None => std::future::pending().await } } => Woke::Events(events),
            () = &mut idle => Woke::Idle,
            _ = shutdown.recv() => Woke::Shutdown,
        };
        match woke {
            Woke::Input(None) => break "Connection closed".into(),
            Woke::Input(Some(lines)) => {
                last_input = tokio::time::Instant::now();
                for framed in lines {
                    let flow = match framed {
                        // Boxed: the handling future (joins, posts) is large and short-lived; an idle
                        // session should not carry room for it.
                        Framed::Line(line) => Box::pin(session.line(&line)).await,
                        Framed::TooLong => session.line_too_long(),
                    };
                    if let Flow::Close(reason) = flow {
                        out.extend(session.take_output());
                        break 'session reason;
                    }
                    // Pending output is written between lines, so a client that sends many lines
                    // without reading is held back by its own socket.
                    out.extend(session.take_output());
                    // Events the line caused (or that came meanwhile) go out before the next line's
                    // replies, so a client sees them in the order they happened.
                    if let Some(outbox) = session.conn().map(|c| Arc::clone(c.outbox())) {
                        match outbox.take() {
                            Received::Events(events) => {
                                for event in events {
                                    if let Flow::Close(reason) = session.event(&event, &mut out) {
                                        break 'session reason;
                                    }
                                }
                            }
                            Received::Closed(reason) => {
                                session.closing(&reason);
                                out.extend(session.take_output());
                                break 'session reason;
                            }
                        }
                    }
                    if out.len() >= tidings_core::OUTPUT_BYTES_HIGH_WATER {
                        let outbox = session.conn().map(|c| Arc::clone(c.outbox()));
                        match send(&mut stream, &mut out, options.write_timeout, outbox.as_deref()).await {
                            Sent::All => {}
                            Sent::Failed => break 'session "Write error".into(),
                            Sent::OutboxClosed => continue 'session,
                        }
                    }
                }
            }
            Woke::Events(Received::Events(events)) => {
                for event in events {
                    if let Flow::Close(reason) = session.event(&event, &mut out) {
                        break 'session reason;
                    }
                }
            }
            Woke::Events(Received::Closed(reason)) => {
                session.closing(&reason);
                out.extend(session.take_output());
                break reason;
            }
            Woke::Idle => {
                last_input = tokio::time::Instant::now();
                if let Flow::Close(reason) = session.idle() {
                    out.extend(session.take_output());
                    break reason;
                }
            }
            Woke::Shutdown => {
                session.closing("Server shutting down");
                out.extend(session.take_output());
                break "Server shutting down".into();
            }
        }
    };
    debug!(id, reason, "chat session ended");
    // The others learn at once; then the client gets its last lines, unless it is the slow
    // consumer that took nothing for so long that its outbox overflowed.
    if let Some(conn) = session.conn() {
        hub.disconnect(conn, &reason);
    }
    if reason != SENDQ_EXCEEDED {
        out.extend(session.take_output());
        if !out.is_empty() {
            let _ = write(&mut stream, &mut out, FAREWELL_TIMEOUT.min(options.write_timeout)).await;
        }
        let _ = tokio::time::timeout(FAREWELL_TIMEOUT, stream.shutdown()).await;
    }
}

/// Reads once and frames what came; `None` at end of input or on an error. Cancel-safe.
async fn read(stream: &mut Stream, framer: &mut Framer, tls_buffer: &mut Vec<u8>, max: usize) -> Option<Vec<Framed>> {
    let mut lines = Vec::new();
    match stream {
        Stream::Plain(tcp) => loop {
            tcp.readable().await.ok()?;
            let read = SCRATCH.with_borrow_mut(|scratch| match tcp.try_read(scratch) {
                Ok(0) => Some(false),
                Ok(n) => {
                    framer.feed(&scratch[..n], max, &mut lines);
                    Some(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                Err(_) => Some(false),
            });
            match read {
                Some(true) => return Some(lines),
                Some(false) => return None,
                None => continue,
            }
        },
        Stream::Tls(tls) => {
            if tls_buffer.is_empty() {
                tls_buffer.resize(16 * 1024, 0);
            }
            match tls.read(tls_buffer).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    framer.feed(&tls_buffer[..n], max, &mut lines);
                    Some(lines)
                }
            }
        }
    }
}

enum Sent {
    All,
    Failed,
    OutboxClosed,
}

/// [`write`], cut short when `outbox` is closed meanwhile (what was not written is dropped: the
/// connection is about to end with the outbox's reason).
async fn send(stream: &mut Stream, out: &mut Vec<u8>, timeout: Duration, outbox: Option<&Outbox>) -> Sent {
    let Some(outbox) = outbox else {
        return if write(stream, out, timeout).await { Sent::All } else { Sent::Failed };
    };
    tokio::select! {
        written = write(stream, out, timeout) => if written { Sent::All } else { Sent::Failed },
        () = outbox.wait_closed() => {
            *out = Vec::new();
            Sent::OutboxClosed
        }
    }
}

/// Writes and empties `out`; false when the client is gone or takes nothing for `timeout`.
///
/// Cleartext TCP first writes without waiting: a client that keeps up has room in its socket
/// buffer, and the write is then one system call with no timer set (the fan-out's common case).
/// Only what the socket does not take waits, under `timeout`.
async fn write(stream: &mut Stream, out: &mut Vec<u8>, timeout: Duration) -> bool {
    let mut sent = 0;
    if let Stream::Plain(tcp) = stream {
        while sent < out.len() {
            match tcp.try_write(&out[sent..]) {
                Ok(0) => return false,
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
        if sent == out.len() {
            // Nothing is buffered in user space for cleartext TCP: there is nothing to flush.
            *out = Vec::new();
            return true;
        }
    }
    while sent < out.len() {
        match tokio::time::timeout(timeout, stream.write(&out[sent..])).await {
            Ok(Ok(n)) if n > 0 => sent += n,
            _ => return false,
        }
    }
    *out = Vec::new();
    matches!(tokio::time::timeout(timeout, stream.flush()).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&[u8]], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut framer = Framer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, max, &mut out);
        }
        out.into_iter()
            .map(|f| match f {
                Framed::Line(l) => Some(l),
                Framed::TooLong => None,
            })
            .collect()
    }

    #[test]
    fn lines_split_across_reads_and_crlf_stripped() {
        assert_eq!(
            frame(&[b"JOIN a", b" b\r\nhel", b"lo\n"], 10),
            vec![Some(b"JOIN a b".to_vec()), Some(b"hello".to_vec())]
        );
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_skipped() {
        assert_eq!(frame(&[b"0123456789abc", b"def", b"gh\nok\n"], 10), vec![None, Some(b"ok".to_vec())]);
        assert_eq!(frame(&[b"0123456789abc\nok\n"], 10), vec![None, Some(b"ok".to_vec())]);
        assert_eq!(frame(&[b"0123456789\r\n"], 10), vec![Some(b"0123456789".to_vec())]);
    }
}
