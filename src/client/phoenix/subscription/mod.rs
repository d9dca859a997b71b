//! `Subscription`: the topics of one connection (PHX-C2, C5, C6, C8, C9,
//! C10, C12).
//!
//! It owns each topic's channel state, join params and buffer of pushes made
//! while the topic is not joined, and the application's handlers. Nothing is
//! sent on a topic before its join reply; buffered pushes keep their ref and
//! are flushed in order right after it. After every reconnect each topic is
//! joined exactly once (a new join_ref), its buffer flushed, and only then a
//! `Rejoined` event emitted. It outlives restarts of the `Connection` actor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, ResponseFuture};
use tokio::sync::oneshot;

use crate::client::config::ConnectionConfig;
use crate::client::events::Announcer;
use crate::client::failure::Failure;
use crate::client::link::{ConnectionClosed, TransportDown, TransportUp, MAILBOX_CAPACITY};
use crate::client::phoenix::channel_state::{ChannelEvent, ChannelState};
use crate::client::phoenix::direct::DirectWriters;
use crate::client::positions::Positions;
use crate::client::refs::RefCounter;
use crate::protocol::phoenix::{self, Reply};
use crate::transport::correlator::{outcome, Correlator, Outgoing, RequestSlots};
use crate::transport::outbox::Outbox;

mod delivery;
mod lifecycle;
mod messages;
mod outbound;
mod topic;

pub use messages::Incoming;
pub(crate) use messages::{Cast, Inbound, Join, Leave, On, Push, PushSink};
pub(crate) use topic::refusal_reason;

use topic::{Topic, MAX_JOIN_WAITERS};

/// The subscription actor of one connection.
pub(crate) struct Subscription {
    config: Arc<ConnectionConfig>,
    correlator: Addr<Correlator<Reply, Failure>>,
    slots: RequestSlots,
    refs: RefCounter,
    announcer: Announcer,
    outbox: Option<Outbox>,
    closed: bool,
    order: Vec<String>,
    topics: HashMap<String, Topic>,
    handlers: HashMap<String, Vec<(Option<String>, PushSink)>>,
    buffered_bytes: usize,
    direct: DirectWriters,
    positions: Positions,
}

impl Subscription {
    /// Starts the subscription of a connection on the current arbiter.
    pub(crate) fn start_for(
        config: Arc<ConnectionConfig>,
        correlator: Addr<Correlator<Reply, Failure>>,
        slots: RequestSlots,
        refs: RefCounter,
        announcer: Announcer,
        direct: DirectWriters,
        positions: Positions,
    ) -> Addr<Subscription> {
        Subscription {
            config,
            correlator,
            slots,
            refs,
            announcer,
            outbox: None,
            closed: false,
            order: Vec::new(),
            topics: HashMap::new(),
            handlers: HashMap::new(),
            buffered_bytes: 0,
            direct,
            positions,
        }
        .start()
    }
}
impl Actor for Subscription {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let every = (self.config.buffer_deadline / 10)
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        ctx.run_interval(every, |subscription, _| subscription.sweep_expired());
    }
}

impl Handler<TransportUp> for Subscription {
    type Result = ();

    fn handle(&mut self, msg: TransportUp, ctx: &mut Context<Self>) {
        self.outbox = Some(msg.outbox);
        for name in self.order.clone() {
            let join_ref = self.refs.next();
            self.apply(&name, ChannelEvent::TransportUp { join_ref }, ctx);
        }
    }
}

impl Handler<TransportDown> for Subscription {
    type Result = ();

    fn handle(&mut self, _: TransportDown, ctx: &mut Context<Self>) {
        self.outbox = None;
        for name in self.order.clone() {
            if let Some(timer) = self
                .topics
                .get_mut(&name)
                .and_then(|t| t.rejoin_timer.take())
            {
                ctx.cancel_future(timer);
            }
            self.apply(&name, ChannelEvent::TransportLost, ctx);
        }
    }
}

impl Handler<ConnectionClosed> for Subscription {
    type Result = ();

    fn handle(&mut self, _: ConnectionClosed, ctx: &mut Context<Self>) {
        self.closed = true;
        self.outbox = None;
        for name in self.order.clone() {
            self.drop_topic(&name, Failure::Closed, ctx);
        }
        // Nothing is left to do: stop, so the sweep timer does not keep us alive.
        ctx.stop();
    }
}

impl Handler<Inbound> for Subscription {
    type Result = ();

    fn handle(&mut self, Inbound(frame): Inbound, ctx: &mut Context<Self>) {
        let Some(topic) = self.topics.get(&frame.topic) else {
            return;
        };
        if !topic.lifecycle.accepts(frame.join_ref.as_deref()) {
            metrics::counter!("switchboard_client_stale_messages_total").increment(1);
            tracing::debug!(topic = %frame.topic, event = %frame.event, "dropped a message of an old join");
            return;
        }
        let join_ref = frame
            .join_ref
            .clone()
            .or_else(|| topic.state().join_ref().map(str::to_owned))
            .unwrap_or_default();
        match frame.event.as_str() {
            phoenix::PHX_CLOSE => {
                tracing::info!(topic = %frame.topic, "server closed the channel");
                self.apply(&frame.topic, ChannelEvent::PhxClose { join_ref }, ctx);
            }
            phoenix::PHX_ERROR => {
                tracing::warn!(topic = %frame.topic, payload = %frame.payload, "channel errored on the server");
                self.apply(&frame.topic, ChannelEvent::PhxError { join_ref }, ctx);
            }
            _ => self.receive(frame, ctx),
        }
    }
}

impl Handler<Join> for Subscription {
    type Result = ResponseFuture<Result<Reply, Failure>>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed {
            return Box::pin(async { Err(Failure::Closed) });
        }
        let topic = self
            .topics
            .entry(msg.topic.clone())
            .or_insert_with(|| Topic::new(msg.params.clone(), msg.recovery.clone()));
        topic.waiters.retain(|waiter| !waiter.is_closed());
        if topic.waiters.len() >= MAX_JOIN_WAITERS {
            return Box::pin(async {
                Err(Failure::BufferFull {
                    reason: "join waiters",
                })
            });
        }
        topic.params = msg.params;
        if topic.recovery.is_none() {
            topic.recovery = msg.recovery;
        }
        let (responder, answer) = oneshot::channel();
        let answer = Box::pin(async move { answer.await.unwrap_or(Err(Failure::Closed)) });
        match topic.state() {
            ChannelState::Joined { .. } => {
                let _ = responder.send(Ok(Reply::ok(topic.last_reply.clone())));
            }
            ChannelState::Closed => {
                topic.waiters.push(responder);
                if !self.order.contains(&msg.topic) {
                    self.order.push(msg.topic.clone());
                }
                let join_ref = self.refs.next();
                self.apply(&msg.topic, ChannelEvent::Join { join_ref }, ctx);
                if self.outbox.is_none() {
                    // Not connected: wait, errored, for the transport to come up.
                    self.apply(&msg.topic, ChannelEvent::TransportLost, ctx);
                }
            }
            _ => topic.waiters.push(responder),
        }
        answer
    }
}

impl Handler<Leave> for Subscription {
    type Result = ResponseFuture<Result<(), Failure>>;

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) -> Self::Result {
        if !self.topics.contains_key(&msg.topic) {
            return Box::pin(async { Ok(()) });
        }
        let (done, answer) = oneshot::channel();
        if let Some(topic) = self.topics.get_mut(&msg.topic) {
            topic.waiters.push(done);
        }
        self.apply(&msg.topic, ChannelEvent::Leave, ctx);
        Box::pin(async move {
            // The waiter is failed with NotJoined once the topic is closed.
            let _ = answer.await;
            Ok(())
        })
    }
}

impl Handler<Push> for Subscription {
    type Result = ResponseFuture<Result<Reply, Failure>>;

    fn handle(&mut self, msg: Push, _: &mut Context<Self>) -> Self::Result {
        let permit = match self.slots.try_acquire() {
            Ok(permit) => permit,
            Err(error) => return Box::pin(async move { Err(Failure::from(error)) }),
        };
        let (outgoing, answer) = Outgoing::new(Some(permit));
        let timeout = msg.timeout.unwrap_or(self.config.push_timeout);
        match self.enqueue(
            &msg.topic,
            msg.event,
            msg.payload,
            Some((outgoing, timeout)),
        ) {
            Ok(()) => Box::pin(outcome(answer)),
            Err(error) => Box::pin(async move { Err(error) }),
        }
    }
}

impl Handler<Cast> for Subscription {
    type Result = Result<(), Failure>;

    fn handle(&mut self, msg: Cast, _: &mut Context<Self>) -> Self::Result {
        self.enqueue(&msg.topic, msg.event, msg.payload, None)
    }
}

impl Handler<On> for Subscription {
    type Result = ();

    fn handle(&mut self, msg: On, _: &mut Context<Self>) {
        let sinks = self.handlers.entry(msg.topic).or_default();
        // Forget handlers whose receiving end is gone, so registering again
        // and again cannot grow the list.
        sinks.retain(|(_, sink)| match sink {
            PushSink::Actor(recipient) => recipient.connected(),
            PushSink::Channel(sender) => !sender.is_closed(),
        });
        sinks.push((msg.event, msg.sink));
    }
}
