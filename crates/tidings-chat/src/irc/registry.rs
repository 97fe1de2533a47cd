//! The nicknames of the node's IRC connections: one owner per nickname (ASCII case-folded, the
//! `ascii` CASEMAPPING), with what WHO, WHOIS and LUSERS show of IRC users beyond the hub's
//! identity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One IRC connection's entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The connection's token ([`Registry::token`]).
    pub token: u64,
    /// The nickname as chosen (case kept).
    pub nick: String,
    /// Real name (USER's last parameter).
    pub realname: String,
    /// User mode `+i`.
    pub invisible: bool,
    /// Connected over TLS.
    pub tls: bool,
    /// Registration finished.
    pub registered: bool,
}

/// Nicknames in use by IRC connections, and counts for LUSERS.
#[derive(Default)]
pub(crate) struct Registry {
    nicks: Mutex<HashMap<String, Entry>>,
    next_token: AtomicU64,
    /// Connections that have not finished registration (253 RPL_LUSERUNKNOWN).
    pub unregistered: AtomicUsize,
    /// Registered entries, and invisible ones among them (kept with the map, so LUSERS does not
    /// walk it).
    registered: AtomicUsize,
    invisible: AtomicUsize,
}

impl Registry {
    /// A token for a new connection.
    pub fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.nicks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives `nick` to the connection `token`, moving its entry from `old` (its previous nickname)
    /// if any; `false` when another connection holds `nick`.
    pub fn claim(&self, token: u64, nick: &str, old: Option<&str>) -> bool {
        let key = nick.to_ascii_lowercase();
        let mut nicks = self.lock();
        if nicks.get(&key).is_some_and(|e| e.token != token) {
            return false;
        }
        let mut entry = old
            .and_then(|old| {
                let old_key = old.to_ascii_lowercase();
                (nicks.get(&old_key).is_some_and(|e| e.token == token)).then(|| nicks.remove(&old_key)).flatten()
            })
            .unwrap_or_else(|| Entry { token, ..Entry::default() });
        entry.nick = nick.to_owned();
        nicks.insert(key, entry);
        true
    }

    /// Frees `nick` if the connection `token` holds it.
    pub fn release(&self, token: u64, nick: &str) {
        let key = nick.to_ascii_lowercase();
        let mut nicks = self.lock();
        if nicks.get(&key).is_some_and(|e| e.token == token)
            && let Some(entry) = nicks.remove(&key)
        {
            self.count(&entry, false);
        }
    }

    /// Adds (or takes away) an entry's part of the counts.
    fn count(&self, entry: &Entry, add: bool) {
        let change = |counter: &AtomicUsize| {
            if add {
                counter.fetch_add(1, Ordering::Relaxed);
            } else {
                counter.fetch_sub(1, Ordering::Relaxed);
            }
        };
        if entry.registered {
            change(&self.registered);
            if entry.invisible {
                change(&self.invisible);
            }
        }
    }

    /// Changes the entry of `nick` held by `token`.
    pub fn update(&self, token: u64, nick: &str, change: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.lock().get_mut(&nick.to_ascii_lowercase()).filter(|e| e.token == token) {
            self.count(entry, false);
            change(entry);
            self.count(entry, true);
        }
    }

    /// The entry of `nick`, if an IRC connection holds it.
    pub fn get(&self, nick: &str) -> Option<Entry> {
        self.lock().get(&nick.to_ascii_lowercase()).cloned()
    }

    /// Registered entries whose nickname matches `accept`, at most `max`, sorted by nickname.
    pub fn find(&self, max: usize, accept: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        let mut found: Vec<Entry> = self.lock().values().filter(|e| e.registered && accept(e)).cloned().collect();
        found.sort_by(|a, b| a.nick.cmp(&b.nick));
        found.truncate(max);
        found
    }

    /// (registered connections, invisible ones among them).
    pub fn counts(&self) -> (usize, usize) {
        (self.registered.load(Ordering::Relaxed), self.invisible.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nick_has_one_owner_regardless_of_case() {
        let registry = Registry::default();
        let (a, b) = (registry.token(), registry.token());
        assert!(registry.claim(a, "Alice", None));
        assert!(!registry.claim(b, "alice", None));
        assert!(registry.claim(a, "ALICE", Some("Alice")), "a case change of one's own nick");
        assert_eq!(registry.get("alice").unwrap().nick, "ALICE");
        registry.update(a, "alice", |e| e.invisible = true);
        assert!(registry.claim(a, "al", Some("ALICE")));
        assert!(registry.get("alice").is_none());
        assert!(registry.get("al").unwrap().invisible, "the entry moves with the nick");
        registry.release(b, "al");
        assert!(registry.get("al").is_some(), "only the owner releases");
        registry.update(a, "al", |e| e.registered = true);
        assert_eq!(registry.counts(), (1, 1));
        registry.release(a, "al");
        assert_eq!(registry.counts(), (0, 0));
        assert!(registry.claim(b, "alice", None));
    }
}
