//! One pulled topic's broadcasts into the ingest queue, in order, waiting
//! for room under `block`; each recoverable one announced to the
//! [`Acceptance`] that hears its outcome.

use std::sync::Arc;

use actix::Addr;
use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::accepted::{item_id, Acceptance, Forwarded};
use crate::client::Incoming;
use crate::ingest::{Ingest, IngestQueue};
use crate::sink::{ItemKind, SinkItem};

/// Where a topic's items go.
#[derive(Clone)]
pub(super) struct Route {
    pub queue: Addr<IngestQueue>,
    pub admission: Option<Arc<Semaphore>>,
    pub acceptance: Addr<Acceptance>,
}

pub(super) async fn forward(mut incoming: mpsc::Receiver<Incoming>, route: Route) {
    while let Some(message) = incoming.recv().await {
        if matches!(message.event.as_str(), "presence_state" | "presence_diff") {
            continue; // who is upstream is not data
        }
        let stamp = message.payload.to_value();
        let sequence = stamp.get("sequence").and_then(|s| s.as_u64());
        let epoch = stamp.get("epoch").and_then(|e| e.as_str());
        let (id, origin) = match (epoch, sequence) {
            (Some(epoch), Some(sequence)) => {
                route.acceptance.do_send(Forwarded {
                    topic: message.topic.clone(),
                    epoch: epoch.to_owned(),
                    sequence,
                });
                let origin = route.acceptance.clone().recipient();
                (item_id(&message.topic, epoch, sequence), Some(origin))
            }
            (None, Some(sequence)) => (format!("{}:{sequence}", message.topic), None),
            // Not a recoverable topic's broadcast: nothing to deduplicate on.
            (_, None) => (
                format!("{}:{:016x}", message.topic, fastrand::u64(..)),
                None,
            ),
        };
        let permit = match &route.admission {
            Some(admission) => admission.clone().acquire_owned().await.ok(),
            None => None,
        };
        let item = SinkItem {
            store_id: None,
            id,
            kind: ItemKind::Data,
            payload: Bytes::from(message.payload.to_string()),
        };
        let entry = Ingest {
            item,
            origin,
            permit,
            dedup: None,
        };
        if route.queue.send(entry).await.is_err() {
            return;
        }
    }
}
