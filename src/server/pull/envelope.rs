//! Client mode over envelope v1: every `data` the remote sends goes into
//! the ingest queue under the sender's id, and is acked upstream only once
//! the sink accepted it (nacked with the queue's reason otherwise), so an
//! acked message is never lost across a cut: the remote resends the rest.

use std::collections::HashMap;

use actix::{Actor, Addr, Context, Handler, Message};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::client::UpstreamData;
use crate::ingest::{Ingest, IngestOutcome};
use crate::server::service::IngestParts;
use crate::sink::{ItemKind, SinkItem};

/// Holds each item handed to the queue until its outcome answers it
/// upstream. At most the queue's items and one more wait here.
#[derive(Default)]
struct AckRelay {
    waiting: HashMap<String, UpstreamData>,
}

impl Actor for AckRelay {
    type Context = Context<Self>;
}

/// Keep `0` until the queue settles it.
#[derive(Message)]
#[rtype(result = "()")]
struct Hold(UpstreamData);

impl Handler<Hold> for AckRelay {
    type Result = ();

    fn handle(&mut self, Hold(data): Hold, _: &mut Context<Self>) {
        self.waiting.insert(data.id().to_owned(), data);
    }
}

impl Handler<IngestOutcome> for AckRelay {
    type Result = ();

    fn handle(&mut self, outcome: IngestOutcome, _: &mut Context<Self>) {
        let Some(data) = self.waiting.remove(&outcome.id) else {
            return;
        };
        match outcome.result {
            Ok(()) => data.ack(),
            Err(nack) => data.nack(nack.reason, nack.error),
        }
    }
}

/// Feeds what the remote sends into the queue, in order, waiting for room
/// under `block`.
pub(super) async fn forward(mut received: mpsc::Receiver<UpstreamData>, ingest: IngestParts) {
    let relay: Addr<AckRelay> = AckRelay::default().start();
    while let Some(data) = received.recv().await {
        let permit = match &ingest.admission {
            Some(admission) => admission.clone().acquire_owned().await.ok(),
            None => None,
        };
        let item = SinkItem {
            store_id: None,
            id: data.id().to_owned(),
            kind: ItemKind::Data,
            payload: Bytes::from(data.payload().to_string()),
        };
        if relay.send(Hold(data)).await.is_err() {
            return;
        }
        let entry = Ingest {
            item,
            origin: Some(relay.clone().recipient()),
            permit,
            dedup: None,
        };
        if ingest.queue.send(entry).await.is_err() {
            return;
        }
    }
}
