//! The hub's sequence state: which snapshot store `[snapshot]` names, and
//! the ingest high-water marks loaded from it at start.

use std::collections::BTreeMap;

use actix::Addr;

use crate::config::{SnapshotConfig, SnapshotEvery};
use crate::report::with_sources;
use crate::sequence::{FileStore, FlushPolicy, SnapshotStore, Snapshotter, StoreError};

impl From<SnapshotEvery> for FlushPolicy {
    fn from(every: SnapshotEvery) -> FlushPolicy {
        match every {
            SnapshotEvery::Publish => FlushPolicy::Every,
            SnapshotEvery::Interval(interval) => FlushPolicy::Interval(interval),
        }
    }
}

/// Reads the configured snapshot file, so a start-up can refuse a corrupt
/// one with a clear message instead of running without it.
pub(crate) fn check(config: &SnapshotConfig) -> Result<(), StoreError> {
    match &config.path {
        Some(path) => FileStore::new(path).load().map(|_| ()),
        None => Ok(()),
    }
}

/// Starts the hub's snapshotter and answers it with the stored producer
/// marks. Without a path, or when the file cannot be read (logged and
/// counted; the file is left as it is), the state is kept in memory.
pub(crate) fn open(config: &SnapshotConfig) -> (Addr<Snapshotter>, BTreeMap<String, u64>) {
    let Some(path) = &config.path else {
        return (Snapshotter::in_memory(), BTreeMap::new());
    };
    let store = FileStore::new(path);
    let loaded = store.load().and_then(|snapshot| {
        let marks = snapshot
            .map(|snapshot| snapshot.producers)
            .unwrap_or_default();
        Snapshotter::start(Box::new(store), config.every.into()).map(|addr| (addr, marks))
    });
    loaded.unwrap_or_else(|error| {
        metrics::counter!("switchboard_snapshot_load_errors_total").increment(1);
        tracing::error!(
            error = %with_sources(&error),
            "snapshot not loaded; sequence state kept in memory only"
        );
        (Snapshotter::in_memory(), BTreeMap::new())
    })
}
