//! The shim's atomics in the simulator (and outside every model): `std`'s,
//! with every operation a switch point of the sync-switch mode (see
//! [`super::switch`]). Two tasks' operations on one atomic can then
//! interleave as they would on worker threads: a check (`load`) and an act
//! (`store`) with no `.await` between are two steps, not one. With no hook
//! installed (every mode but sync-switch) an operation pays one
//! thread-local read. Inside a `Mutex::with` no switch happens.

use super::switch;
use std::sync::atomic::Ordering;

/// Defines a switched atomic over `std`'s `$std` of value type `$t`, with
/// the operations every atomic has.
macro_rules! switched {
    ($(#[$doc:meta])* $name:ident, $std:ty, $t:ty) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $name($std);

        impl $name {
            /// A new atomic holding `v`.
            pub const fn new(v: $t) -> Self {
                Self(<$std>::new(v))
            }
            /// `std`'s `load`, after a switch point.
            pub fn load(&self, order: Ordering) -> $t {
                switch::point();
                self.0.load(order)
            }
            /// `std`'s `store`, after a switch point.
            pub fn store(&self, v: $t, order: Ordering) {
                switch::point();
                self.0.store(v, order)
            }
            /// `std`'s `swap`, after a switch point.
            pub fn swap(&self, v: $t, order: Ordering) -> $t {
                switch::point();
                self.0.swap(v, order)
            }
            /// `std`'s `compare_exchange`, after a switch point.
            ///
            /// # Errors
            /// The value found when it was not `current`.
            pub fn compare_exchange(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                switch::point();
                self.0.compare_exchange(current, new, success, failure)
            }
            /// `std`'s `fetch_update`, after a switch point (one point:
            /// the update loop itself runs without a switch).
            ///
            /// # Errors
            /// The value found when `f` returned `None`.
            pub fn fetch_update<F: FnMut($t) -> Option<$t>>(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                f: F,
            ) -> Result<$t, $t> {
                switch::point();
                self.0.fetch_update(set_order, fetch_order, f)
            }
            /// The value, from an owned atomic (no switch point: nobody
            /// else can see it).
            pub fn into_inner(self) -> $t {
                self.0.into_inner()
            }
            /// The value, from a unique borrow (no switch point).
            pub fn get_mut(&mut self) -> &mut $t {
                self.0.get_mut()
            }
        }
    };
}

/// Defines the integer operations of a switched integer atomic.
macro_rules! switched_int {
    ($name:ident, $t:ty, $($op:ident),*) => {
        impl $name {
            $(
                /// `std`'s operation of the same name, after a switch point.
                pub fn $op(&self, v: $t, order: Ordering) -> $t {
                    switch::point();
                    self.0.$op(v, order)
                }
            )*
        }
    };
}

switched!(
    /// `std::sync::atomic::AtomicU64` whose operations are switch points.
    AtomicU64,
    std::sync::atomic::AtomicU64,
    u64
);
switched!(
    /// `std::sync::atomic::AtomicUsize` whose operations are switch points.
    AtomicUsize,
    std::sync::atomic::AtomicUsize,
    usize
);
switched!(
    /// `std::sync::atomic::AtomicBool` whose operations are switch points.
    AtomicBool,
    std::sync::atomic::AtomicBool,
    bool
);
switched_int!(AtomicU64, u64, fetch_add, fetch_sub, fetch_max, fetch_min, fetch_and, fetch_or);
switched_int!(
    AtomicUsize,
    usize,
    fetch_add,
    fetch_sub,
    fetch_max,
    fetch_min,
    fetch_and,
    fetch_or
);
switched_int!(AtomicBool, bool, fetch_and, fetch_or, fetch_xor);
