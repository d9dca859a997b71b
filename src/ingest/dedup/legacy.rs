//! Floors an older hub stored under bare producer names, before producers
//! were scoped to principals.

use actix::Addr;

use super::scoped;
use crate::sequence::{AdvanceProducer, ForgetProducer, Snapshotter};

/// Moves floors stored unscoped (by an older hub) in the snapshot: under
/// `principal` when there is one, else forgotten (logged either way).
pub(super) fn migrate(
    legacy: &[(String, u64)],
    snapshotter: Option<&Addr<Snapshotter>>,
    principal: Option<&str>,
) {
    if legacy.is_empty() {
        return;
    }
    match principal {
        Some(principal) => tracing::info!(
            count = legacy.len(),
            principal,
            "ingest floors stored unscoped are moved to the hub's principal"
        ),
        None => tracing::warn!(
            count = legacy.len(),
            "ingest floors stored unscoped cannot be told apart between several principals: \
             forgotten, so their producers' resends may be stored again"
        ),
    }
    let Some(snapshotter) = snapshotter else {
        return;
    };
    for (producer, floor) in legacy {
        if let Some(principal) = principal {
            snapshotter.do_send(AdvanceProducer {
                producer: scoped(principal, producer),
                sequence: *floor,
            });
        }
        snapshotter.do_send(ForgetProducer {
            producer: producer.clone(),
        });
    }
}
