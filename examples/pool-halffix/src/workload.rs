//! The pool's workload and oracle, written once over [`World`]: the body
//! the example's tests run in the simulator (both modes), under shuttle and
//! under loom, and the one the `faultline` explorer's `pool-subscribe`
//! scenario runs.

use crate::{Pool, Variant};
use faultline::sync::Arc;
use faultline::World;
use std::time::Duration;

/// The oracle's tag: the pool held more than its limit.
pub const ORACLE_TAG: &str = "over-limit";

/// Connect latency, ms at most.
pub const CONNECT_MS_MAX: u64 = 2;

/// A subscriber's pause before each subscribe, ms at most.
pub const PAUSE_MS_MAX: u64 = 2;

/// How long a subscriber holds its connection, ms at most.
pub const HOLD_MS_MAX: u64 = 5;

/// The size of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Subscriber tasks.
    pub subscribers: u64,
    /// Subscriptions each one makes.
    pub rounds: u64,
    /// The pool's limit.
    pub limit: usize,
}

impl Shape {
    /// Six subscribers, three rounds each, limit 3: the simulator's and
    /// shuttle's body.
    pub const FULL: Shape = Shape {
        subscribers: 6,
        rounds: 3,
        limit: 3,
    };

    /// Two subscribers, one round each, limit 1: loom's body (loom runs at
    /// most 5 threads per model, the body's own included, and explores
    /// every interleaving, so six subscribers do not fit).
    pub const LOOM: Shape = Shape {
        subscribers: 2,
        rounds: 1,
        limit: 1,
    };

    /// [`Shape::LOOM`] in a loom build, [`Shape::FULL`] otherwise.
    pub fn for_this_build() -> Shape {
        if cfg!(faultline_loom) {
            Shape::LOOM
        } else {
            Shape::FULL
        }
    }
}

/// `shape.subscribers` tasks subscribe, hold their connection a while and
/// let it go, `shape.rounds` times each. Fails the run with oracle
/// [`ORACLE_TAG`] (`invariant:over-limit`) when the pool ever held more
/// than `shape.limit` connections.
///
/// # Panics
/// When a subscriber task does not run to its end.
pub async fn subscribers(world: World, variant: Variant, shape: Shape) {
    let pool =
        Arc::new(Pool::new(shape.limit, variant, world.clock()).connect_ms_max(CONNECT_MS_MAX));
    let mut tasks = Vec::new();
    for t in 0..shape.subscribers {
        let pool = Arc::clone(&pool);
        tasks.push(world.spawn("subscriber", async move {
            for round in 0..shape.rounds {
                world
                    .sleep(Duration::from_millis(world.draw(PAUSE_MS_MAX)))
                    .await;
                match pool.subscribe().await {
                    Ok(id) => {
                        world.note(format!("subscriber {t}, round {round}: got {id}"));
                        world
                            .sleep(Duration::from_millis(world.draw(HOLD_MS_MAX)))
                            .await;
                        pool.unsubscribe(id);
                    }
                    Err(e) => world.note(format!("subscriber {t}, round {round}: {e:?}")),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("the subscriber ran to its end");
    }
    if pool.peak() > pool.limit() {
        world.fail(
            ORACLE_TAG,
            format!(
                "the pool held {} connections, limit {}",
                pool.peak(),
                pool.limit()
            ),
        );
    }
}
