//! # pool-halffix: a race between two synchronous sections
//!
//! A connection pool whose [`Pool::subscribe`] must never hold more than
//! `limit` connections, in three versions ([`Variant`]), after a race in a
//! public async Rust project (issue 20):
//!
//! * [`Variant::PreFix`]: checks for free capacity under the lock,
//!   releases it, *awaits* the connect, then pushes under the lock. Every
//!   subscriber that checked before the first push gets in: over the limit.
//! * [`Variant::HalfFix`]: the project's first fix. It connects first,
//!   then checks under the lock, releases it, and re-locks to push, with
//!   **no `.await` between** the two sections. On a one-thread executor
//!   nothing runs in that gap; on tokio's multi-thread runtime another
//!   worker does, and the pool goes over the limit again. faultline's
//!   default mode cannot see it; its sync-switch mode can.
//! * [`Variant::Fixed`]: reserves a slot under the lock, connects, and
//!   turns the reservation into a connection under the lock (or gives it
//!   back when the connect fails).
//!
//! The pool takes its time from the world's [`Clock`] and its locks from
//! [`faultline::sync`], so the same code runs under tokio and in the
//! simulator. [`workload::subscribers`] is its test body and oracle,
//! written once over the world: the example's tests run it in the
//! simulator, under shuttle and under loom, and the `faultline` explorer
//! runs it as the `pool-subscribe` scenario.

pub mod workload;

use faultline::clock::Clock;
use faultline::sync::{DynArc, Mutex};
use std::time::Duration;

/// Which `subscribe` the pool runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Check, release, `.await` connect, push.
    PreFix,
    /// Connect, then check and push in two critical sections with no
    /// `.await` between.
    HalfFix,
    /// Reserve under the lock, connect, commit or release the reservation.
    Fixed,
}

/// Why `subscribe` gave no connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeError {
    /// The pool holds `limit` connections (or reservations) already.
    Full {
        /// The pool's limit.
        limit: usize,
    },
    /// The connect failed.
    ConnectFailed,
}

/// A pool connection's id.
pub type ConnId = u64;

#[derive(Default)]
struct State {
    conns: Vec<ConnId>,
    /// Slots taken by connects in flight (the fixed variant).
    reserved: usize,
    next_id: ConnId,
    /// The most connections ever held at once.
    peak: usize,
}

/// A bounded pool of connections.
pub struct Pool {
    state: Mutex<State>,
    limit: usize,
    variant: Variant,
    clock: DynArc<dyn Clock>,
    /// Connect latency, ms: drawn in `0..connect_ms_max` per connect.
    connect_ms_max: u64,
}

impl Pool {
    /// An empty pool of at most `limit` connections.
    pub fn new(limit: usize, variant: Variant, clock: DynArc<dyn Clock>) -> Pool {
        Pool {
            state: Mutex::new(State::default()),
            limit,
            variant,
            clock,
            connect_ms_max: 3,
        }
    }

    /// Opens a connection and adds it to the pool.
    ///
    /// # Errors
    /// [`SubscribeError::Full`] when the pool is at its limit,
    /// [`SubscribeError::ConnectFailed`] when the connect fails.
    ///
    /// # Cancel safety
    /// The fixed variant holds a reservation across the connect; a
    /// cancelled subscribe leaks it (the service never cancels one).
    pub async fn subscribe(&self) -> Result<ConnId, SubscribeError> {
        match self.variant {
            Variant::PreFix => self.subscribe_pre_fix().await,
            Variant::HalfFix => self.subscribe_half_fix().await,
            Variant::Fixed => self.subscribe_fixed().await,
        }
    }

    async fn subscribe_pre_fix(&self) -> Result<ConnId, SubscribeError> {
        let free = self.state.with(|s| s.conns.len() < self.limit);
        if !free {
            return Err(SubscribeError::Full { limit: self.limit });
        }
        self.connect().await?;
        Ok(self.state.with(push))
    }

    async fn subscribe_half_fix(&self) -> Result<ConnId, SubscribeError> {
        self.connect().await?;
        let free = self.state.with(|s| s.conns.len() < self.limit);
        if !free {
            return Err(SubscribeError::Full { limit: self.limit });
        }
        // The gap: no `.await`, but another worker thread may run here.
        Ok(self.state.with(push))
    }

    async fn subscribe_fixed(&self) -> Result<ConnId, SubscribeError> {
        let reserved = self.state.with(|s| {
            let ok = s.conns.len() + s.reserved < self.limit;
            if ok {
                s.reserved += 1;
            }
            ok
        });
        if !reserved {
            return Err(SubscribeError::Full { limit: self.limit });
        }
        if let Err(e) = self.connect().await {
            self.state.with(|s| s.reserved -= 1);
            return Err(e);
        }
        Ok(self.state.with(|s| {
            s.reserved -= 1;
            push(s)
        }))
    }

    /// Closes connection `id` (a no-op for an unknown id).
    pub fn unsubscribe(&self, id: ConnId) {
        self.state.with(|s| s.conns.retain(|&c| c != id));
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.state.with(|s| s.conns.len())
    }

    /// Whether the pool holds no connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connect latency drawn in `0..ms_max` ms (default 3).
    pub fn connect_ms_max(mut self, ms_max: u64) -> Pool {
        self.connect_ms_max = ms_max;
        self
    }

    /// The most connections the pool ever held at once.
    pub fn peak(&self) -> usize {
        self.state.with(|s| s.peak)
    }

    /// The pool's limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A connect: a seeded latency; one in ten fails (outside the
    /// simulator the draw is 0: no latency, no failure).
    async fn connect(&self) -> Result<(), SubscribeError> {
        let ms = faultline::probe::draw(self.connect_ms_max);
        self.clock.sleep(Duration::from_millis(ms)).await;
        if faultline::probe::draw(10) == 9 {
            return Err(SubscribeError::ConnectFailed);
        }
        Ok(())
    }
}

fn push(s: &mut State) -> ConnId {
    s.next_id += 1;
    s.conns.push(s.next_id);
    s.peak = s.peak.max(s.conns.len());
    s.next_id
}
