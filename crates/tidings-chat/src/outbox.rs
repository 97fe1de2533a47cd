//! A connection's bounded outbound queue of hub events.
//!
//! Fan-out never waits: the hub pushes each event into every member's outbox and moves on. An
//! outbox that already holds its limit of undelivered events belongs to a consumer too slow to keep
//! up; it is closed with a reason, and the connection's task ends the connection with it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::Event;

/// The reason a slow consumer is dropped with (the wording IRC servers use).
pub const SENDQ_EXCEEDED: &str = "Max SendQ exceeded";

/// One connection's queue of events (shared by the hub, which pushes, and the connection's task,
/// which takes).
pub struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

struct State {
    queue: VecDeque<Arc<Event>>,
    closed: Option<String>,
}

/// What [`Outbox::recv`] gives.
#[derive(Debug)]
pub enum Received {
    /// Events, oldest first (at least one).
    Events(Vec<Arc<Event>>),
    /// The outbox was closed: the connection must end with this reason.
    Closed(String),
}

impl Outbox {
    /// An empty outbox holding at most `capacity` undelivered events (at least 1).
    pub fn new(capacity: usize) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(State { queue: VecDeque::new(), closed: None }),
            notify: Notify::new(),
            capacity: capacity.max(1),
        })
    }

    /// Queues `event`. Returns `false` (and closes the outbox with [`SENDQ_EXCEEDED`]) when the queue
    /// is full; an event pushed to a closed outbox is dropped.
    pub fn push(&self, event: Arc<Event>) -> bool {
        let mut state = self.state.lock().expect("outbox lock");
        if state.closed.is_some() {
            return true;
        }
        if state.queue.len() >= self.capacity {
            state.queue = VecDeque::new();
            state.closed = Some(SENDQ_EXCEEDED.into());
            drop(state);
            self.notify.notify_one();
            return false;
        }
        let was_empty = state.queue.is_empty();
        state.queue.push_back(event);
        drop(state);
        if was_empty {
            self.notify.notify_one();
        }
        true
    }

    /// Closes the outbox: the connection ends with `reason` once it next looks. Events still queued
    /// are dropped. The first reason given wins.
    pub fn close(&self, reason: &str) {
        let mut state = self.state.lock().expect("outbox lock");
        if state.closed.is_none() {
            state.closed = Some(reason.into());
            state.queue = VecDeque::new();
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Whether the outbox was closed, and why.
    pub fn closed(&self) -> Option<String> {
        self.state.lock().expect("outbox lock").closed.clone()
    }

    /// Takes every queued event without waiting (possibly none).
    pub fn take(&self) -> Received {
        let mut state = self.state.lock().expect("outbox lock");
        if let Some(reason) = &state.closed {
            return Received::Closed(reason.clone());
        }
        // Moves the buffer out: an idle connection's outbox holds no allocation.
        Received::Events(Vec::from(std::mem::take(&mut state.queue)))
    }

    /// Waits until there is an event or the outbox is closed. Cancel-safe.
    pub async fn recv(&self) -> Received {
        loop {
            let notified = self.notify.notified();
            match self.take() {
                Received::Events(events) if events.is_empty() => notified.await,
                other => return other,
            }
        }
    }

    /// Resolves once the outbox is closed (a slow consumer, or the hub ended the connection), so
    /// a connection blocked writing to its client can stop at once. Cancel-safe.
    pub async fn wait_closed(&self) {
        loop {
            let notified = self.notify.notified();
            if self.state.lock().expect("outbox lock").closed.is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.state.lock().expect("outbox lock").queue.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
