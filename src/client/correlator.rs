//! `Correlator`: the one place a connection's pending requests wait for
//! their replies (NET-6, PHX-C7, PHX-C11).
//!
//! Every request is registered when it is written, with a deadline. A reply
//! resolves it; a deadline fails it with `Timeout` and removes it; a dropped
//! socket fails every pending request at once with `Disconnected`. A reply
//! that comes after any of these finds nothing and is dropped (counted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, SpawnHandle};
use tokio::sync::oneshot;

use super::error::RequestError;
use crate::protocol::phoenix::Reply;

/// Where a request's outcome goes (`R`: the protocol's reply type).
pub(crate) type Responder<R = Reply> = oneshot::Sender<Result<R, RequestError>>;

/// Bounded count of requests in flight, shared by the producers (who take a
/// slot synchronously before writing) and the correlator (who frees it).
#[derive(Clone, Debug)]
pub(crate) struct PendingSlots {
    in_use: Arc<AtomicUsize>,
    limit: usize,
}

impl PendingSlots {
    /// At most `limit` requests in flight.
    pub(crate) fn new(limit: usize) -> PendingSlots {
        PendingSlots {
            in_use: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Takes a slot, or fails with `TooManyRequests` at once.
    pub(crate) fn acquire(&self) -> Result<(), RequestError> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .map(|_| ())
            .map_err(|_| RequestError::TooManyRequests { limit: self.limit })
    }

    /// Frees a slot.
    pub(crate) fn release(&self) {
        let _ = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_sub(1)
            });
    }

    /// Requests in flight now.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }
}

/// Waits for the reply to `msg_ref` for at most `timeout`. The caller took a
/// slot from [`PendingSlots`] first; the correlator frees it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Register<R: 'static = Reply> {
    /// The request's ref.
    pub msg_ref: String,
    /// How long to wait once written.
    pub timeout: Duration,
    /// Where the outcome goes.
    pub responder: Responder<R>,
    /// Whether it holds a [`PendingSlots`] slot to free (application
    /// requests do; the subscription's own joins and leaves do not).
    pub counted: bool,
}

/// A reply arrived for `msg_ref`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Resolve<R: 'static = Reply> {
    /// The ref it answers.
    pub msg_ref: String,
    /// The reply.
    pub reply: R,
}

/// The socket dropped: fail every pending request with `error`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub(crate) struct FailAll {
    /// What each pending request fails with.
    pub error: RequestError,
}

struct Pending<R> {
    responder: Responder<R>,
    deadline: SpawnHandle,
    counted: bool,
}

/// The correlator actor of one connection, for replies of type `R`.
pub(crate) struct Correlator<R: 'static = Reply> {
    pending: HashMap<String, Pending<R>>,
    slots: PendingSlots,
}

impl<R: Unpin + 'static> Correlator<R> {
    /// A correlator freeing slots of `slots`.
    pub(crate) fn new(slots: PendingSlots) -> Correlator<R> {
        Correlator {
            pending: HashMap::new(),
            slots,
        }
    }

    fn finish(&mut self, msg_ref: &str, outcome: Result<R, RequestError>) -> Option<SpawnHandle> {
        let pending = self.pending.remove(msg_ref)?;
        if pending.counted {
            self.slots.release();
        }
        // The caller may have stopped waiting; that is its choice.
        let _ = pending.responder.send(outcome);
        Some(pending.deadline)
    }
}

impl<R: Unpin + 'static> Actor for Correlator<R> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Room for every request in flight plus a burst of replies.
        ctx.set_mailbox_capacity(self.slots.limit + 1024);
    }
}

impl<R: Unpin + 'static> Handler<Register<R>> for Correlator<R> {
    type Result = ();

    fn handle(&mut self, msg: Register<R>, ctx: &mut Context<Self>) {
        let msg_ref = msg.msg_ref.clone();
        let after = msg.timeout;
        let deadline = ctx.run_later(after, move |correlator, _| {
            metrics::counter!("switchboard_client_request_timeouts_total").increment(1);
            correlator.finish(&msg_ref, Err(RequestError::Timeout { after }));
        });
        let previous = self.pending.insert(
            msg.msg_ref,
            Pending {
                responder: msg.responder,
                deadline,
                counted: msg.counted,
            },
        );
        if let Some(previous) = previous {
            // Refs are unique per connection; a reuse is a bug upstream.
            tracing::error!("request ref registered twice; failing the older one");
            ctx.cancel_future(previous.deadline);
            if previous.counted {
                self.slots.release();
            }
            let _ = previous.responder.send(Err(RequestError::Disconnected));
        }
    }
}

impl<R: Unpin + 'static> Handler<Resolve<R>> for Correlator<R> {
    type Result = ();

    fn handle(&mut self, msg: Resolve<R>, ctx: &mut Context<Self>) {
        match self.finish(&msg.msg_ref, Ok(msg.reply)) {
            Some(deadline) => {
                ctx.cancel_future(deadline);
            }
            None => {
                metrics::counter!("switchboard_client_late_replies_total").increment(1);
                tracing::debug!(msg_ref = %msg.msg_ref, "dropped a reply nobody waits for");
            }
        }
    }
}

impl<R: Unpin + 'static> Handler<FailAll> for Correlator<R> {
    type Result = ();

    fn handle(&mut self, msg: FailAll, ctx: &mut Context<Self>) {
        let refs: Vec<String> = self.pending.keys().cloned().collect();
        for msg_ref in refs {
            if let Some(deadline) = self.finish(&msg_ref, Err(msg.error.clone())) {
                ctx.cancel_future(deadline);
            }
        }
    }
}
