//! Data admitted from one read of the socket goes to the queue as one
//! [`IngestBatch`]: gathered while the session handles the frames read
//! together, and flushed once the socket has nothing more to read now (a
//! future spawned into the session runs after its stream has handled what
//! was ready), or earlier when the batch is full. Its acks come back in
//! one [`IngestOutcomes`] per batch settled and leave in one write.

use actix::fut::{ready, wrap_future};
use actix::{ActorFutureExt, AsyncContext, Context, Handler};

use super::{IngestSocket, Session};
use crate::ingest::{Batched, IngestBatch, IngestOutcomes};
use crate::protocol::envelope::Envelope;

/// Most items in one batch handed to the queue.
pub(super) const MAX_SOCKET_BATCH: usize = 64;
/// Most payload bytes in one batch handed to the queue.
pub(super) const MAX_SOCKET_BATCH_BYTES: usize = 256 * 1024;

/// The batch being gathered from the current read.
#[derive(Default)]
pub(super) struct Gathering {
    entries: Vec<Batched>,
    bytes: usize,
    /// A flush is scheduled for the end of the read.
    scheduled: bool,
}

impl IngestSocket {
    /// Adds an admitted item to the batch (it is owed an answer from now).
    pub(super) fn gather(&mut self, entry: Batched, ctx: &mut Context<Session>) {
        self.push(entry, ctx);
        let batch = &self.gathering;
        if batch.entries.len() >= MAX_SOCKET_BATCH || batch.bytes >= MAX_SOCKET_BATCH_BYTES {
            self.flush(ctx);
        }
    }

    /// Adds an item without flushing (after a wait: a flush now could pass a
    /// batch still waiting for room in the queue's mailbox).
    pub(super) fn push(&mut self, entry: Batched, ctx: &mut Context<Session>) {
        self.owed += 1;
        let batch = &mut self.gathering;
        batch.bytes += entry.item.payload.len();
        batch.entries.push(entry);
        if !batch.scheduled {
            batch.scheduled = true;
            ctx.spawn(ready(()).map(|(), session: &mut Session, ctx| {
                let socket = session.protocol();
                socket.gathering.scheduled = false;
                socket.flush(ctx);
            }));
        }
    }

    /// Hands the batch to the queue; when its mailbox is full, waits
    /// (reading nothing meanwhile) instead of buffering without bound.
    pub(super) fn flush(&mut self, ctx: &mut Context<Session>) {
        let Some(batch) = self.take_batch() else {
            return;
        };
        match self.queue.try_send(batch) {
            Ok(()) => {}
            Err(actix::dev::SendError::Full(batch)) => {
                let count = batch.entries.len();
                let sent = self.queue.send(batch);
                ctx.wait(
                    wrap_future::<_, Session>(sent).map(move |sent, session, _| {
                        if sent.is_err() {
                            // The queue is gone: no outcome will come back.
                            let socket = session.protocol();
                            socket.owed = socket.owed.saturating_sub(count);
                        }
                    }),
                );
            }
            Err(actix::dev::SendError::Closed(batch)) => {
                for entry in batch.entries {
                    self.owed = self.owed.saturating_sub(1);
                    let error = Some("the ingest queue is gone".to_owned());
                    self.write(&Envelope::nack(entry.item.id, "shutdown", error));
                }
            }
        }
    }

    /// The socket is closing: what it gathered still goes to the queue.
    pub(super) fn flush_on_stop(&mut self) {
        if let Some(batch) = self.take_batch() {
            self.queue.do_send(batch);
        }
    }

    fn take_batch(&mut self) -> Option<IngestBatch> {
        if self.gathering.entries.is_empty() {
            return None;
        }
        self.gathering.bytes = 0;
        Some(IngestBatch {
            entries: std::mem::take(&mut self.gathering.entries),
            origin: Some(self.outcomes.clone()),
        })
    }
}

impl Handler<IngestOutcomes> for Session {
    type Result = ();

    fn handle(&mut self, IngestOutcomes(outcomes): IngestOutcomes, ctx: &mut Context<Self>) {
        let socket = self.protocol();
        debug_assert!(socket.owed >= outcomes.len(), "outcomes for nothing owed");
        socket.owed = socket.owed.saturating_sub(outcomes.len());
        for outcome in outcomes {
            socket.write(&super::answer(outcome));
        }
        socket.pace(ctx);
    }
}
