//! Fixed-window counters for the API's limits (codes, logins, existence checks, sending): events
//! counted per key over a window from the key's first event, in a bounded table.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Most entries a counter keeps; past it, the entry whose window began first is forgotten
/// (memory stays bounded under a spray of names, and no spray clears the others' counts).
pub const LIMIT_ENTRIES_MAX: usize = 100_000;

/// `since + window`, or `None` when that is beyond what the clock can hold (a window that
/// never ends).
fn window_end(since: Instant, window: Duration) -> Option<Instant> {
    since.checked_add(window)
}

/// Whole seconds (at least 1) from `now` to the end of a window, for `Retry-After`.
fn secs_until(end: Option<Instant>, window: Duration, now: Instant) -> u64 {
    end.map_or(window.as_secs(), |end| end.saturating_duration_since(now).as_secs()).max(1)
}

/// One key's count in a fixed window.
struct Count {
    since: Instant,
    serial: u64,
    count: u32,
}

/// Events counted per key over a fixed window from the key's first event, in at most
/// [`LIMIT_ENTRIES_MAX`] entries: a new key in a full table forgets the entry whose window began
/// first (an ended one, if any).
pub struct Counter<K> {
    entries: HashMap<K, Count>,
    /// The entries by when their window began (with a serial, to tell equal instants apart).
    order: BTreeMap<(Instant, u64), K>,
    serial: u64,
    max: usize,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    /// An empty counter of at most [`LIMIT_ENTRIES_MAX`] keys.
    pub fn new() -> Counter<K> {
        Counter::with_max(LIMIT_ENTRIES_MAX)
    }

    /// An empty counter of at most `max` keys.
    pub fn with_max(max: usize) -> Counter<K> {
        Counter { entries: HashMap::new(), order: BTreeMap::new(), serial: 0, max: max.max(1) }
    }

    /// Seconds until `key` may go again, if it has had `limit` within `window`.
    pub fn over(&self, key: &K, limit: u32, window: Duration, now: Instant) -> Option<u64> {
        self.over_by(key, 1, limit, window, now)
    }

    /// Seconds until `key` may count `n` more, if that would take it past `limit` within `window`
    /// (for `n` over `limit`, a whole window).
    pub fn over_by(&self, key: &K, n: u32, limit: u32, window: Duration, now: Instant) -> Option<u64> {
        let Some(entry) = self.entries.get(key) else {
            return (n > limit).then(|| window.as_secs().max(1));
        };
        let end = window_end(entry.since, window);
        let live = end.is_none_or(|end| now < end);
        let count = if live { entry.count } else { 0 };
        (count.saturating_add(n) > limit)
            .then(|| if live { secs_until(end, window, now) } else { window.as_secs().max(1) })
    }

    /// Counts one event for `key`.
    pub fn bump(&mut self, key: K, window: Duration, now: Instant) {
        self.bump_by(key, 1, window, now);
    }

    /// Takes one event back from `key`'s count (one that turned out not to count).
    pub fn unbump(&mut self, key: &K) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&(entry.since, entry.serial));
        }
    }

    /// Counts `n` events for `key`.
    pub fn bump_by(&mut self, key: K, n: u32, window: Duration, now: Instant) {
        if let Some(entry) = self.entries.get_mut(&key) {
            if window_end(entry.since, window).is_some_and(|end| now >= end) {
                self.order.remove(&(entry.since, entry.serial));
                self.serial += 1;
                *entry = Count { since: now, serial: self.serial, count: 0 };
                self.order.insert((now, self.serial), key);
            }
            entry.count = entry.count.saturating_add(n);
            return;
        }
        if self.entries.len() >= self.max
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.serial += 1;
        self.order.insert((now, self.serial), key.clone());
        self.entries.insert(key, Count { since: now, serial: self.serial, count: n });
    }

    /// Keys counted now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is counted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Hash + Eq + Clone> Default for Counter<K> {
    fn default() -> Counter<K> {
        Counter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_limit_table_forgets_its_oldest_entry_only() {
        let mut counter = Counter::with_max(3);
        let window = Duration::from_secs(60);
        let now = Instant::now();
        for (n, key) in ["a", "b", "c"].into_iter().enumerate() {
            counter.bump(key, window, now + Duration::from_secs(n as u64));
            counter.bump(key, window, now + Duration::from_secs(n as u64));
        }
        counter.bump("d", window, now + Duration::from_secs(5));
        assert_eq!(counter.len(), 3);
        assert!(counter.over(&"a", 2, window, now + Duration::from_secs(5)).is_none(), "a was the oldest");
        assert!(counter.over(&"b", 2, window, now + Duration::from_secs(5)).is_some());
        assert!(counter.over(&"c", 2, window, now + Duration::from_secs(5)).is_some());
        // A key whose window starts again moves to the back of the line.
        counter.bump("b", window, now + Duration::from_secs(70));
        counter.bump("e", window, now + Duration::from_secs(70));
        assert!(counter.over(&"b", 1, window, now + Duration::from_secs(70)).is_some());
        assert!(counter.over(&"c", 1, window, now + Duration::from_secs(70)).is_none(), "c went");
    }

    #[test]
    fn counts_of_several_events_and_taking_one_back() {
        let mut counter = Counter::new();
        let window = Duration::from_secs(3600);
        let now = Instant::now();
        assert_eq!(counter.over_by(&"a", 11, 10, window, now), Some(3600), "more than a whole window's worth");
        counter.bump_by("a", 6, window, now);
        assert!(counter.over_by(&"a", 4, 10, window, now).is_none());
        assert_eq!(counter.over_by(&"a", 5, 10, window, now + Duration::from_secs(600)), Some(3000));
        counter.unbump(&"a");
        assert!(counter.over_by(&"a", 5, 10, window, now).is_none());
        assert!(counter.over_by(&"a", 10, 10, window, now + window).is_none(), "a new window");
        counter.remove(&"a");
        assert!(counter.is_empty());
    }
}
