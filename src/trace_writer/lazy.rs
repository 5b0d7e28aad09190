//! [`Lazy`]: a client created on first use, once.

use crate::sink::SinkErrorKind;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering};

/// How a [`Lazy`] creates its client.
type Connect<C> = Box<dyn Fn() -> Result<C, SinkErrorKind> + Send + Sync>;

/// A client created by `connect` on the first [`Lazy::get`], then shared.
///
/// Creation runs under the slot's lock, so concurrent first uses create one
/// client; a failed creation is not remembered (the next use tries again).
pub struct Lazy<C> {
    connect: Connect<C>,
    slot: Mutex<Option<Arc<C>>>,
    connects: AtomicU64,
}

impl<C> Lazy<C> {
    /// A lazy client made by `connect` when first needed.
    pub fn new(connect: impl Fn() -> Result<C, SinkErrorKind> + Send + Sync + 'static) -> Self {
        Lazy {
            connect: Box::new(connect),
            slot: Mutex::new(None),
            connects: AtomicU64::new(0),
        }
    }

    /// The client, created now if this is the first use.
    ///
    /// # Errors
    /// `connect`'s error (nothing is cached then).
    pub fn get(&self) -> Result<Arc<C>, SinkErrorKind> {
        self.slot.with(|slot| {
            if let Some(c) = slot {
                return Ok(Arc::clone(c));
            }
            self.connects.fetch_add(1, Ordering::SeqCst);
            let c = Arc::new((self.connect)()?);
            *slot = Some(Arc::clone(&c));
            Ok(c)
        })
    }

    /// Connection attempts made so far (0 until the first use).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    /// Whether the client exists.
    pub fn is_connected(&self) -> bool {
        self.slot.with(|s| s.is_some())
    }
}

impl<C> std::fmt::Debug for Lazy<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("connected", &self.is_connected())
            .field("connects", &self.connects())
            .finish()
    }
}
