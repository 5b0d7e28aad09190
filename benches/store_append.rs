//! DuckDB append throughput: the fixed store (write gate) vs the pre-fix
//! store (no gate) vs a raw DuckDB appender writing the same rows into one
//! table with no store around it, per batch size, in one run (so the
//! ratios are read off one run). Targets: the gate costs at most 1% at batch
//! 100; the store stays within 5% of raw DuckDB at batches 100 and 10,000.
//!
//! Run: `cargo bench -p faultline --bench store_append` (needs the default
//! `duckdb` feature).

#[cfg(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle))))]
mod benches {
    use criterion::{criterion_group, BatchSize, Criterion, Throughput};
    use faultline::sched::TokioScheduler;
    use faultline::store::duck::{append_events, open_segment, DuckBackend};
    use faultline::store::{Event, StoreConfig, TieredStore, Variant};
    use faultline::sync::{Arc, DynArc};
    use std::path::PathBuf;

    const NOW_MS: u64 = 1_767_225_600_000;

    fn batch(start: u64, n: u64) -> Vec<Event> {
        (start..start + n)
            .map(|i| Event {
                id: i,
                ts_ms: NOW_MS + i % 1_000,
                key: format!("customer-{}", i % 97),
                units: i % 13,
            })
            .collect()
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("faultline-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn store_append(c: &mut Criterion) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for n in [1u64, 100, 10_000] {
            let mut g = c.benchmark_group(format!("store_append_batch_{n}"));
            g.throughput(Throughput::Elements(n));
            if n >= 10_000 {
                g.sample_size(10);
            }
            let raw_dir = dir(&format!("raw-{n}"));
            let mut raw = open_segment(&raw_dir.join("raw.duckdb")).unwrap();
            let mut next = 0u64;
            g.bench_function("raw_duckdb_appender", |b| {
                b.iter_batched(
                    || {
                        next += n;
                        batch(next, n)
                    },
                    |rows| append_events(&mut raw, &rows).unwrap(),
                    BatchSize::SmallInput,
                )
            });
            for variant in [Variant::PreFix, Variant::Fixed] {
                let d = dir(&format!("{}-{n}", variant.name()));
                let backend = Arc::new(DuckBackend::new(&d, DynArc::new(TokioScheduler)).unwrap());
                let store = rt
                    .block_on(TieredStore::open(backend, StoreConfig::new(variant)))
                    .unwrap();
                g.bench_function(format!("store_{}", variant.name()), |b| {
                    b.iter_batched(
                        || {
                            next += n;
                            batch(next, n)
                        },
                        |rows| rt.block_on(store.append(rows)).unwrap(),
                        BatchSize::SmallInput,
                    )
                });
                let _ = std::fs::remove_dir_all(&d);
            }
            g.finish();
            let _ = std::fs::remove_dir_all(&raw_dir);
        }
    }

    criterion_group!(benches, store_append);
}

#[cfg(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle))))]
criterion::criterion_main!(benches::benches);

/// Without DuckDB (or in model-check builds) there is nothing to time.
#[cfg(not(all(feature = "duckdb", not(any(faultline_loom, faultline_shuttle)))))]
fn main() {}
