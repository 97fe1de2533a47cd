//! The shape every sans-I/O protocol session shares (SMTP, POP3, and the protocols to come).
//!
//! A session is a state machine with no socket, clock or thread: its driver feeds it the client's
//! octets, calls [`SessionCore::poll`] and does what the [`Step`] says: send the output and read,
//! send the output and go on, carry out a request and [`resolve`](SessionCore::resolve) it,
//! upgrade to TLS, or close. Timers
//! belong to the driver, which calls [`timeout`](SessionCore::timeout) when one fires. One driver
//! (in `tidings-net`) runs any protocol this way, and tests, fuzzers and simulations can drive a
//! session directly.

/// Pending output, in octets, past which a session stops running buffered commands and asks for
/// [`Step::Flush`]. One reply may exceed it (a large message); a pile of them may not.
pub const OUTPUT_BYTES_HIGH_WATER: usize = 256 * 1024;

/// What a session needs next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<R> {
    /// Send [`SessionCore::take_output`], then read and [`feed`](SessionCore::feed) (or report
    /// [`eof`](SessionCore::eof)).
    NeedInput,
    /// Carry out this request, then [`resolve`](SessionCore::resolve) it; nothing else may be
    /// called meanwhile.
    Request(R),
    /// Send the output, then poll again without reading: replies have piled up past
    /// [`OUTPUT_BYTES_HIGH_WATER`] while commands are still buffered. This is the backpressure
    /// that keeps a client who pipelines commands but does not read from growing the session's
    /// memory.
    Flush,
    /// Send the output, perform the TLS handshake, then call
    /// [`tls_established`](SessionCore::tls_established).
    StartTls,
    /// Send the output and close the connection. Final.
    Close,
}

/// A sans-I/O protocol session as its driver sees it.
pub trait SessionCore {
    /// Decisions the session asks the server for (check a password, read or store mail).
    type Request;
    /// The server's answers, one per request.
    type Response;
    /// News from outside the connection that the session may have to pass on (another session
    /// changed the selected mailbox, say). Protocols without any use `std::convert::Infallible`.
    type Notice;

    /// Processes buffered input until the driver must act.
    fn poll(&mut self) -> Step<Self::Request>;
    /// Octets read from the client, in order.
    fn feed(&mut self, input: &[u8]);
    /// The client closed its side (or the connection failed); the next poll is [`Step::Close`].
    fn eof(&mut self);
    /// The answer to the request the last poll returned.
    fn resolve(&mut self, response: Self::Response);
    /// The octets to send now (possibly none).
    fn take_output(&mut self) -> Vec<u8>;
    /// Transcript lines (`C: …` / `S: …`, secrets redacted) since the last call; empty unless the
    /// session was configured to record them.
    fn take_transcript(&mut self) -> Vec<String>;
    /// The driver's read timer fired: the session says goodbye and the next poll is close.
    fn timeout(&mut self);
    /// The server is stopping: the session says so and the next poll is close. Drivers call it
    /// only when [`is_idle`](SessionCore::is_idle), so that transactions in flight finish.
    fn shutdown(&mut self);
    /// Waiting for a command, with nothing half-received and no exchange in progress.
    fn is_idle(&self) -> bool;
    /// The TLS handshake that [`Step::StartTls`] asked for succeeded.
    fn tls_established(&mut self);
    /// News from outside the connection; the driver passes it on while it waits for input.
    /// The session may ask for a request at the next poll (IMAP IDLE reporting new mail).
    fn notice(&mut self, notice: Self::Notice);
    /// Receiving message content (SMTP DATA/BDAT) rather than commands; a driver may use a
    /// different read timeout then. Default: never.
    fn in_content(&self) -> bool {
        false
    }
}
