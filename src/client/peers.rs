//! Where a connection's traffic goes: the actors of its protocol, and the
//! routing of each inbound text frame to them.

use std::future::Future;
use std::pin::Pin;

use actix::dev::SendError;
use actix::{Actor, Addr, Context, Handler, Message};

use crate::client::link::{ConnectionClosed, TransportDown, TransportUp};
use crate::client::phoenix::subscription::{Inbound, Subscription};
use crate::client::producer::actor::{Acked, HubRequest, Producer, Throttle};
use crate::client::producer::inbound::InboundData;
use crate::protocol::envelope::{Body, Envelope};
use crate::protocol::phoenix::{self, Frame, Reply};
use crate::transport::correlator::{Correlator, FailAll, Resolve};
use crate::transport::outbox::Outbox;
use crate::transport::RequestError;

use crate::client::failure::Failure;

/// A delivery waiting for room in a receiver's mailbox.
pub(crate) type Backlog = Pin<Box<dyn Future<Output = ()>>>;

/// The actors a connection hands its traffic to, per protocol.
#[derive(Clone)]
pub(crate) enum Peers {
    /// Phoenix V2: topics and pushes, and the correlator of replies by ref.
    Phoenix {
        /// Topics, buffers, handlers.
        subscription: Addr<Subscription>,
        /// Pending pushes by ref.
        correlator: Addr<Correlator<Reply, Failure>>,
    },
    /// Envelope v1: unacked data, and the correlator of replies by id.
    Envelope {
        /// Unacked data, throttling.
        producer: Addr<Producer>,
        /// Pending requests by id.
        correlator: Addr<Correlator<Envelope>>,
    },
}

impl Peers {
    /// Routes one inbound text frame to the actor it is for. A `Some` is a
    /// delivery that waits for room: the connection must await it before
    /// reading on.
    pub(crate) fn route(
        &self,
        text: &str,
        pending_heartbeat: &mut Option<String>,
    ) -> Option<Backlog> {
        match self {
            Peers::Phoenix {
                subscription,
                correlator,
            } => route_phoenix(text, pending_heartbeat, subscription, correlator),
            Peers::Envelope {
                producer,
                correlator,
            } => route_envelope(text, producer, correlator),
        }
    }

    pub(crate) fn transport_up(&self, outbox: Outbox) {
        match self {
            Peers::Phoenix { subscription, .. } => subscription.do_send(TransportUp { outbox }),
            Peers::Envelope { producer, .. } => producer.do_send(TransportUp { outbox }),
        }
    }

    pub(crate) fn transport_down(&self, failure: RequestError) {
        match self {
            Peers::Phoenix {
                subscription,
                correlator,
            } => {
                correlator.do_send(FailAll { failure });
                subscription.do_send(TransportDown);
            }
            Peers::Envelope {
                producer,
                correlator,
            } => {
                correlator.do_send(FailAll { failure });
                producer.do_send(TransportDown);
            }
        }
    }

    pub(crate) fn closed(&self) {
        self.transport_down(RequestError::Closed);
        match self {
            Peers::Phoenix { subscription, .. } => subscription.do_send(ConnectionClosed),
            Peers::Envelope { producer, .. } => producer.do_send(ConnectionClosed),
        }
    }
}

/// Routes one Phoenix V2 frame: the heartbeat reply clears
/// `pending_heartbeat`, other replies go to the correlator by ref, the rest
/// to the subscription.
fn route_phoenix(
    text: &str,
    pending_heartbeat: &mut Option<String>,
    subscription: &Addr<Subscription>,
    correlator: &Addr<Correlator<Reply, Failure>>,
) -> Option<Backlog> {
    let frame = match Frame::decode(text) {
        Ok(frame) => frame,
        Err(error) => {
            metrics::counter!("switchboard_client_invalid_frames_total", "reason" => error.reason())
                .increment(1);
            tracing::debug!(%error, "dropped an invalid frame");
            return None;
        }
    };
    if frame.event == phoenix::PHX_REPLY {
        if let Some(msg_ref) = frame.msg_ref.clone() {
            if frame.topic == phoenix::PHOENIX_TOPIC
                && pending_heartbeat.as_deref() == Some(msg_ref.as_str())
            {
                *pending_heartbeat = None;
                return None;
            }
            match Reply::from_raw(&frame.payload) {
                Ok(reply) => return deliver(correlator, Resolve { msg_ref, reply }),
                Err(error) => {
                    metrics::counter!("switchboard_client_invalid_frames_total", "reason" => error.reason())
                        .increment(1);
                }
            }
            return None;
        }
    }
    // Pushes to a subscription that fell behind are dropped and counted
    // (its handlers' own queues are bounded the same way).
    if subscription.try_send(Inbound(frame)).is_err() {
        metrics::counter!("switchboard_client_pushes_dropped_total", "reason" => "subscription_busy")
            .increment(1);
        tracing::warn!("subscription mailbox full: push dropped");
    }
    None
}

/// Delivers `message` at once, or hands back a future that delivers it once
/// the receiver has room: the connection then stops reading its socket until
/// it resolves (backpressure), so answers are never dropped.
fn deliver<A, M>(addr: &Addr<A>, message: M) -> Option<Backlog>
where
    A: Actor<Context = Context<A>> + Handler<M>,
    M: Message<Result = ()> + Send + 'static,
{
    match addr.try_send(message) {
        Ok(()) => None,
        Err(SendError::Full(message)) => {
            let sent = addr.send(message);
            Some(Box::pin(async move {
                let _ = sent.await;
            }))
        }
        Err(SendError::Closed(_)) => None,
    }
}

/// Routes one envelope v1 frame: replies to the correlator; acks,
/// throttling, requests and data to the producer.
fn route_envelope(
    text: &str,
    producer: &Addr<Producer>,
    correlator: &Addr<Correlator<Envelope>>,
) -> Option<Backlog> {
    let message = match Envelope::decode(text) {
        Ok(message) => message,
        Err(error) => {
            metrics::counter!("switchboard_client_invalid_frames_total", "reason" => error.reason())
                .increment(1);
            return None;
        }
    };
    match message.body {
        Body::Ack => deliver(
            producer,
            Acked {
                id: message.id,
                result: Ok(()),
            },
        ),
        Body::Nack { reason, error } => deliver(
            producer,
            Acked {
                id: message.id,
                result: Err((reason, error.unwrap_or_default())),
            },
        ),
        Body::Slow(signal) => deliver(producer, Throttle(!signal.resumed)),
        Body::Reply(_) => deliver(
            correlator,
            Resolve {
                msg_ref: message.id.clone(),
                reply: message,
            },
        ),
        Body::Request { method, .. } => deliver(
            producer,
            HubRequest {
                id: message.id,
                method,
            },
        ),
        Body::Data(payload) => deliver(
            producer,
            InboundData {
                id: message.id,
                payload,
            },
        ),
    }
}
