//! The snapshotter a connection's handles stamp sequences and read
//! positions with: the one its config names, or an in-memory one started on
//! the connection's arbiter the first time a handle needs it, so a
//! connection that never publishes or resumes does not pay for an actor.

use std::sync::{Arc, OnceLock};

use actix::{Addr, ArbiterHandle};

use crate::client::error::{ProduceError, PublishError, PushError};
use crate::sequence::{Snapshotter, Stamp, StoreError};

/// A connection's sequence state, configured or created on first use.
#[derive(Clone)]
pub(crate) struct Positions {
    configured: Option<Addr<Snapshotter>>,
    in_memory: Arc<OnceLock<Addr<Snapshotter>>>,
    arbiter: ArbiterHandle,
}

impl Positions {
    /// `configured`, or else an in-memory snapshotter on `arbiter` when first needed.
    pub(crate) fn new(configured: Option<Addr<Snapshotter>>, arbiter: ArbiterHandle) -> Positions {
        Positions {
            configured,
            in_memory: Arc::default(),
            arbiter,
        }
    }

    /// The snapshotter to use.
    pub(crate) fn snapshotter(&self) -> Addr<Snapshotter> {
        if let Some(configured) = &self.configured {
            return configured.clone();
        }
        self.in_memory
            .get_or_init(|| Snapshotter::in_memory_on(&self.arbiter))
            .clone()
    }
}

/// Why no sequence could be stamped.
pub(crate) enum StampFailure {
    /// The snapshot store failed, so the sequence could not be made durable.
    Store(StoreError),
    /// The snapshotter is gone.
    Gone,
}

impl From<StampFailure> for PublishError {
    fn from(failure: StampFailure) -> PublishError {
        match failure {
            StampFailure::Store(error) => PublishError::Sequence(error),
            StampFailure::Gone => PublishError::Push(PushError::Closed),
        }
    }
}

impl From<StampFailure> for ProduceError {
    fn from(failure: StampFailure) -> ProduceError {
        match failure {
            StampFailure::Store(error) => ProduceError::Sequence(error),
            StampFailure::Gone => ProduceError::Closed,
        }
    }
}

/// Takes the next sequence of `key` from `snapshotter`.
pub(crate) async fn stamp(
    snapshotter: &Addr<Snapshotter>,
    key: String,
) -> Result<u64, StampFailure> {
    match snapshotter.send(Stamp { channel: key }).await {
        Ok(Ok(sequence)) => Ok(sequence),
        Ok(Err(error)) => Err(StampFailure::Store(error)),
        Err(_) => Err(StampFailure::Gone),
    }
}
