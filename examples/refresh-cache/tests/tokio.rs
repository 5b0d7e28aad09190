//! The same cache in production wiring: tokio's clock and scheduler, no
//! simulator. (Outside the simulator `faultline::probe::draw` is 0, so the
//! in-memory origin answers at once.)

use faultline::clock::TokioClock;
use faultline::sched::TokioScheduler;
use faultline::sync::DynArc;
use refresh_cache::{Cache, CacheConfig, MemOrigin};
use std::time::Duration;

#[tokio::test]
async fn reads_see_writes_and_refreshes_run_under_tokio() {
    let clock = DynArc::new(TokioClock::new());
    let origin = DynArc::new(MemOrigin::new(clock.clone(), 5));
    let cfg = CacheConfig {
        refresh_after: Duration::ZERO, // every hit starts a refresh
        ..CacheConfig::default()
    };
    let cache = Cache::new(origin, clock, DynArc::new(TokioScheduler), cfg);
    assert_eq!(cache.get("k").await, None, "nothing written yet");
    let v1 = cache.put("k", "one".into()).await;
    assert_eq!(cache.get("k").await.map(|v| v.version), Some(v1));
    assert_eq!(cache.get("k").await.map(|v| v.data), Some("one".into()));
    tokio::task::yield_now().await; // let the refresh run
    let v2 = cache.put("k", "two".into()).await;
    assert!(v2 > v1);
    let got = cache.get("k").await.expect("written");
    assert_eq!((got.version, got.data.as_str()), (v2, "two"));
}
