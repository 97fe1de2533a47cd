//! The network glue every tidings protocol shares: listeners that enforce connection limits,
//! TLS (configured or self-signed), streams that upgrade to TLS, graceful shutdown, and the driver
//! that runs a sans-I/O protocol core over a connection.
//!
//! The protocol crates own their state machines; this crate owns sockets and timers, and knows no
//! protocol.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tidings_net::{ShutdownController};
//! let controller = ShutdownController::new();
//! let token = controller.token(); // give one to each listener and session
//! drop(token);
//! assert!(controller.shutdown(std::time::Duration::from_secs(1)).await);
//! # Ok(()) }
//! ```

mod driver;
mod listener;
mod shutdown;
mod stream;
pub mod tls;

pub use driver::{DriveOptions, End, Handler, drive};
pub use listener::{Accepted, Admission, Admissions, ConnectionLimits, ListenOptions, PlaintextAuth, Service, serve};
pub use shutdown::{Shutdown, ShutdownController};
pub use stream::Stream;
pub use tokio_rustls::TlsAcceptor;
