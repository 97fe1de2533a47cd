//! Message ids: ULIDs (48 bits of Unix milliseconds, 80 random bits, 26 characters of Crockford
//! base32), so ids are unique and sort by time.

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new message id for a message at `at_ms` (Unix milliseconds).
pub fn message_id(at_ms: i64) -> String {
    let mut random = [0u8; 10];
    // The OS source failing is not something a chat server can recover from meaningfully; fall
    // back to the address of a stack value mixed with the time, still unique enough per process.
    if getrandom::fill(&mut random).is_err() {
        let fallback = (&random as *const _ as u64) ^ (at_ms as u64).rotate_left(17);
        random[..8].copy_from_slice(&fallback.to_le_bytes());
    }
    let mut value: u128 = u128::from((at_ms.max(0) as u64) & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut out = [0u8; 26];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (25 - i);
        *slot = CROCKFORD[((value >> shift) & 31) as usize];
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_sort_by_time() {
        let a = message_id(1_700_000_000_000);
        let b = message_id(1_700_000_000_001);
        assert_eq!(a.len(), 26);
        assert!(a < b);
        assert_ne!(message_id(5), message_id(5));
    }
}
