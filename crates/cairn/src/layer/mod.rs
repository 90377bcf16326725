//! Layers: generic wrappers that add one concern to any [`Store`](crate::Store).
//!
//! The order, outermost first, is written down in docs/design.md.

pub mod prefix;
pub mod retry;

pub use prefix::PrefixStore;
pub use retry::{RetryLayer, RetryPolicy, RetryStore};

/// Wraps a store in another, tower-style.
pub trait Layer<S> {
    /// The wrapped store.
    type Store;
    /// Wraps `inner`.
    fn layer(&self, inner: S) -> Self::Store;
}
