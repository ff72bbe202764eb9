//! Percentage rollouts: a stable bucket per (flag, targeting key), so a user's answer survives
//! restarts, replicas and upgrades, and raising the percentage only ever adds users.
//!
//! The bucket is `u64::from_be_bytes(SHA-256(flag_key ":" targeting_key)[0..8]) % 100`, over
//! the UTF-8 bytes. SHA-256 is specified byte for byte, so every process, platform and version
//! computes the same bucket (std's `DefaultHasher` promises none of that), and any other tool
//! can reproduce it. The modulo bias of 2^64 into 100 buckets is about 10^-18 per bucket.
//! Hashing the flag key in means each flag picks a different slice of users.

use sha2::{Digest, Sha256};

/// How many buckets targeting keys fall into; a rollout percentage is a number of buckets.
pub const BUCKETS: u32 = 100;

/// The bucket (0..100) of `targeting_key` for flag `key`.
pub fn bucket(key: &str, targeting_key: &str) -> u8 {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(b":")
        .chain_update(targeting_key.as_bytes())
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let bucket = u64::from_be_bytes(head) % u64::from(BUCKETS);
    // `bucket` < 100, so it always fits.
    u8::try_from(bucket).unwrap_or(u8::MAX)
}

/// Whether `targeting_key` is among the first `rollout` percent of flag `key`'s buckets.
/// Monotonic: if it is in at some percentage, it is in at every higher one.
pub fn in_rollout(key: &str, targeting_key: &str, rollout: u8) -> bool {
    bucket(key, targeting_key) < rollout
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> impl Iterator<Item = String> {
        (0..10_000).map(|i| format!("user-{i}"))
    }

    #[test]
    fn ten_thousand_keys_at_25_percent_land_within_2_points_of_25_percent() {
        let on = keys()
            .filter(|key| in_rollout("new_checkout", key, 25))
            .count();
        assert!(
            (2_300..=2_700).contains(&on),
            "{on} of 10,000 keys are on at 25%"
        );
    }

    #[test]
    fn every_percentage_is_within_2_points_for_ten_thousand_keys() {
        let buckets: Vec<u8> = keys().map(|key| bucket("dark_mode", &key)).collect();
        for rollout in 1..100u8 {
            let on = buckets.iter().filter(|b| **b < rollout).count();
            let expected = usize::from(rollout) * 100;
            assert!(
                on.abs_diff(expected) <= 200,
                "{on} of 10,000 keys are on at {rollout}%"
            );
        }
    }

    #[test]
    fn raising_the_percentage_keeps_every_earlier_user_on() {
        let earlier: Vec<String> = keys()
            .filter(|key| in_rollout("new_checkout", key, 25))
            .collect();
        assert!(!earlier.is_empty());
        assert!(earlier
            .iter()
            .all(|key| in_rollout("new_checkout", key, 50)));
        // And at every step from 0 to 100, nobody is ever dropped.
        for key in keys().take(1_000) {
            let answers: Vec<bool> = (0..=100)
                .map(|rollout| in_rollout("new_checkout", &key, rollout))
                .collect();
            assert!(
                answers.windows(2).all(|pair| pair[0] <= pair[1]),
                "{key} goes off again as the rollout rises"
            );
            assert!(!answers[0] && answers[100]);
        }
    }

    #[test]
    fn the_bucket_is_the_documented_hash_and_never_changes() {
        // Golden values: if these change, every user's rollout answer changes. Do not update
        // them; restore the hash.
        let expected = {
            let digest = Sha256::digest(b"new_checkout:user-123");
            let mut head = [0u8; 8];
            head.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(head) % 100
        };
        assert_eq!(u64::from(bucket("new_checkout", "user-123")), expected);
        assert_eq!(
            [
                bucket("new_checkout", "user-123"),
                bucket("new_checkout", "user-124"),
                bucket("dark_mode", "user-123"),
                bucket("new_checkout", ""),
                bucket("", "user-123"),
                bucket("flag", "ünïcode"),
            ],
            GOLDEN
        );
    }

    /// Computed independently: `int.from_bytes(hashlib.sha256(b"new_checkout:user-123")
    /// .digest()[:8], "big") % 100` in Python, and so on.
    const GOLDEN: [u8; 6] = [57, 85, 39, 23, 41, 41];

    #[test]
    fn the_flag_key_and_the_targeting_key_are_kept_apart() {
        // "a:b" + ":" + "c" and "a" + ":" + "b:c" hash the same bytes; that is inherent in the
        // documented format and harmless (keys cannot contain ':'), but different flags must
        // pick different users.
        let same = keys()
            .take(1_000)
            .filter(|key| (bucket("flag_a", key) < 50) == (bucket("flag_b", key) < 50))
            .count();
        assert!(
            (400..=600).contains(&same),
            "two flags at 50% agree on {same} of 1,000 users"
        );
    }
}
