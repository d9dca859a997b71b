//! `Producer`: the envelope v1 side of a connection (the ingest client).
//!
//! `send_data` keeps each data envelope until the hub acks it: written at
//! once while connected and not throttled, otherwise held in a bounded
//! buffer; after every reconnect every unacked envelope is written again, in
//! order (at-least-once; the hub and JetStream deduplicate by id). A `slow`
//! from the hub pauses writing until the matching resume. Requests are
//! correlated by id through the connection's `Correlator`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::wrap_future;
use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message,
    ResponseFuture,
};
use bytestring::ByteString;
use serde_json::Value;
use tokio::sync::oneshot;

use super::inbound::Inbound;
use crate::client::config::ConnectionConfig;
use crate::client::failure::Failure;
use crate::client::link::{ConnectionClosed, TransportDown, TransportUp};
use crate::protocol::envelope::Envelope;
use crate::transport::correlator::{outcome, send_request, Correlator, RequestSlots};
use crate::transport::outbox::Outbox;
use crate::transport::RequestError;

/// Where the ack of a queued data envelope arrives.
pub(crate) type AckWait = oneshot::Receiver<Result<(), Failure>>;

/// Queues one data envelope (written at once or buffered); answers then,
/// with the receiver of its ack when `wait_for_ack` is set.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<AckWait>, Failure>")]
pub(crate) struct SendData {
    /// The payload.
    pub payload: Value,
    /// Whether to wait for the ack.
    pub wait_for_ack: bool,
    /// The envelope id to use (a sequenced message's `producer:sequence`);
    /// `None`: a fresh one.
    pub id: Option<String>,
}

/// Sends a request and waits for the correlated reply envelope.
#[derive(Debug, Message)]
#[rtype(result = "Result<Envelope, RequestError>")]
pub(crate) struct Request {
    /// Method name.
    pub method: String,
    /// Parameters.
    pub params: Value,
}

/// The hub acked or nacked one data envelope.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Acked {
    /// The envelope id.
    pub id: String,
    /// `Err((reason, error))` for a nack.
    pub result: Result<(), (String, String)>,
}

/// A request from the hub. The producer answers `status` itself
/// (`{unacked, paused, connected}`); any other method gets an error reply
/// `{"code": "not_found"}`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct HubRequest {
    /// The request's id (the reply carries it).
    pub id: String,
    /// Method name.
    pub method: String,
}

/// The hub said `slow` (true) or resumed (false).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Throttle(pub bool);

struct Unacked {
    id: String,
    frame: ByteString,
    responder: Option<oneshot::Sender<Result<(), Failure>>>,
    expires_at: Instant,
}

/// The producer actor of one envelope connection.
pub(crate) struct Producer {
    config: Arc<ConnectionConfig>,
    correlator: Addr<Correlator<Envelope>>,
    slots: RequestSlots,
    prefix: String,
    next: u64,
    outbox: Option<Outbox>,
    closed: bool,
    paused: bool,
    unacked: VecDeque<Unacked>,
    written: usize,
    bytes: usize,
    waiting_for_room: bool,
    inbound: Inbound,
}

impl Producer {
    /// A producer whose envelope ids start with a random prefix (unique per
    /// producer, so resends after a restart cannot collide with others).
    pub(crate) fn new(
        config: Arc<ConnectionConfig>,
        correlator: Addr<Correlator<Envelope>>,
        slots: RequestSlots,
    ) -> Producer {
        Producer {
            config,
            correlator,
            slots,
            prefix: format!("{:016x}", fastrand::u64(..)),
            next: 0,
            outbox: None,
            closed: false,
            paused: false,
            unacked: VecDeque::new(),
            written: 0,
            bytes: 0,
            waiting_for_room: false,
            inbound: Inbound::default(),
        }
    }

    /// The live link's write queue, if connected.
    pub(super) fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// What the other end sends this connection.
    pub(super) fn inbound_mut(&mut self) -> &mut Inbound {
        &mut self.inbound
    }

    fn next_id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }

    /// Writes every unacked envelope not yet written on this link, in order,
    /// never more than the socket's write queue holds: when it is full, the
    /// rest waits until the writer has drained half of it.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        let Some(outbox) = self.outbox.clone() else {
            return;
        };
        if self.paused {
            return;
        }
        let room = self.config.write_queue_frames.max(2);
        while let Some(entry) = self.unacked.get(self.written) {
            if outbox.backlog() + 1 >= room {
                if !self.waiting_for_room {
                    self.waiting_for_room = true;
                    let drained = outbox.drained_below(room / 2);
                    ctx.spawn(wrap_future::<_, Self>(drained).map(|(), producer, ctx| {
                        producer.waiting_for_room = false;
                        producer.flush(ctx);
                    }));
                }
                return;
            }
            if outbox.push(entry.frame.clone()).is_err() {
                return; // the link is going; everything is resent after it
            }
            self.written += 1;
        }
    }

    fn remove(&mut self, index: usize) -> Option<Unacked> {
        let entry = self.unacked.remove(index)?;
        self.bytes -= entry.frame.len();
        if index < self.written {
            self.written -= 1;
        }
        Some(entry)
    }

    fn sweep(&mut self) {
        let now = Instant::now();
        let after = self.config.buffer_deadline;
        while self
            .unacked
            .front()
            .is_some_and(|entry| entry.expires_at <= now)
        {
            if let Some(entry) = self.remove(0) {
                metrics::counter!("switchboard_client_data_expired_total").increment(1);
                if let Some(responder) = entry.responder {
                    let _ = responder.send(Err(Failure::Timeout { after }));
                }
            }
        }
    }
}

impl Actor for Producer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::client::link::MAILBOX_CAPACITY);
        let every = (self.config.buffer_deadline / 10)
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        ctx.run_interval(every, |producer, _| producer.sweep());
    }
}

impl Handler<SendData> for Producer {
    type Result = Result<Option<AckWait>, Failure>;

    fn handle(&mut self, msg: SendData, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed {
            return Err(Failure::Closed);
        }
        let id = msg.id.unwrap_or_else(|| self.next_id());
        let frame = ByteString::from(Envelope::data(id.clone(), msg.payload).encode());
        if self.unacked.len() >= self.config.buffer_max_frames {
            return Err(Failure::BufferFull {
                reason: "buffer_max_frames",
            });
        }
        if self.bytes + frame.len() > self.config.buffer_max_bytes {
            return Err(Failure::BufferFull {
                reason: "buffer_max_bytes",
            });
        }
        let (responder, answer) = if msg.wait_for_ack {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.bytes += frame.len();
        self.unacked.push_back(Unacked {
            id,
            frame,
            responder,
            expires_at: Instant::now() + self.config.buffer_deadline,
        });
        self.flush(ctx);
        Ok(answer)
    }
}

impl Handler<Request> for Producer {
    type Result = ResponseFuture<Result<Envelope, RequestError>>;

    fn handle(&mut self, msg: Request, _: &mut Context<Self>) -> Self::Result {
        if self.closed {
            return Box::pin(async { Err(RequestError::Closed) });
        }
        let Some(outbox) = self.outbox.clone() else {
            return Box::pin(async { Err(RequestError::Disconnected) });
        };
        let id = self.next_id();
        let frame = Envelope::request(id.clone(), msg.method, msg.params).encode();
        let write = || {
            outbox.push(ByteString::from(frame)).map_err(|_| {
                if outbox.is_gone() {
                    RequestError::Disconnected
                } else {
                    RequestError::Backpressure
                }
            })
        };
        let timeout = self.config.push_timeout;
        match send_request(&self.slots, &self.correlator, id, timeout, write) {
            Ok(answer) => Box::pin(outcome(answer)),
            Err(error) => Box::pin(async move { Err(error) }),
        }
    }
}

impl Handler<Acked> for Producer {
    type Result = ();

    fn handle(&mut self, msg: Acked, _: &mut Context<Self>) {
        let Some(index) = self.unacked.iter().position(|entry| entry.id == msg.id) else {
            metrics::counter!("switchboard_client_late_acks_total").increment(1);
            return; // a duplicate ack of a resent envelope
        };
        let Some(entry) = self.remove(index) else {
            return;
        };
        if let Err((reason, error)) = &msg.result {
            metrics::counter!("switchboard_client_data_nacked_total", "reason" => reason.clone())
                .increment(1);
            tracing::debug!(id = %msg.id, %reason, %error, "data nacked");
        }
        if let Some(responder) = entry.responder {
            let outcome = msg
                .result
                .map_err(|(reason, error)| Failure::Nacked { reason, error });
            let _ = responder.send(outcome);
        }
    }
}

impl Handler<HubRequest> for Producer {
    type Result = ();

    fn handle(&mut self, msg: HubRequest, _: &mut Context<Self>) {
        let reply = match msg.method.as_str() {
            "status" => Envelope::reply_ok(
                msg.id,
                serde_json::json!({
                    "unacked": self.unacked.len(),
                    "paused": self.paused,
                    "connected": self.outbox.is_some(),
                }),
            ),
            other => Envelope::reply_error(
                msg.id,
                serde_json::json!({"code": "not_found", "message": format!("unknown method `{other}`")}),
            ),
        };
        if let Some(outbox) = &self.outbox {
            // A full write queue drops the link; the hub's request then times out.
            let _ = outbox.push(ByteString::from(reply.encode()));
        }
    }
}

impl Handler<Throttle> for Producer {
    type Result = ();

    fn handle(&mut self, Throttle(slow): Throttle, ctx: &mut Context<Self>) {
        if slow != self.paused {
            tracing::info!(slow, "hub backpressure");
        }
        self.paused = slow;
        self.flush(ctx);
    }
}

impl Handler<TransportUp> for Producer {
    type Result = ();

    fn handle(&mut self, msg: TransportUp, ctx: &mut Context<Self>) {
        self.outbox = Some(msg.outbox);
        self.written = 0;
        self.waiting_for_room = false;
        self.paused = false;
        if !self.unacked.is_empty() {
            metrics::counter!("switchboard_client_data_resent_total")
                .increment(self.unacked.len() as u64);
        }
        self.flush(ctx);
    }
}

impl Handler<TransportDown> for Producer {
    type Result = ();

    fn handle(&mut self, _: TransportDown, _: &mut Context<Self>) {
        self.outbox = None;
        self.written = 0;
    }
}

impl Handler<ConnectionClosed> for Producer {
    type Result = ();

    fn handle(&mut self, _: ConnectionClosed, ctx: &mut Context<Self>) {
        self.closed = true;
        self.outbox = None;
        while let Some(entry) = self.remove(0) {
            if let Some(responder) = entry.responder {
                let _ = responder.send(Err(Failure::Closed));
            }
        }
        ctx.stop();
    }
}
