//! Message refs: increasing decimal strings, unique per connection (PHX-C2).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shared counter of a connection's refs (joins, pushes and heartbeats).
#[derive(Clone, Debug, Default)]
pub(crate) struct RefCounter(Arc<AtomicU64>);

impl RefCounter {
    /// The next ref: "1", "2", ...
    pub(crate) fn next(&self) -> String {
        (self.0.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }
}
