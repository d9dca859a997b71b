//! Request/reply by id, for either side of a socket: the [`Correlator`]
//! actor where a connection's pending requests wait for their replies
//! (NET-6, PHX-C7, PHX-C11), and the bounded [`RequestSlots`] they hold.
//!
//! A request takes a [`SlotPermit`] before it is written (or fails at once
//! with `TooManyRequests`); the permit frees its slot when dropped, whatever
//! becomes of the request, so no path has to remember to release it. Once
//! written, the request is registered with a deadline: a reply resolves it,
//! the deadline fails it with `Timeout` and removes it, a dropped socket
//! fails every pending request at once with `Disconnected`. A reply that
//! comes after any of these finds nothing and is dropped (counted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, SpawnHandle};
use tokio::sync::oneshot;

/// Why a correlated request (a Phoenix push's reply, an envelope
/// `request`, either way) got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No reply within the timeout, counted from when it was written.
    #[error("no reply within {after:?}")]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// The socket dropped while the request was in flight, or is down.
    #[error("the connection dropped before the reply")]
    Disconnected,
    /// The connection's request limit (`max_concurrent_requests`) is reached.
    #[error("{limit} requests are already in flight")]
    TooManyRequests {
        /// The configured limit.
        limit: usize,
    },
    /// The socket is not reading fast enough: its write queue is full.
    #[error("the socket's write queue is full")]
    Backpressure,
    /// The connection is closed for good (for the hub: the sender is gone).
    #[error("the connection is closed")]
    Closed,
}

/// Where a request's outcome goes (`R`: the protocol's reply type, `E`:
/// the error its caller expects).
pub(crate) type Responder<R, E> = oneshot::Sender<Result<R, E>>;

/// Bounded count of requests in flight on one connection.
#[derive(Clone, Debug)]
pub(crate) struct RequestSlots {
    in_use: Arc<AtomicUsize>,
    limit: usize,
}

/// One slot of [`RequestSlots`], freed when dropped.
#[derive(Debug)]
pub(crate) struct SlotPermit {
    in_use: Arc<AtomicUsize>,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        self.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RequestSlots {
    /// At most `limit` requests in flight.
    pub(crate) fn new(limit: usize) -> RequestSlots {
        RequestSlots {
            in_use: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Takes a slot, or fails with `TooManyRequests` at once.
    pub(crate) fn try_acquire(&self) -> Result<SlotPermit, RequestError> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .map(|_| SlotPermit {
                in_use: self.in_use.clone(),
            })
            .map_err(|_| RequestError::TooManyRequests { limit: self.limit })
    }

    /// Requests in flight now.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }

    /// The limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

/// A request not yet written: where its outcome goes and, for an
/// application's request, its slot (freed when this is dropped).
pub(crate) struct Outgoing<R: 'static, E: 'static = RequestError> {
    responder: Responder<R, E>,
    _permit: Option<SlotPermit>,
}

/// The outcome of a request, once it comes.
pub(crate) type Answer<R, E = RequestError> = oneshot::Receiver<Result<R, E>>;

impl<R: Unpin + Send + 'static, E: Failed> Outgoing<R, E> {
    /// A request holding `permit` (`None`: the connection's own requests,
    /// such as joins, which take no slot).
    pub(crate) fn new(permit: Option<SlotPermit>) -> (Outgoing<R, E>, Answer<R, E>) {
        let (responder, answer) = oneshot::channel();
        let outgoing = Outgoing {
            responder,
            _permit: permit,
        };
        (outgoing, answer)
    }

    /// It was written as `msg_ref`: wait at most `timeout` for the reply.
    pub(crate) fn written(
        self,
        correlator: &Addr<Correlator<R, E>>,
        msg_ref: String,
        timeout: Duration,
    ) {
        correlator.do_send(Register {
            msg_ref,
            timeout,
            outgoing: self,
        });
    }

    /// It will never be written or answered: fail it with `error` (the slot
    /// is freed).
    pub(crate) fn fail(self, error: E) {
        self.answer(Err(error));
    }

    /// Frees the slot, then answers: a caller that sends its next request
    /// the moment it has this answer finds the slot free.
    fn answer(self, outcome: Result<R, E>) {
        let Outgoing { responder, _permit } = self;
        drop(_permit);
        let _ = responder.send(outcome);
    }
}

/// What a correlated request's caller can be failed with.
pub(crate) trait Failed: From<RequestError> + Send + Unpin + 'static {}

impl<E: From<RequestError> + Send + Unpin + 'static> Failed for E {}

/// Waits for a request's outcome; a correlator that went away is `Closed`.
pub(crate) async fn outcome<R, E: Failed>(answer: Answer<R, E>) -> Result<R, E> {
    answer
        .await
        .unwrap_or_else(|_| Err(E::from(RequestError::Closed)))
}

/// The whole of a correlated request: takes a slot from `slots`, writes it
/// with `write` (whose error is answered at once, the slot freed), then
/// registers it as `msg_ref` for `timeout`. Await the returned answer
/// with [`outcome`].
pub(crate) fn send_request<R, E>(
    slots: &RequestSlots,
    correlator: &Addr<Correlator<R, E>>,
    msg_ref: String,
    timeout: Duration,
    write: impl FnOnce() -> Result<(), E>,
) -> Result<Answer<R, E>, E>
where
    R: Unpin + Send + 'static,
    E: Failed,
{
    let permit = slots.try_acquire().map_err(E::from)?;
    write()?;
    let (outgoing, answer) = Outgoing::new(Some(permit));
    outgoing.written(correlator, msg_ref, timeout);
    Ok(answer)
}

/// Waits for the reply to `msg_ref` for at most `timeout`.
#[derive(Message)]
#[rtype(result = "()")]
struct Register<R: 'static, E: 'static> {
    msg_ref: String,
    timeout: Duration,
    outgoing: Outgoing<R, E>,
}

/// A reply arrived for `msg_ref`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Resolve<R: 'static> {
    /// The ref it answers.
    pub(crate) msg_ref: String,
    /// The reply.
    pub(crate) reply: R,
}

/// The socket dropped: fail every pending request with `failure`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub(crate) struct FailAll {
    /// What each pending request fails with.
    pub(crate) failure: RequestError,
}

struct Pending<R: 'static, E: 'static> {
    outgoing: Outgoing<R, E>,
    deadline: SpawnHandle,
}

/// The correlator actor of one connection, for replies of type `R` to
/// callers that expect errors of type `E`.
pub(crate) struct Correlator<R: 'static, E: 'static = RequestError> {
    pending: HashMap<String, Pending<R, E>>,
    mailbox: usize,
    /// `client` or `hub`: whose requests, for the metrics.
    side: &'static str,
}

impl<R: Unpin + Send + 'static, E: Failed> Correlator<R, E> {
    /// A correlator for the requests of `slots` (and the connection's own)
    /// made by `side` (`client` or `hub`, the metrics' label).
    pub(crate) fn new(slots: &RequestSlots, side: &'static str) -> Correlator<R, E> {
        Correlator {
            pending: HashMap::new(),
            // Room for every request in flight plus a burst of replies.
            mailbox: slots.limit() + 1024,
            side,
        }
    }

    fn finish(&mut self, msg_ref: &str, outcome: Result<R, E>) -> Option<SpawnHandle> {
        let pending = self.pending.remove(msg_ref)?;
        // The caller may have stopped waiting; that is its choice.
        pending.outgoing.answer(outcome);
        Some(pending.deadline)
    }
}

impl<R: Unpin + Send + 'static, E: Failed> Actor for Correlator<R, E> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl<R: Unpin + Send + 'static, E: Failed> Handler<Register<R, E>> for Correlator<R, E> {
    type Result = ();

    fn handle(&mut self, msg: Register<R, E>, ctx: &mut Context<Self>) {
        let msg_ref = msg.msg_ref.clone();
        let after = msg.timeout;
        let deadline = ctx.run_later(after, move |correlator, _| {
            metrics::counter!("switchboard_request_timeouts_total", "side" => correlator.side)
                .increment(1);
            correlator.finish(&msg_ref, Err(E::from(RequestError::Timeout { after })));
        });
        let pending = Pending {
            outgoing: msg.outgoing,
            deadline,
        };
        if let Some(previous) = self.pending.insert(msg.msg_ref, pending) {
            // Refs are unique per connection; a reuse is a bug upstream.
            tracing::error!("request ref registered twice; failing the older one");
            ctx.cancel_future(previous.deadline);
            previous.outgoing.fail(E::from(RequestError::Disconnected));
        }
    }
}

impl<R: Unpin + Send + 'static, E: Failed> Handler<Resolve<R>> for Correlator<R, E> {
    type Result = ();

    fn handle(&mut self, msg: Resolve<R>, ctx: &mut Context<Self>) {
        match self.finish(&msg.msg_ref, Ok(msg.reply)) {
            Some(deadline) => {
                ctx.cancel_future(deadline);
            }
            None => {
                metrics::counter!("switchboard_late_replies_total", "side" => self.side)
                    .increment(1);
                tracing::debug!(msg_ref = %msg.msg_ref, "dropped a reply nobody waits for");
            }
        }
    }
}

impl<R: Unpin + Send + 'static, E: Failed> Handler<FailAll> for Correlator<R, E> {
    type Result = ();

    fn handle(&mut self, msg: FailAll, ctx: &mut Context<Self>) {
        let refs: Vec<String> = self.pending.keys().cloned().collect();
        for msg_ref in refs {
            if let Some(deadline) = self.finish(&msg_ref, Err(E::from(msg.failure))) {
                ctx.cancel_future(deadline);
            }
        }
    }
}
