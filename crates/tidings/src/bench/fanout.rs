//! What the chat fan-out loads (`bench irc`, `bench ws`) share: the counters their sessions keep,
//! the deliveries the messages sent should make, and the run from the start gate to the report
//! (drain, collect, deliveries per second, server memory per connection).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{GateOpener, Latencies, Report, rss_kib, settle};

/// After the senders stop, how long deliveries may still arrive (seconds).
const DRAIN_SECS: u64 = 5;

/// One session's result: messages sent, deliveries received, latencies.
pub(super) type Outcome = (u64, u64, Latencies);

/// A fan-out load as given: C connections over R rooms (member i in room i mod R), each member
/// sending `rate` messages a second for `duration_secs`.
pub(super) struct Plan {
    /// The load's name in reports ("irc", "ws").
    pub load: &'static str,
    /// The server driven.
    pub server: SocketAddr,
    /// Connections (room members) in all.
    pub connections: usize,
    /// Rooms (channels) they are spread over.
    pub rooms: usize,
    /// Messages per second per member (0: none).
    pub rate: f64,
    /// How long members send, seconds.
    pub duration_secs: f64,
    /// The server's process, to read its memory before and after the connections.
    pub pid: Option<u32>,
    /// Whether the server sends a message to its sender too (the WebSocket API does, IRC without
    /// echo-message does not).
    pub sender_copy: bool,
}

impl Plan {
    /// # Errors
    /// No connection or room, more rooms than connections, a negative or non-finite rate, a
    /// duration that is not positive.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.connections == 0 || self.rooms == 0 || self.rooms > self.connections {
            bail!("--connections and --rooms must be at least 1, with no more rooms than connections");
        }
        if !(self.rate >= 0.0 && self.rate.is_finite() && self.duration_secs > 0.0 && self.duration_secs.is_finite()) {
            bail!("--rate must be at least 0 and --duration positive");
        }
        Ok(())
    }

    /// The time between a member's messages (none at rate 0).
    pub fn interval(&self) -> Option<Duration> {
        (self.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.rate))
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_secs)
    }

    /// Member `index`'s first message is due index/C of an interval after the start.
    pub fn offset(&self, index: usize) -> Duration {
        self.interval().map_or(Duration::ZERO, |d| d.mul_f64(index as f64 / self.connections as f64))
    }

    /// Deliveries the messages sent so far make: each room's messages times its members (but the
    /// sender, unless it gets a copy).
    fn expected(&self, shared: &Shared) -> u64 {
        (0..self.rooms)
            .map(|r| {
                let members = (self.connections - r).div_ceil(self.rooms) as u64;
                let receivers = if self.sender_copy { members } else { members.saturating_sub(1) };
                shared.sent[r].load(Ordering::Acquire) * receivers
            })
            .sum()
    }
}

/// What every session of a load shares.
pub(super) struct Shared {
    /// Timestamps in messages count microseconds from this instant.
    pub epoch: Instant,
    /// Messages sent to each room.
    pub sent: Vec<AtomicU64>,
    /// Deliveries received, all sessions.
    pub delivered: AtomicU64,
    /// Sessions that have sent their last message.
    pub senders_done: AtomicUsize,
    /// Microseconds since `epoch` of the latest delivery.
    pub last_delivery_micros: AtomicU64,
}

impl Shared {
    pub fn new(rooms: usize) -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            sent: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            delivered: AtomicU64::new(0),
            senders_done: AtomicUsize::new(0),
            last_delivery_micros: AtomicU64::new(0),
        })
    }

    /// Microseconds since `epoch`.
    pub fn micros_now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// What a load measured.
pub(super) struct Measured {
    /// Seconds from the first connection to the last session ready.
    pub setup_secs: f64,
    /// The server's VmRSS before and after the connections (KiB), and the octets per connection.
    pub per_connection: Option<(u64, u64, f64)>,
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub latencies: Latencies,
    /// Over the time the deliveries took.
    pub secs: f64,
}

/// Waits for every session to be ready, reads the server's memory (with `rss_before`), opens the
/// gate, waits for the senders and then for every delivery they caused (or the drain time), stops
/// the sessions and collects them. A session that ends before the stop failed (the server
/// dropped it, say), and its error is the load's at once.
///
/// # Errors
/// A session that failed; senders still blocked a minute after the drain time.
pub(super) async fn measure(
    plan: &Plan,
    shared: &Shared,
    mut opener: GateOpener,
    tasks: Vec<JoinHandle<anyhow::Result<Outcome>>>,
    stop: tokio::sync::watch::Sender<bool>,
    rss_before: Option<u64>,
    setup_started: Instant,
) -> anyhow::Result<Measured> {
    opener.wait_ready().await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();
    let mut per_connection = None;
    if let (Some(pid), Some(before)) = (plan.pid, rss_before) {
        settle().await;
        let after = rss_kib(pid)?;
        per_connection = Some((before, after, after.saturating_sub(before) as f64 * 1024.0 / plan.connections as f64));
    }
    let start = opener.start();
    let duration = plan.duration();
    let drain_end = start + duration + Duration::from_secs(DRAIN_SECS);
    let expected = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if tasks.iter().any(JoinHandle::is_finished) {
            break plan.expected(shared);
        }
        if Instant::now() < start + duration {
            continue;
        }
        let done = shared.senders_done.load(Ordering::Acquire) == plan.connections;
        let expected = plan.expected(shared);
        if done && shared.delivered.load(Ordering::Acquire) >= expected {
            break expected;
        }
        if Instant::now() >= drain_end && done {
            break expected;
        }
        if Instant::now() >= drain_end + Duration::from_secs(60) {
            bail!("the senders are still blocked a minute after the end (is the server stalled?)");
        }
    };
    let _ = stop.send(true);
    let (mut sent, mut delivered) = (0u64, 0u64);
    let mut latencies = Latencies::new();
    for task in tasks {
        let (s, d, l) = task.await??;
        sent += s;
        delivered += d;
        latencies.merge(&l);
    }
    // The rate is over the time the deliveries took: the sending time, or longer when the server
    // fell behind and delivered after the last send.
    let last = Duration::from_micros(shared.last_delivery_micros.load(Ordering::Acquire));
    let secs = (shared.epoch + last).saturating_duration_since(start).max(duration).as_secs_f64();
    Ok(Measured { setup_secs, per_connection, sent, expected, delivered, latencies, secs })
}

impl Measured {
    /// The report: `headline` (the load's own summary), the server's memory line when measured,
    /// and the fields every fan-out load reports.
    pub fn report(self, plan: &Plan, mut headline: String) -> Report {
        if let Some((before, after, per)) = self.per_connection {
            headline.push_str(&format!(
                "\n{}: server VmRSS {before} KiB -> {after} KiB with {} joined connections: {per:.0} octets ({:.2} KiB) per connection",
                plan.load,
                plan.connections,
                per / 1024.0
            ));
        }
        let fields = json!({
            "load": plan.load,
            "server": plan.server.to_string(),
            "connections": plan.connections,
            "rooms": plan.rooms,
            "rate_per_member": plan.rate,
            "duration": plan.duration_secs,
            "setup_secs": self.setup_secs,
            "sent": self.sent,
            "expected": self.expected,
            "delivered": self.delivered,
            "missing": self.missing(),
            "octets_per_connection": self.per_connection.map(|(_, _, per)| per.round()),
        });
        Report::new(headline, fields, self.delivered, self.secs, Some(&self.latencies))
    }

    /// Deliveries expected but not received.
    pub fn missing(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }
}
