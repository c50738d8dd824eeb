//! The in-memory do-not-call index the dialer consults before every attempt.
//!
//! The database is the source of truth for DNC entries; this is a read-optimised copy of it,
//! rebuilt from the database at start and compacted as changes arrive. The database check stays
//! authoritative at dial time; this index exists so that list building and pacing can filter
//! millions of leads without a query per number.
//!
//! # Layout of [`DncSet`] (immutable, built once)
//!
//! Keys are E.164 numbers as `u64` ([`super::phone::key`]). Real numbers are clustered (`+1` keys
//! all lie in 1.2e10..2e10, `+44` keys in 4.4e11..4.5e11), so bucketing on the raw high bits
//! would put most numbers in a handful of buckets. Each key is therefore first passed through a
//! *bijective* 64-bit mixer (the MurmurHash3 finaliser, `fmix64`, which is invertible, so no
//! information is lost and two keys never collide), and the set is sorted by mixed value:
//!
//! ```text
//! mixed:   [u64; n]        sorted mixed keys                          8 bytes/number
//! expiry:  [u32; n]        parallel to `mixed`                        4 bytes/number
//! buckets: [u32; 2^b + 1]  start of each bucket in `mixed`            ~1 byte/number
//!          bucket of a key = top b bits of its mixed value, 2^b = n/4 rounded up to a power of
//!          two, so a bucket holds 2-4 entries on average (a Poisson tail beyond)
//! ```
//!
//! Total: 8 + 4 + 4·(2^b + 1)/n ≈ 13 bytes per number (at most 14 at the worst rounding of
//! 2^b), under the 16-byte budget; 10 M numbers take ~130 MB.
//!
//! Lookup: mix the key (3 multiplies/shifts), read two adjacent bucket offsets (one cache line),
//! scan the bucket's few sorted keys (one cache line, usually), then read one `u32` expiry (one
//! more line). Three dependent cache misses at most, ~100 ns on a cold 10 M set; no branches that
//! depend on the data's distribution.
//!
//! Expiry is stored as `u32` seconds since [`EXPIRY_EPOCH`] (2020-01-01T00:00:00Z), which reaches
//! 2156; `u32::MAX` means never. An entry is active while `now < expires_at`: at its expiry second
//! it no longer counts. Expiries before the epoch are stored as 0 (long expired); expiries past
//! 2156 saturate to `u32::MAX - 1`.
//!
//! Duplicates at build keep the longest-lived entry (never beats any time). Expired entries are
//! kept until the next build: the set does not know the time when it is built.
//!
//! # [`DncIndex`]
//!
//! One [`DncList`] for the global list and one per tenant. Each is a [`DncSet`] plus a small
//! mutable overlay (`HashMap<key, Added(expiry) | Removed>`) of changes since the last build; the
//! overlay wins over the set (an insert is an upsert of the entry's expiry, a removal hides the
//! set's entry). [`DncIndex::compact`] folds the overlays into new sets. A number is blocked for a
//! tenant if it is active in the global list or in that tenant's list.

use std::collections::HashMap;

/// Unix time of the expiry epoch: 2020-01-01T00:00:00Z.
pub const EXPIRY_EPOCH: i64 = 1_577_836_800;

/// Stored expiry meaning "never expires".
const NEVER: u32 = u32::MAX;

/// Average entries per bucket the bucket count is sized for.
const ENTRIES_PER_BUCKET: usize = 4;

/// MurmurHash3's 64-bit finaliser: a bijection on `u64`.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Multiplicative inverse of an odd `u64` modulo 2^64 (Newton's iteration).
const fn inverse(a: u64) -> u64 {
    let mut x = a; // correct to 3 bits for odd a
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// The inverse of [`mix`] (`x ^= x >> 33` is its own inverse because 33 ≥ 32).
#[inline]
fn unmix(mut x: u64) -> u64 {
    const INV1: u64 = inverse(0xff51_afd7_ed55_8ccd);
    const INV2: u64 = inverse(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x = x.wrapping_mul(INV2);
    x ^= x >> 33;
    x = x.wrapping_mul(INV1);
    x ^= x >> 33;
    x
}

fn encode_expiry(expires_at: Option<i64>) -> u32 {
    match expires_at {
        None => NEVER,
        Some(t) => {
            let rel = t.saturating_sub(EXPIRY_EPOCH);
            if rel <= 0 {
                0
            } else {
                u32::try_from(rel).unwrap_or(NEVER - 1).min(NEVER - 1)
            }
        }
    }
}

fn decode_expiry(e: u32) -> Option<i64> {
    (e != NEVER).then(|| EXPIRY_EPOCH + i64::from(e))
}

/// Whether a stored expiry is still active at `now_unix`.
#[inline]
fn active(e: u32, now_unix: i64) -> bool {
    e == NEVER || now_unix < EXPIRY_EPOCH + i64::from(e)
}

/// An immutable, compact set of DNC keys with expiries. See the module docs for the layout.
#[derive(Debug, Clone)]
pub struct DncSet {
    /// Mixed keys, sorted ascending, no duplicates.
    mixed: Box<[u64]>,
    /// Expiry of `mixed[i]` (seconds since [`EXPIRY_EPOCH`], `u32::MAX` never).
    expiry: Box<[u32]>,
    /// `buckets[b]..buckets[b + 1]` is the range of `mixed` whose top `bits` bits equal `b`.
    buckets: Box<[u32]>,
    /// Bucket bits; 0 for the empty set (one bucket).
    bits: u32,
}

impl Default for DncSet {
    fn default() -> Self {
        Self::build(std::iter::empty())
    }
}

impl DncSet {
    /// Builds the set from `(key, expires_at unix seconds or None for never)`. Duplicated keys keep
    /// the longest-lived entry.
    ///
    /// # Panics
    /// With more than `u32::MAX` entries (the bucket offsets are `u32`).
    pub fn build(entries: impl IntoIterator<Item = (u64, Option<i64>)>) -> Self {
        let mut pairs: Vec<(u64, u32)> = entries
            .into_iter()
            .map(|(k, e)| (mix(k), encode_expiry(e)))
            .collect();
        pairs.sort_unstable();
        // Sorted by (mixed, expiry): within a run of equal keys the last has the longest life.
        pairs.dedup_by(|next, kept| {
            if next.0 == kept.0 {
                kept.1 = kept.1.max(next.1);
                true
            } else {
                false
            }
        });
        assert!(
            u32::try_from(pairs.len()).is_ok(),
            "DncSet holds at most u32::MAX numbers"
        );
        let n = pairs.len();
        let bucket_count = n.div_ceil(ENTRIES_PER_BUCKET).max(1).next_power_of_two();
        let bits = bucket_count.trailing_zeros();
        let mut buckets = vec![0u32; bucket_count + 1];
        // Counting pass, then prefix sums: buckets[b + 1] ends bucket b.
        for &(m, _) in &pairs {
            buckets[Self::bucket_of(m, bits) + 1] += 1;
        }
        for b in 1..buckets.len() {
            buckets[b] += buckets[b - 1];
        }
        let (mixed, expiry): (Vec<u64>, Vec<u32>) = pairs.into_iter().unzip();
        Self {
            mixed: mixed.into_boxed_slice(),
            expiry: expiry.into_boxed_slice(),
            buckets: buckets.into_boxed_slice(),
            bits,
        }
    }

    #[inline]
    fn bucket_of(mixed: u64, bits: u32) -> usize {
        if bits == 0 {
            0
        } else {
            // Top `bits` bits; bits ≤ 32 so this fits a usize on 64-bit targets.
            (mixed >> (64 - bits)) as usize
        }
    }

    /// The stored expiry of `key`, if present (active or not).
    #[inline]
    fn find(&self, key: u64) -> Option<u32> {
        let m = mix(key);
        let b = Self::bucket_of(m, self.bits);
        let start = *self.buckets.get(b)? as usize;
        let end = *self.buckets.get(b + 1)? as usize;
        let slice = self.mixed.get(start..end)?;
        for (i, &candidate) in slice.iter().enumerate() {
            if candidate >= m {
                if candidate == m {
                    return self.expiry.get(start + i).copied();
                }
                return None;
            }
        }
        None
    }

    /// Whether `key` is on the list and not expired at `now_unix`.
    #[inline]
    pub fn contains(&self, key: u64, now_unix: i64) -> bool {
        self.find(key).is_some_and(|e| active(e, now_unix))
    }

    /// The entry's expiry: `None` if absent, `Some(None)` if it never expires.
    pub fn expiry_of(&self, key: u64) -> Option<Option<i64>> {
        self.find(key).map(decode_expiry)
    }

    /// Number of distinct keys (expired ones included until the next build).
    pub fn len(&self) -> usize {
        self.mixed.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.mixed.is_empty()
    }

    /// Heap memory held by the set, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.mixed.len() * size_of::<u64>()
            + self.expiry.len() * size_of::<u32>()
            + self.buckets.len() * size_of::<u32>()
    }

    /// Every entry as `(key, expires_at)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Option<i64>)> + '_ {
        self.mixed
            .iter()
            .zip(self.expiry.iter())
            .map(|(&m, &e)| (unmix(m), decode_expiry(e)))
    }
}

/// Hasher for the overlay's `u64` keys: the same bijective mixer as the set (SipHash would cost
/// more than the set lookup itself). Keys are phone numbers from the bank's own database, not
/// attacker-chosen input, so HashDoS resistance is not needed here.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = mix(self.0 ^ x);
    }
}

type Overlay = HashMap<u64, Change, std::hash::BuildHasherDefault<KeyHasher>>;

/// A change not yet folded into a [`DncSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Upsert with this expiry (unix seconds, `None` never).
    Added(Option<i64>),
    /// Removed from the list (consent given back, entry deleted).
    Removed,
}

/// One list (the global one or a tenant's): a built set plus the changes since.
#[derive(Debug, Clone, Default)]
pub struct DncList {
    set: DncSet,
    overlay: Overlay,
}

impl DncList {
    /// A list over a built set, with no pending changes.
    pub fn new(set: DncSet) -> Self {
        Self {
            set,
            overlay: Overlay::default(),
        }
    }

    /// Whether `key` is blocked by this list at `now_unix`.
    #[inline]
    pub fn contains(&self, key: u64, now_unix: i64) -> bool {
        if !self.overlay.is_empty() {
            match self.overlay.get(&key) {
                Some(Change::Added(None)) => return true,
                Some(Change::Added(Some(t))) => return now_unix < *t,
                Some(Change::Removed) => return false,
                None => {}
            }
        }
        self.set.contains(key, now_unix)
    }

    /// Adds or replaces `key`'s entry.
    pub fn insert(&mut self, key: u64, expires_at: Option<i64>) {
        self.overlay.insert(key, Change::Added(expires_at));
    }

    /// Removes `key` from the list.
    pub fn remove(&mut self, key: u64) {
        self.overlay.insert(key, Change::Removed);
    }

    /// Pending changes not yet folded into the set.
    pub fn pending(&self) -> usize {
        self.overlay.len()
    }

    /// Folds the overlay into a new set.
    pub fn compact(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        let overlay = std::mem::take(&mut self.overlay);
        let kept = self.set.iter().filter(|(k, _)| !overlay.contains_key(k));
        let added = overlay.iter().filter_map(|(&k, c)| match c {
            Change::Added(e) => Some((k, *e)),
            Change::Removed => None,
        });
        self.set = DncSet::build(kept.chain(added).collect::<Vec<_>>());
    }

    /// Number of entries after the pending changes (expired ones included).
    pub fn len(&self) -> usize {
        let base = self.set.len();
        let mut n = base as i64;
        for (&k, c) in &self.overlay {
            let in_set = self.set.find(k).is_some();
            match (c, in_set) {
                (Change::Added(_), false) => n += 1,
                (Change::Removed, true) => n -= 1,
                _ => {}
            }
        }
        usize::try_from(n).unwrap_or(0)
    }

    /// Whether the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap memory of the set (the overlay is small and not counted exactly: ~32 bytes per
    /// pending change).
    pub fn heap_bytes(&self) -> usize {
        self.set.heap_bytes() + self.overlay.capacity() * 32
    }
}

/// Which list a change applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The global list (regulator's register, bank-wide opt-outs): blocks every tenant.
    Global,
    /// One tenant's own list.
    Tenant(&'a str),
}

/// The global list plus one list per tenant.
#[derive(Debug, Clone, Default)]
pub struct DncIndex {
    global: DncList,
    tenants: HashMap<String, DncList>,
}

impl DncIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the global list with a freshly built set (pending global changes are dropped: the
    /// set is assumed to come from the database, which already has them).
    pub fn set_global(&mut self, set: DncSet) {
        self.global = DncList::new(set);
    }

    /// Replaces a tenant's list with a freshly built set (same assumption as [`Self::set_global`]).
    pub fn set_tenant(&mut self, tenant: &str, set: DncSet) {
        self.tenants.insert(tenant.to_owned(), DncList::new(set));
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, scope: Scope<'_>, key: u64, expires_at: Option<i64>) {
        self.list_mut(scope).insert(key, expires_at);
    }

    /// Removes an entry.
    pub fn remove(&mut self, scope: Scope<'_>, key: u64) {
        self.list_mut(scope).remove(key);
    }

    fn list_mut(&mut self, scope: Scope<'_>) -> &mut DncList {
        match scope {
            Scope::Global => &mut self.global,
            Scope::Tenant(t) => self.tenants.entry(t.to_owned()).or_default(),
        }
    }

    /// Whether `key` may not be called for `tenant` at `now_unix`: active on the global list or
    /// on the tenant's list.
    #[inline]
    pub fn blocked(&self, tenant: &str, key: u64, now_unix: i64) -> bool {
        self.global.contains(key, now_unix)
            || self
                .tenants
                .get(tenant)
                .is_some_and(|l| l.contains(key, now_unix))
    }

    /// The lists that apply to `tenant`, resolved once: for filtering a batch of numbers without
    /// hashing the tenant's name per number.
    pub fn for_tenant(&self, tenant: &str) -> TenantDnc<'_> {
        TenantDnc {
            global: &self.global,
            tenant: self.tenants.get(tenant),
        }
    }

    /// Pending (not yet compacted) changes across all lists.
    pub fn pending(&self) -> usize {
        self.global.pending() + self.tenants.values().map(DncList::pending).sum::<usize>()
    }

    /// Folds every overlay into its set.
    pub fn compact(&mut self) {
        self.global.compact();
        for list in self.tenants.values_mut() {
            list.compact();
        }
    }

    /// Heap memory of all lists' sets and overlays (approximate for the overlays).
    pub fn heap_bytes(&self) -> usize {
        self.global.heap_bytes()
            + self
                .tenants
                .values()
                .map(DncList::heap_bytes)
                .sum::<usize>()
    }
}

/// The global list and one tenant's list ([`DncIndex::for_tenant`]).
#[derive(Debug, Clone, Copy)]
pub struct TenantDnc<'a> {
    global: &'a DncList,
    tenant: Option<&'a DncList>,
}

impl TenantDnc<'_> {
    /// Same answer as [`DncIndex::blocked`] for this tenant.
    #[inline]
    pub fn blocked(&self, key: u64, now_unix: i64) -> bool {
        self.global.contains(key, now_unix)
            || self.tenant.is_some_and(|l| l.contains(key, now_unix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    const NOW: i64 = 1_790_000_000; // 2026-09

    #[test]
    fn mix_is_a_bijection() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..10_000 {
            let x: u64 = rng.random();
            assert_eq!(unmix(mix(x)), x);
        }
        assert_eq!(unmix(mix(0)), 0);
        assert_eq!(unmix(mix(u64::MAX)), u64::MAX);
    }

    #[test]
    fn membership() {
        let set = DncSet::build([(12_125_550_123, None), (442_079_460_958, None)]);
        assert!(set.contains(12_125_550_123, NOW));
        assert!(set.contains(442_079_460_958, NOW));
        assert!(!set.contains(12_125_550_124, NOW));
        assert!(!set.contains(0, NOW));
        assert_eq!(set.len(), 2);
        let empty = DncSet::default();
        assert!(!empty.contains(12_125_550_123, NOW));
        assert!(empty.is_empty());
    }

    #[test]
    fn expiry_boundary() {
        let set = DncSet::build([(1, Some(NOW)), (2, Some(NOW + 1)), (3, Some(0)), (4, None)]);
        assert!(set.contains(1, NOW - 1));
        assert!(!set.contains(1, NOW), "expires at its expiry second");
        assert!(set.contains(2, NOW));
        assert!(!set.contains(2, NOW + 1));
        assert!(!set.contains(3, NOW), "pre-epoch expiry is long gone");
        assert!(set.contains(4, i64::MAX));
        assert_eq!(set.expiry_of(1), Some(Some(NOW)));
        assert_eq!(set.expiry_of(4), Some(None));
        assert_eq!(set.expiry_of(5), None);
        // Past 2156: saturates just below "never", still expires eventually.
        let far = DncSet::build([(9, Some(i64::MAX))]);
        assert!(far.contains(9, NOW));
        assert_ne!(far.expiry_of(9), Some(None));
    }

    #[test]
    fn duplicates_keep_the_longest_lived() {
        let set = DncSet::build([
            (7, Some(NOW + 10)),
            (7, Some(NOW + 100)),
            (7, Some(NOW + 5)),
        ]);
        assert_eq!(set.len(), 1);
        assert!(set.contains(7, NOW + 50));
        assert!(!set.contains(7, NOW + 100));
        let never = DncSet::build([(7, Some(NOW + 10)), (7, None)]);
        assert_eq!(never.expiry_of(7), Some(None));
    }

    #[test]
    fn overlay_insert_remove_and_compact() {
        let mut index = DncIndex::new();
        index.set_global(DncSet::build([(1, None), (2, Some(NOW + 60))]));
        index.insert(Scope::Global, 3, None);
        index.remove(Scope::Global, 1);
        index.insert(Scope::Global, 2, Some(NOW + 10)); // upsert shortens
        assert!(!index.blocked("t", 1, NOW));
        assert!(index.blocked("t", 3, NOW));
        assert!(!index.blocked("t", 2, NOW + 30));
        assert_eq!(index.pending(), 3);
        assert_eq!(index.global.len(), 2);
        index.compact();
        assert_eq!(index.pending(), 0);
        assert!(!index.blocked("t", 1, NOW));
        assert!(index.blocked("t", 3, NOW));
        assert!(index.blocked("t", 2, NOW + 9));
        assert!(!index.blocked("t", 2, NOW + 30));
        assert_eq!(index.global.len(), 2);
    }

    #[test]
    fn tenants_are_separate_and_global_blocks_all() {
        let mut index = DncIndex::new();
        index.set_tenant("bank-a", DncSet::build([(100, None)]));
        index.insert(Scope::Tenant("bank-b"), 200, None);
        index.insert(Scope::Global, 300, None);
        assert!(index.blocked("bank-a", 100, NOW));
        assert!(!index.blocked("bank-b", 100, NOW));
        assert!(index.blocked("bank-b", 200, NOW));
        assert!(!index.blocked("bank-a", 200, NOW));
        assert!(!index.blocked("bank-c", 100, NOW));
        for t in ["bank-a", "bank-b", "bank-c"] {
            assert!(index.blocked(t, 300, NOW));
            assert!(index.for_tenant(t).blocked(300, NOW));
        }
        assert!(index.for_tenant("bank-a").blocked(100, NOW));
        assert!(!index.for_tenant("bank-b").blocked(100, NOW));
        // Removing from a tenant's list does not lift a global block.
        index.remove(Scope::Tenant("bank-a"), 300);
        assert!(index.blocked("bank-a", 300, NOW));
        index.compact();
        assert!(index.blocked("bank-a", 100, NOW) && index.blocked("bank-b", 200, NOW));
    }

    #[test]
    fn randomized_against_a_hashmap() {
        let mut rng = StdRng::seed_from_u64(42);
        for round in 0..20 {
            let n = [0, 1, 3, 5, 100, 5_000][round % 6] + rng.random_range(0..50);
            let mut reference: HashMap<u64, Option<i64>> = HashMap::new();
            let mut entries = Vec::new();
            for _ in 0..n {
                // Small key space to force duplicates; clustered like real numbers.
                let key = 12_000_000_000 + rng.random_range(0..(n as u64 * 2 + 1));
                let exp = if rng.random_bool(0.3) {
                    None
                } else {
                    Some(NOW + rng.random_range(-1_000..1_000))
                };
                entries.push((key, exp));
                let slot = reference.entry(key).or_insert(exp);
                *slot = match (*slot, exp) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(a.max(b)),
                };
            }
            let set = DncSet::build(entries);
            assert_eq!(set.len(), reference.len());
            assert!(set.heap_bytes() <= 16 * set.len().max(1) + 8);
            for probe in 0..(n as u64 * 2 + 10) {
                let key = 12_000_000_000 + probe;
                let now = NOW + rng.random_range(-1_100..1_100);
                let expected = reference
                    .get(&key)
                    .is_some_and(|e| e.is_none_or(|t| now < t));
                assert_eq!(set.contains(key, now), expected, "key {key} now {now}");
            }
            let mut back: Vec<_> = set.iter().collect();
            back.sort_unstable();
            let mut want: Vec<_> = reference.into_iter().collect();
            want.sort_unstable();
            assert_eq!(back, want);
        }
    }

    #[test]
    fn bytes_per_number_at_scale() {
        let set = DncSet::build((0..200_000u64).map(|i| (12_000_000_000 + i * 7, None)));
        let per = set.heap_bytes() as f64 / set.len() as f64;
        assert!(per <= 16.0, "{per} bytes per number");
    }
}
