//! The tenancy reads every request makes (the caller's key, the account, the product's
//! activation on it), kept in memory for a moment so that a create costs its write and
//! not three lookups before it.
//!
//! Staleness is bounded: an entry lives [`TENANCY_TTL`] at most, so a key revoked or a
//! product deactivated on one server stops working on every other within that time;
//! on the server that made the change it stops at once (each change clears the cache).
//! Only found rows are kept: a key issued or a product activated elsewhere works at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached key, account or activation is trusted.
pub const TENANCY_TTL: Duration = Duration::from_millis(500);

/// Entries per map before it is emptied (a bound on memory, not an eviction policy:
/// the working set of a server is its active keys and accounts).
const MAX_ENTRIES: usize = 20_000;

/// One map of found rows with their time of reading.
pub struct Cached<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Default for Cached<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cached<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(read, _)| read.elapsed() < TENANCY_TTL)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: K, value: V, read: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (read, value));
    }

    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The store's tenancy cache. A read that began before a change must not put back what
/// the change replaced: each read notes the generation it began in, and keeps its row
/// only if no change happened since.
pub struct TenancyCache<Key, Account, Activation> {
    generation: AtomicU64,
    pub keys: Cached<String, Key>,
    pub accounts: Cached<String, Account>,
    pub activations: Cached<(String, String), Activation>,
}

impl<Key: Clone, Account: Clone, Activation: Clone> Default
    for TenancyCache<Key, Account, Activation>
{
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            keys: Cached::default(),
            accounts: Cached::default(),
            activations: Cached::default(),
        }
    }
}

/// Where a read began: its generation and time.
pub struct ReadStart {
    generation: u64,
    at: Instant,
}

impl<Key: Clone, Account: Clone, Activation: Clone> TenancyCache<Key, Account, Activation> {
    /// The row of `map` under `key` if it is fresh; else where the read begins.
    pub fn lookup<K: Eq + Hash, V: Clone>(
        &self,
        map: &Cached<K, V>,
        key: &K,
    ) -> Result<V, ReadStart> {
        // The generation is read before the time: a change after this point makes the
        // read's row unkept.
        let start = ReadStart {
            generation: self.generation.load(Ordering::Acquire),
            at: Instant::now(),
        };
        map.get(key).ok_or(start)
    }

    /// Keeps a row read since `start`, unless the tenancy changed meanwhile.
    pub fn keep<K: Eq + Hash, V: Clone>(
        &self,
        map: &Cached<K, V>,
        key: K,
        value: V,
        start: ReadStart,
    ) {
        if self.generation.load(Ordering::Acquire) == start.generation {
            map.put(key, value, start.at);
        }
    }

    /// A key, account, product or activation changed: nothing cached is trusted.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.keys.clear();
        self.accounts.clear();
        self.activations.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cache = TenancyCache<u32, u32, u32>;

    #[test]
    fn rows_are_kept_until_their_time_or_a_change() {
        let cache = Cache::default();
        let start = cache.lookup(&cache.keys, &"k".to_owned()).unwrap_err();
        cache.keep(&cache.keys, "k".into(), 1, start);
        assert_eq!(cache.lookup(&cache.keys, &"k".to_owned()).ok(), Some(1));
        cache.changed();
        assert!(cache.lookup(&cache.keys, &"k".to_owned()).is_err());

        let start = cache.lookup(&cache.accounts, &"a".to_owned()).unwrap_err();
        std::thread::sleep(TENANCY_TTL);
        cache.keep(&cache.accounts, "a".into(), 2, start);
        assert!(
            cache.lookup(&cache.accounts, &"a".to_owned()).is_err(),
            "an entry's age counts from the read"
        );
    }

    #[test]
    fn a_read_racing_a_change_is_not_kept() {
        let cache = Cache::default();
        let start = cache.lookup(&cache.keys, &"k".to_owned()).unwrap_err();
        cache.changed();
        cache.keep(&cache.keys, "k".into(), 1, start);
        assert!(cache.lookup(&cache.keys, &"k".to_owned()).is_err());
    }
}
