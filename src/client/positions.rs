//! The snapshotter a connection's handles stamp sequences and read
//! positions with: the one its config names, or an in-memory one started on
//! the switchboard's arbiter the first time a handle needs it, so a
//! connection that never publishes or resumes does not pay for an actor.

use std::sync::{Arc, OnceLock};

use actix::{Addr, ArbiterHandle};

use crate::sequence::Snapshotter;

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
