//! The envelope v1 protocol of one `/ingest` socket.
//!
//! `data` goes into the hub's [`IngestQueue`], what one read of the socket
//! produced as one batch, its payload as the raw JSON text it arrived as;
//! its `ack` (or `nack`) is sent when the sink accepted it (or it was
//! dropped). `request`s to the built-in
//! methods (`status`, `backpressure`) are answered at once with a correlated
//! `reply`. The queue's slow/resume edges reach the sender as `slow`
//! envelopes. Invalid messages are counted by reason and nacked when an id
//! can be read; the socket stays open.
//!
//! Nothing a sender does makes its answers overflow the socket: it owes at
//! most a quarter of its outbox, and it is not read (TCP pushes back on it)
//! while it owes that many, while its outbox is half full (the session's
//! rule), or, under `block`, while the queue is full.

use std::sync::Arc;

use actix::fut::wrap_future;
use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Recipient};
use bytes::Bytes;
use bytestring::ByteString;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::config::BidirectionalConfig;
use crate::ingest::dedup::scoped;
use crate::ingest::{
    Admission, Backpressure, Batched, Dedup, IngestOutcome, IngestOutcomes, IngestQueue,
    QueueGauge, Signal, Upstream,
};
use crate::protocol::content::{key_fields, EnvelopeKey};
use crate::protocol::envelope::{self, Body, Envelope};
use crate::server::registry::{Registry, SessionId};
use crate::server::session::{Protocol, ServerSession};
use crate::server::stats::{CloseCause, FrameProblem, HubStats, Throttle};
use crate::sink::{ItemKind, SinkItem};
use crate::transport::correlator::{Correlator, FailAll, RequestSlots, Resolve};
use crate::transport::outbox::Outbox;
use crate::transport::read_gate::{Hold, ReadGate};
use crate::transport::RequestError;
use actix_ws::CloseCode;

/// Per-socket state of an ingest connection.
pub(crate) struct IngestSocket {
    id: SessionId,
    outbox: Outbox,
    queue: Addr<IngestQueue>,
    admission: Option<Arc<Semaphore>>,
    registry: Arc<Registry>,
    stats: Arc<HubStats>,
    signals: u64,
    rate_limit: Option<u64>,
    outbox_frames: usize,
    correlator: Addr<Correlator<Envelope>>,
    slots: RequestSlots,
    request_timeout: std::time::Duration,
    requests: u64,
    dedup: Arc<Dedup>,
    /// Who the sender authenticated as; its producers are scoped to it.
    principal: String,
    gauge: Arc<QueueGauge>,
    /// Answers (acks, nacks) this socket owes: data handed on, not yet
    /// answered. At most a quarter of its outbox, so what it owes fits.
    owed: usize,
    gate: ReadGate,
    /// How long the socket may stay held for what it owes.
    idle_timeout: std::time::Duration,
    /// Holds for what it owes so far (tells a hold's timer it is stale).
    holds: u64,
    /// Data of the current read, not yet handed to the queue.
    gathering: Gathering,
    /// Where the queue sends a batch's outcomes.
    outcomes: Recipient<IngestOutcomes>,
}

/// What an ingest socket needs from the hub.
#[derive(Clone)]
pub(crate) struct IngestDeps {
    /// The hub's queue.
    pub queue: Addr<IngestQueue>,
    /// Under `block`, the queue's admission semaphore.
    pub admission: Option<Arc<Semaphore>>,
    /// The hub's directory.
    pub registry: Arc<Registry>,
    /// The hub's counters.
    pub stats: Arc<HubStats>,
    /// Capacity of each socket's outbox, in frames.
    pub outbox_frames: usize,
    /// Requests from the hub to the sender.
    pub bidirectional: BidirectionalConfig,
    /// Recognises resent sequenced messages.
    pub dedup: Arc<Dedup>,
    /// Who the sender authenticated as.
    pub principal: String,
    /// The queue's figures, for `status`.
    pub gauge: Arc<QueueGauge>,
    /// How long the socket may stay held for what it owes.
    pub idle_timeout: std::time::Duration,
}

/// Longest producer name a content envelope may carry.
const MAX_PRODUCER_NAME: usize = 128;

/// Largest frame over the rate limit that is decoded to be answered
/// `rate_limited`; larger ones are only counted.
pub(crate) const REFUSAL_DECODE_BYTES: usize = 4096;

/// Longest id a data envelope may carry.
const MAX_ID_BYTES: usize = 256;

mod batch;
mod decode;
mod requests;

use batch::Gathering;

type Session = ServerSession<IngestSocket>;

impl IngestSocket {
    /// State for a new socket; registers it for backpressure signals.
    pub(crate) fn new(
        id: SessionId,
        deps: IngestDeps,
        outbox: Outbox,
        gate: ReadGate,
        ctx: &mut Context<Session>,
    ) -> IngestSocket {
        deps.queue.do_send(Upstream {
            id,
            recipient: Some(ctx.address().recipient()),
        });
        deps.registry.add_sender(id, ctx.address().recipient());
        let slots = RequestSlots::new(deps.bidirectional.max_concurrent_requests);
        IngestSocket {
            correlator: Correlator::new(&slots, "hub").start(),
            slots,
            request_timeout: deps.bidirectional.request_timeout,
            requests: 0,
            id,
            outbox,
            queue: deps.queue,
            admission: deps.admission,
            registry: deps.registry,
            stats: deps.stats,
            signals: 0,
            rate_limit: None,
            outbox_frames: deps.outbox_frames,
            dedup: deps.dedup,
            principal: deps.principal,
            gauge: deps.gauge,
            owed: 0,
            gate,
            idle_timeout: deps.idle_timeout,
            holds: 0,
            gathering: Gathering::default(),
            outcomes: ctx.address().recipient(),
        }
    }

    fn write(&self, envelope: &Envelope) {
        // A full outbox surfaces as SlowConsumer, which closes the socket.
        let _ = self.outbox.push(ByteString::from(envelope.encode()));
    }

    fn invalid(&self, text: &str, error: &crate::protocol::DecodeError) {
        let problem = match error {
            crate::protocol::DecodeError::Json(_) => FrameProblem::InvalidJson,
            _ => FrameProblem::Malformed,
        };
        self.stats.frame_problem(problem);
        tracing::debug!(%error, "invalid envelope");
        if let Some(nack) = envelope::nack_for_invalid(text, error) {
            self.write(&nack);
        }
    }

    /// Run after every frame and every answer: the socket is not read
    /// while it owes a quarter of its outbox in answers (the session also
    /// stops reading while the outbox is half full), so what it owes always
    /// fits. Reading, not closing, is what slows a sender down: TCP pushes
    /// back on it.
    /// A socket held this way for an idle timeout (the sink accepts
    /// nothing) is closed with 1013, so that it does not hold a slot while
    /// its sender has long given up on it.
    fn pace(&mut self, ctx: &mut Context<Session>) {
        let budget = (self.outbox_frames / 4).max(1);
        if self.owed < budget {
            self.gate.release(Hold::Owed);
        } else if !self.gate.is_held(Hold::Owed) {
            self.stats.throttled(Throttle::Owed);
            self.gate.hold(Hold::Owed);
            self.holds += 1;
            let hold = self.holds;
            ctx.run_later(self.idle_timeout, move |session, ctx| {
                let socket = session.protocol();
                if socket.holds == hold && socket.gate.is_held(Hold::Owed) {
                    let why = "acks owed for an idle timeout: the sink accepts nothing";
                    session.close(ctx, CloseCause::SlowConsumer, CloseCode::Again, why);
                }
            });
        }
    }

    fn handle(&mut self, text: &str, ctx: &mut Context<Session>) {
        if let Some(data) = decode::data_frame(text) {
            let key = decode::content_key(data.payload);
            return self.admit(data.id.into_owned(), data.payload.get(), key, ctx);
        }
        let message = match Envelope::decode(text) {
            Ok(message) => message,
            Err(error) => return self.invalid(text, &error),
        };
        match message.body {
            Body::Data(payload) => {
                let key = key_fields(&payload).map(|(producer, n)| (producer.to_owned(), n));
                self.admit(message.id, &payload.to_string(), key, ctx);
            }
            Body::Request { method, params } => self.answer(message.id, &method, &params),
            Body::Reply(_) => {
                // Answers a request of the hub's; a late or unknown one is
                // dropped and counted by the correlator.
                let msg_ref = message.id.clone();
                self.correlator.do_send(Resolve {
                    msg_ref,
                    reply: message,
                });
            }
            Body::Ack | Body::Nack { .. } | Body::Slow(_) => {
                self.stats.frame_problem(FrameProblem::InvalidPayload);
                let error = Some(format!(
                    "`{}` is sent by the hub, not to it",
                    message.body.type_name()
                ));
                self.write(&Envelope::nack(message.id, "unexpected_type", error));
            }
        }
    }

    /// Admits a `data` envelope: `payload` is its JSON text, `key` its
    /// producer and sequence when it is a content envelope.
    fn admit(
        &mut self,
        id: String,
        payload: &str,
        key: Option<(String, u64)>,
        ctx: &mut Context<Session>,
    ) {
        if id.len() > MAX_ID_BYTES {
            // Ids are echoed and, for a resend, kept while it waits.
            self.stats.frame_problem(FrameProblem::InvalidPayload);
            let why = Some(format!("envelope ids are at most {MAX_ID_BYTES} bytes"));
            let short: String = id.chars().take(64).collect();
            return self.write(&Envelope::nack(short, "id_too_long", why));
        }
        let mut ticket = None;
        // A cluster node stores under `k:` a sequenced message's position
        // (a resend to another node is stored once), under `i:` other ids
        // scoped to the credential (no sender's ids shadow another's).
        let clustered = self.registry.cluster().is_some();
        let mut store_id = clustered.then(|| format!("i:{}", scoped(&self.principal, &id)));
        if let Some((producer, sequence)) = key {
            if producer.len() > MAX_PRODUCER_NAME {
                self.stats.frame_problem(FrameProblem::InvalidPayload);
                let why = format!("producer names are at most {MAX_PRODUCER_NAME} bytes");
                return self.write(&Envelope::nack(id, "producer_too_long", Some(why)));
            }
            // Producers are the principal's own: no credential can touch
            // another's (the floor of `alice/probe` is not `bob/probe`'s).
            let key = EnvelopeKey {
                producer: scoped(&self.principal, &producer),
                sequence,
            };
            if clustered {
                store_id = Some(format!("k:{}:{sequence}", key.producer));
            }
            let origin = ctx.address().recipient();
            match self.dedup.admit(&key, &id, &origin) {
                (Admission::New, claim) => ticket = claim,
                // Stored already: ack again, store nothing.
                (Admission::Duplicate, _) => return self.write(&Envelope::ack(id)),
                // Acked when its original is.
                (Admission::InFlight, _) => {
                    self.owed += 1;
                    return;
                }
                (Admission::Busy, _) => {
                    let busy = Some("its original is still on its way".to_owned());
                    return self.write(&Envelope::nack(id, "busy", busy));
                }
                (Admission::TooManyProducers, _) => {
                    let why = Some(
                        "this credential's producers all have messages on their way".to_owned(),
                    );
                    return self.write(&Envelope::nack(id, "too_many_producers", why));
                }
            }
        }
        let entry = Batched {
            item: SinkItem {
                store_id,
                id,
                kind: ItemKind::Data,
                payload: Bytes::copy_from_slice(payload.as_bytes()),
            },
            permit: None,
            dedup: ticket,
        };
        let Some(admission) = self.admission.clone() else {
            return self.gather(entry, ctx);
        };
        match admission.clone().try_acquire_owned() {
            Ok(permit) => self.gather(
                Batched {
                    permit: Some(permit),
                    ..entry
                },
                ctx,
            ),
            Err(_) => {
                // Block: what was gathered goes on; read nothing more from
                // this socket until there is room.
                self.flush(ctx);
                let wait = async move { admission.acquire_owned().await.ok() };
                ctx.wait(
                    wrap_future::<_, Session>(wait).map(move |permit, session, ctx| {
                        session.protocol().push(Batched { permit, ..entry }, ctx);
                    }),
                );
            }
        }
    }
}

impl Protocol for IngestSocket {
    fn on_text(&mut self, text: &bytestring::ByteString, ctx: &mut Context<Session>) {
        self.handle(text, ctx);
        self.pace(ctx);
    }

    fn on_rate_limited(&mut self, text: &str, ctx: &mut Context<Session>) {
        // Answering costs a decode: only small frames are answered.
        if text.len() > REFUSAL_DECODE_BYTES {
            return;
        }
        let Ok(message) = Envelope::decode(text) else {
            return;
        };
        let why = "over the socket's inbound rate limit";
        match message.body {
            Body::Data(_) => {
                let why = Some(why.to_owned());
                self.write(&Envelope::nack(message.id, "rate_limited", why));
            }
            Body::Request { .. } => self.write(&Envelope::reply_error(
                message.id,
                json!({"code": "rate_limited", "message": why}),
            )),
            _ => {}
        }
        self.pace(ctx);
    }

    fn on_stop(&mut self) {
        self.flush_on_stop();
        self.queue.do_send(Upstream {
            id: self.id,
            recipient: None,
        });
        self.registry.remove_session(self.id, std::iter::empty());
        self.correlator.do_send(FailAll {
            failure: RequestError::Disconnected,
        });
    }
}

/// The `ack` or `nack` an outcome is answered with.
fn answer(outcome: IngestOutcome) -> Envelope {
    match outcome.result {
        Ok(()) => Envelope::ack(outcome.id),
        Err(nack) => Envelope::nack(outcome.id, nack.reason, Some(nack.error)),
    }
}

/// Outcomes one at a time: of resends that waited for their original
/// (the duplicate filter answers those).
impl Handler<IngestOutcome> for Session {
    type Result = ();

    fn handle(&mut self, outcome: IngestOutcome, ctx: &mut Context<Self>) {
        let socket = self.protocol();
        socket.write(&answer(outcome));
        debug_assert!(socket.owed > 0, "an outcome for nothing owed");
        socket.owed = socket.owed.saturating_sub(1);
        socket.pace(ctx);
    }
}

impl Handler<Backpressure> for Session {
    type Result = ();

    fn handle(&mut self, Backpressure(signal): Backpressure, _: &mut Context<Self>) {
        let socket = self.protocol();
        socket.signals += 1;
        let id = format!("slow-{}", socket.signals);
        let message = match signal {
            Signal::Slow(level) => Envelope::slow(id, level.depth as u64, level.capacity as u64),
            Signal::Resumed(level) => {
                Envelope::resumed(id, level.depth as u64, level.capacity as u64)
            }
        };
        socket.write(&message);
    }
}
