//! Runs a sans-I/O protocol core ([`SessionCore`]) over a connection.
//!
//! The core decides everything; the driver only moves bytes, keeps the clock (read and write
//! timeouts), performs the core's requests through a [`Handler`], upgrades to TLS when asked, and
//! passes the shutdown signal on when the core is between commands.

use std::future::Future;
use std::time::Duration;

use tidings_core::{SessionCore, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::{Accepted, Stream};

/// Performs a core's requests (store reads and writes, password checks).
pub trait Handler<C: SessionCore> {
    /// Performs `request` and returns the answer for the core.
    fn handle(&mut self, request: C::Request) -> impl Future<Output = C::Response> + Send;

    /// Waits for the next notice for this session (news from elsewhere in the server). The
    /// default never yields one.
    fn next_notice(&mut self) -> impl Future<Output = C::Notice> + Send {
        std::future::pending()
    }

    /// The core closed the session; called before its last reply is sent, so that what the
    /// session held (a POP3 maildrop lock) is free by the time the client reads that reply.
    fn on_close(&mut self) {}
}

/// Per-connection I/O settings.
#[derive(Clone)]
pub struct DriveOptions {
    /// Longest wait for the client's next octets between commands.
    pub idle_timeout: Duration,
    /// Longest wait for the next octets of message content ([`SessionCore::in_content`]).
    pub content_timeout: Duration,
    /// Longest a client may go without taking any of the octets we send; then the connection
    /// is dropped.
    pub write_timeout: Duration,
    /// Acceptor for STARTTLS / STLS; `None` when no certificate is loaded.
    pub tls: Option<TlsAcceptor>,
    /// Octets read per read call on a TLS connection (plain TCP reads use a per-thread buffer).
    pub read_buffer_bytes: usize,
    /// Longest a STARTTLS handshake may take.
    pub handshake_timeout: Duration,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The core closed the session (QUIT, too many errors, timeout, shutdown).
    Closed,
    /// The client went away or an I/O error or write timeout ended it.
    Dropped,
}

/// Runs `core` over `conn` until it closes.
pub async fn drive<C, H>(conn: Accepted, core: &mut C, handler: &mut H, options: &DriveOptions) -> End
where
    C: SessionCore,
    H: Handler<C>,
{
    let Accepted { mut stream, id, mut shutdown, .. } = conn;
    // Only a TLS stream needs a buffer of its own; plain TCP reads into the thread's scratch.
    let mut tls_buffer = Vec::new();
    let mut read_deadline = None;
    loop {
        let next = core.poll();
        for line in core.take_transcript() {
            debug!(target: "tidings::transcript", "[{id}] {line}");
        }
        match next {
            Step::NeedInput => {
                if !flush(&mut stream, core, options).await {
                    return End::Dropped;
                }
                if core.is_idle() && shutdown.is_signalled() {
                    core.shutdown();
                    continue;
                }
                let idle = core.is_idle();
                // One deadline per wait for the client: notices do not extend it.
                let read_timeout = if core.in_content() { options.content_timeout } else { options.idle_timeout };
                let deadline = *read_deadline.get_or_insert_with(|| tokio::time::Instant::now() + read_timeout);
                let read = tokio::time::timeout_at(
                    deadline,
                    read_into(&mut stream, core, &mut tls_buffer, options.read_buffer_bytes),
                );
                let woke = tokio::select! {
                    r = read => Woke::Read(r),
                    _ = shutdown.recv(), if idle => Woke::Shutdown,
                    notice = handler.next_notice() => Woke::Notice(notice),
                };
                if !matches!(woke, Woke::Notice(_)) {
                    read_deadline = None;
                }
                match woke {
                    Woke::Shutdown => core.shutdown(),
                    Woke::Notice(notice) => core.notice(notice),
                    Woke::Read(Err(_elapsed)) => core.timeout(),
                    Woke::Read(Ok(Read::Eof)) => core.eof(),
                    Woke::Read(Ok(Read::Fed)) => {}
                }
            }
            Step::Flush => {
                if !flush(&mut stream, core, options).await {
                    return End::Dropped;
                }
            }
            Step::Request(request) => {
                let response = handler.handle(request).await;
                core.resolve(response);
            }
            Step::StartTls => {
                if !flush(&mut stream, core, options).await {
                    return End::Dropped;
                }
                let Some(acceptor) = options.tls.as_ref() else {
                    debug!("[{id}] core asked for TLS without an acceptor");
                    return End::Dropped;
                };
                match tokio::time::timeout(options.handshake_timeout, stream.upgrade(acceptor)).await {
                    Ok(Ok(tls)) => {
                        stream = tls;
                        core.tls_established();
                    }
                    Ok(Err(e)) => {
                        debug!("[{id}] TLS handshake failed: {e}");
                        return End::Dropped;
                    }
                    Err(_) => return End::Dropped,
                }
            }
            Step::Close => {
                handler.on_close();
                let flushed = flush(&mut stream, core, options).await;
                let _ = tokio::time::timeout(options.write_timeout, stream.shutdown()).await;
                return if flushed { End::Closed } else { End::Dropped };
            }
        }
    }
}

/// What ended a wait for input.
enum Woke<N> {
    Read(Result<Read, tokio::time::error::Elapsed>),
    Shutdown,
    Notice(N),
}

/// What one read did.
enum Read {
    /// Bytes were read and fed to the core.
    Fed,
    /// The client closed, or the connection failed.
    Eof,
}

thread_local! {
    /// Per-thread read buffer for plain TCP: bytes go from it straight into the core (which keeps
    /// only what it has not processed), so an idle connection holds no read buffer at all.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SCRATCH_BYTES]);
}

const SCRATCH_BYTES: usize = 64 * 1024;

/// Reads once from `stream` and feeds what came to `core`. Cancel-safe: nothing is lost if the
/// future is dropped while waiting.
async fn read_into<C: SessionCore>(
    stream: &mut Stream,
    core: &mut C,
    tls_buffer: &mut Vec<u8>,
    tls_bytes: usize,
) -> Read {
    match stream {
        Stream::Plain(tcp) => loop {
            if tcp.readable().await.is_err() {
                return Read::Eof;
            }
            // No await between the read and the feed, so the thread's scratch cannot be shared.
            let read = SCRATCH.with_borrow_mut(|scratch| match tcp.try_read(scratch) {
                Ok(0) => Some(Read::Eof),
                Ok(n) => {
                    core.feed(&scratch[..n]);
                    Some(Read::Fed)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                Err(_) => Some(Read::Eof),
            });
            if let Some(read) = read {
                return read;
            }
        },
        Stream::Tls(tls) => {
            if tls_buffer.is_empty() {
                tls_buffer.resize(tls_bytes.max(512), 0);
            }
            match tls.read(tls_buffer).await {
                Ok(0) | Err(_) => Read::Eof,
                Ok(n) => {
                    core.feed(&tls_buffer[..n]);
                    Read::Fed
                }
            }
        }
    }
}

/// Writes the core's pending output; false when the client is gone or stops reading. The write
/// timeout bounds a stall, not the whole write: a slow reader that keeps taking octets is served.
async fn flush<C: SessionCore>(stream: &mut Stream, core: &mut C, options: &DriveOptions) -> bool {
    let out = core.take_output();
    let mut sent = 0;
    while sent < out.len() {
        match tokio::time::timeout(options.write_timeout, stream.write(&out[sent..])).await {
            Ok(Ok(n)) if n > 0 => sent += n,
            _ => return false,
        }
    }
    matches!(tokio::time::timeout(options.write_timeout, stream.flush()).await, Ok(Ok(())))
}
