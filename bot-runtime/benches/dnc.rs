//! DNC set at scale: build time, lookup ns/op (hits and misses, random order), bytes per number.
//!
//! `cargo bench -p bot-runtime --bench dnc` (set `DNC_BENCH_N` for another size than 10 M).
//! Keys are realistic E.164 numbers: 70% NANP (+1, area and exchange codes 200-999), 30% UK
//! (+44 7xxx mobiles and 20 London lines); 10% of entries carry an expiry, a tenth of those
//! already past.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use bot_runtime::dialer::dnc::{DncIndex, DncSet, Scope};

// Figures are throughput of independent lookups in a tight loop (as when filtering a batch of
// leads): the CPU overlaps several lookups' cache misses, so one isolated lookup takes longer.
use rand::{Rng, SeedableRng, rngs::StdRng};

const NOW: i64 = 1_790_000_000;

fn random_key(rng: &mut StdRng) -> u64 {
    if rng.random_bool(0.7) {
        let area = rng.random_range(200..1000u64);
        let exchange = rng.random_range(200..1000u64);
        let line = rng.random_range(0..10_000u64);
        10_000_000_000 + area * 10_000_000 + exchange * 10_000 + line
    } else if rng.random_bool(0.8) {
        447_000_000_000 + rng.random_range(0..1_000_000_000u64)
    } else {
        442_000_000_000 + rng.random_range(0..100_000_000u64)
    }
}

fn per_op(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn main() {
    let n: usize = std::env::var("DNC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let mut rng = StdRng::seed_from_u64(0xD0_0C);
    let entries: Vec<(u64, Option<i64>)> = (0..n)
        .map(|_| {
            let key = random_key(&mut rng);
            let expiry = if rng.random_bool(0.1) {
                Some(NOW + rng.random_range(-86_400..86_400 * 90))
            } else {
                None
            };
            (key, expiry)
        })
        .collect();

    let start = Instant::now();
    let set = DncSet::build(entries.iter().copied());
    let build = start.elapsed();
    println!(
        "dnc: {} entries in, {} distinct; build {:.2} s ({:.0} ns/entry)",
        n,
        set.len(),
        build.as_secs_f64(),
        build.as_nanos() as f64 / n as f64
    );
    println!(
        "dnc: heap {:.1} MB, {:.2} bytes/number",
        set.heap_bytes() as f64 / 1e6,
        set.heap_bytes() as f64 / set.len() as f64
    );

    // Probes: hits are stored keys in a random order; misses are fresh random keys not stored.
    let lookups = n.min(10_000_000);
    let hits: Vec<u64> = (0..lookups)
        .map(|_| entries[rng.random_range(0..n)].0)
        .collect();
    let stored: std::collections::HashSet<u64> = entries.iter().map(|e| e.0).collect();
    let misses: Vec<u64> = std::iter::repeat_with(|| random_key(&mut rng))
        .filter(|k| !stored.contains(k))
        .take(lookups)
        .collect();
    drop(stored);

    for round in 0..2 {
        let start = Instant::now();
        let mut found = 0usize;
        for &k in &hits {
            found += usize::from(set.contains(black_box(k), black_box(NOW)));
        }
        let hit_ns = per_op(start, lookups);
        let start = Instant::now();
        let mut false_hits = 0usize;
        for &k in &misses {
            false_hits += usize::from(set.contains(black_box(k), black_box(NOW)));
        }
        let miss_ns = per_op(start, lookups);
        assert_eq!(false_hits, 0);
        println!(
            "dnc: round {round}: lookup hit {hit_ns:.1} ns/op ({:.1}% active), miss {miss_ns:.1} ns/op ({lookups} random probes each)",
            black_box(found) as f64 * 100.0 / lookups as f64
        );
    }

    // The dialer's call: global list plus the tenant's list, with a small overlay.
    let half = entries.len() / 2;
    let mut index = DncIndex::new();
    index.set_global(DncSet::build(entries[..half].iter().copied()));
    index.set_tenant("bank-a", DncSet::build(entries[half..].iter().copied()));
    for &k in hits.iter().take(1_000) {
        index.insert(Scope::Tenant("bank-a"), k.wrapping_add(1), None);
    }
    let start = Instant::now();
    let mut blocked = 0usize;
    for &k in &misses {
        blocked += usize::from(index.blocked(black_box("bank-b"), black_box(k), NOW));
    }
    println!(
        "dnc: DncIndex::blocked, tenant without a list (global list only), not blocked: {:.1} ns/op ({blocked} blocked)",
        per_op(start, lookups)
    );
    let start = Instant::now();
    let mut blocked = 0usize;
    for &k in &misses {
        blocked += usize::from(index.blocked(black_box("bank-a"), black_box(k), NOW));
    }
    println!(
        "dnc: DncIndex::blocked (global + tenant + 1k overlay), not blocked: {:.1} ns/op ({blocked} blocked)",
        per_op(start, lookups)
    );
    let view = index.for_tenant("bank-a");
    let start = Instant::now();
    let mut blocked = 0usize;
    for &k in &misses {
        blocked += usize::from(view.blocked(black_box(k), NOW));
    }
    println!(
        "dnc: DncIndex::for_tenant(..).blocked (global + tenant + 1k overlay, tenant resolved once): {:.1} ns/op ({blocked} blocked)",
        per_op(start, lookups)
    );
    let start = Instant::now();
    let mut blocked = 0usize;
    for &k in &misses {
        blocked += usize::from(set.contains(black_box(k), NOW));
    }
    println!(
        "dnc: (control) DncSet::contains again, same probes, while the index is also in memory: {:.1} ns/op ({blocked})",
        per_op(start, lookups)
    );
    drop(index);

    // Reference point: std HashMap<u64, u32>.
    let start = Instant::now();
    let map: HashMap<u64, u32> = entries.iter().map(|&(k, _)| (k, u32::MAX)).collect();
    let map_build = start.elapsed();
    let start = Instant::now();
    let mut found = 0usize;
    for &k in &hits {
        found += usize::from(map.contains_key(&black_box(k)));
    }
    let map_hit = per_op(start, lookups);
    let map_bytes = map.capacity() * (8 + 4 + 1) + 16;
    println!(
        "dnc: reference std HashMap<u64,u32>: build {:.2} s, hit {map_hit:.1} ns/op, ~{:.1} bytes/number ({} found)",
        map_build.as_secs_f64(),
        map_bytes as f64 / map.len() as f64,
        black_box(found)
    );
}
