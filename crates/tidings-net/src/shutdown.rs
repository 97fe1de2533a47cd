//! Graceful shutdown: one signal to every session, and a wait until they have all ended.
//!
//! Each session holds a [`Shutdown`]; it learns of the signal through [`Shutdown::recv`] and, by
//! dropping its token when it ends, lets [`ShutdownController::shutdown`] know it is done.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Held by the server's main task: starts the shutdown and waits for the sessions.
pub struct ShutdownController {
    signal: watch::Sender<bool>,
    done_tx: mpsc::Sender<()>,
    done_rx: mpsc::Receiver<()>,
}

/// Held by every listener and session: tells it when to stop; its drop says it has stopped.
#[derive(Clone)]
pub struct Shutdown {
    signal: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
}

impl Default for ShutdownController {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownController {
    /// A controller with no sessions yet.
    pub fn new() -> ShutdownController {
        let (signal, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        ShutdownController { signal, done_tx, done_rx }
    }

    /// A token for a new listener or session.
    pub fn token(&self) -> Shutdown {
        Shutdown { signal: self.signal.subscribe(), _done: self.done_tx.clone() }
    }

    /// Signals every token, then waits until all are dropped or `grace` has passed. Returns
    /// whether every session ended within the grace period.
    pub async fn shutdown(self, grace: Duration) -> bool {
        let ShutdownController { signal, done_tx, mut done_rx } = self;
        let _ = signal.send(true);
        drop(done_tx);
        // recv() yields None once every Shutdown token (each holding a sender) is gone.
        tokio::time::timeout(grace, done_rx.recv()).await.is_ok()
    }
}

impl Shutdown {
    /// Whether the shutdown has been signalled.
    pub fn is_signalled(&self) -> bool {
        *self.signal.borrow()
    }

    /// Waits for the shutdown signal (returns at once if it was already given).
    pub async fn recv(&mut self) {
        // An error means the controller is gone, which also means: stop.
        let _ = self.signal.wait_for(|stop| *stop).await;
    }
}
