//! The shard map: which shard owns an account's data.
//!
//! Every account lives on exactly one shard, chosen from its canonical address by a stable hash, so
//! that every node of a cluster computes the same placement with no lookup. The number of shards is
//! fixed when a data directory is created; a single node owns all of them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Address;

/// A shard's number, `0..ShardMap::count()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId(pub u16);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

/// Most shards a data directory may have.
pub const SHARD_COUNT_MAX: u16 = 1024;

/// Maps accounts to shards: FNV-1a (64-bit) of the canonical address, modulo the shard count.
///
/// FNV-1a is used because it is fixed by its specification: the placement must never change
/// between versions or platforms, which a `std` hasher does not promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardMap {
    count: u16,
}

impl ShardMap {
    /// A map over `count` shards.
    ///
    /// # Panics
    /// If `count` is 0 or above [`SHARD_COUNT_MAX`]; callers validate configuration first.
    pub fn new(count: u16) -> ShardMap {
        assert!((1..=SHARD_COUNT_MAX).contains(&count), "shard count {count} out of range");
        ShardMap { count }
    }

    /// Number of shards.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Every shard id, in order.
    pub fn shards(&self) -> impl Iterator<Item = ShardId> + use<> {
        (0..self.count).map(ShardId)
    }

    /// The shard owning `address`'s account.
    pub fn shard_of(&self, address: &Address) -> ShardId {
        ShardId((address_hash(address) % u64::from(self.count)) as u16)
    }

    /// The shard owning a chat room: FNV-1a of its canonical name.
    pub fn shard_of_room(&self, room: &crate::RoomName) -> ShardId {
        ShardId((fnv1a(room.as_str().as_bytes(), FNV_OFFSET) % u64::from(self.count)) as u16)
    }
}

/// A stable 64-bit FNV-1a hash of the octets of `local@domain`, the canonical address as written.
///
/// It places accounts on shards, so its values are fixed forever; it also tells maildrops apart in
/// identifiers that must differ between accounts (POP3 UIDL). Not a cryptographic hash.
pub fn address_hash(address: &Address) -> u64 {
    fnv1a(address.domain().as_bytes(), fnv1a(b"@", fnv1a(address.local_part().as_bytes(), FNV_OFFSET)))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable() {
        // These values pin the hash: changing them would move every account of every deployment.
        let map = ShardMap::new(16);
        let a: Address = "ta@mmsys.upenn.edu".parse().unwrap();
        let b: Address = "instructor@mmsys.upenn.edu".parse().unwrap();
        assert_eq!(map.shard_of(&a), map.shard_of(&"TA@mmsys.upenn.edu".parse().unwrap()));
        assert_eq!((map.shard_of(&a).0, map.shard_of(&b).0), (PINNED_TA, PINNED_INSTRUCTOR));
    }

    const PINNED_TA: u16 = pinned(b"ta@mmsys.upenn.edu");
    const PINNED_INSTRUCTOR: u16 = pinned(b"instructor@mmsys.upenn.edu");

    /// Reference FNV-1a over the bytes in hashing order, written out separately from `fnv1a`.
    const fn pinned(bytes: &[u8]) -> u16 {
        let mut hash = FNV_OFFSET;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(FNV_PRIME);
            i += 1;
        }
        (hash % 16) as u16
    }

    #[test]
    fn spreads_accounts_over_all_shards() {
        let map = ShardMap::new(8);
        let mut seen = [0u32; 8];
        for i in 0..800 {
            let a: Address = format!("user{i}@example.org").parse().unwrap();
            seen[map.shard_of(&a).0 as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
