//! `Subscription`: the topics of one connection (PHX-C2, C5, C6, C8, C9,
//! C10, C12).
//!
//! It owns each topic's channel state, join params and buffer of pushes made
//! while the topic is not joined, and the application's handlers. Nothing is
//! sent on a topic before its join reply; buffered pushes keep their ref and
//! are flushed in order right after it. After every reconnect each topic is
//! joined exactly once (a new join_ref), its buffer flushed, and only then a
//! `Rejoined` event emitted. It outlives restarts of the `Connection` actor.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, ResponseFuture,
    SpawnHandle, WrapFuture,
};
use bytestring::ByteString;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::client::config::ConnectionConfig;
use crate::client::events::{Announcer, ConnectEvent};
use crate::client::failure::Failure;
use crate::client::link::{ConnectionClosed, TransportDown, TransportUp, MAILBOX_CAPACITY};
use crate::client::phoenix::channel_state::{Action, ChannelEvent, ChannelLifecycle, ChannelState};
use crate::client::phoenix::direct::DirectWriters;
use crate::client::phoenix::recovery::TopicRecovery;
use crate::client::positions::Positions;
use crate::client::refs::RefCounter;
use crate::protocol::phoenix::{self, Reply, ReplyStatus};
use crate::protocol::resume::is_unrecovered;
use crate::transport::correlator::{outcome, Correlator, Outgoing, RequestSlots};
use crate::transport::outbox::Outbox;

mod delivery;
mod messages;

pub use messages::Incoming;
pub(crate) use messages::{Cast, Inbound, Join, Leave, On, Push, PushSink};

/// Where a caller waiting for a topic's join (or leave) gets its answer.
type Waiter = oneshot::Sender<Result<Reply, Failure>>;

/// Most callers waiting for one topic's join reply.
const MAX_JOIN_WAITERS: usize = 64;

struct Buffered {
    msg_ref: String,
    event: String,
    payload: Value,
    size: usize,
    responder: Option<(Outgoing<Reply, Failure>, Duration)>,
    expires_at: Instant,
}

impl Buffered {
    /// Approximate bytes it will take on the wire.
    fn measure(&self, topic: &str) -> usize {
        let payload = serde_json::to_vec(&self.payload).map_or(0, |bytes| bytes.len());
        self.event.len() + topic.len() + self.msg_ref.len() + payload
    }
}

struct Topic {
    params: Value,
    lifecycle: ChannelLifecycle,
    buffer: VecDeque<Buffered>,
    waiters: Vec<Waiter>,
    rejoin_timer: Option<SpawnHandle>,
    last_reply: Value,
    recovery: Option<TopicRecovery>,
    /// Whether a join of it ever succeeded: a refusal before that is the
    /// caller's error, a refusal after it a rejoin to retry.
    joined_once: bool,
}

impl Topic {
    fn new(params: Value, recovery: Option<TopicRecovery>) -> Topic {
        Topic {
            recovery,
            params,
            lifecycle: ChannelLifecycle::new(),
            buffer: VecDeque::new(),
            waiters: Vec::new(),
            rejoin_timer: None,
            last_reply: Value::Null,
            joined_once: false,
        }
    }

    fn state(&self) -> &ChannelState {
        self.lifecycle.state()
    }

    /// Joining, joined, or errored (waiting to rejoin): sends may be queued.
    fn wants_join(&self) -> bool {
        matches!(
            self.state(),
            ChannelState::Joining { .. }
                | ChannelState::Joined { .. }
                | ChannelState::Errored { .. }
        )
    }
}

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

    fn write(&self, frame: String) -> Result<(), Failure> {
        let outbox = self.outbox.as_ref().ok_or(Failure::Disconnected)?;
        outbox.push(ByteString::from(frame)).map_err(|_| {
            if outbox.is_gone() {
                Failure::Disconnected
            } else {
                Failure::Backpressure
            }
        })
    }

    /// Registers `msg_ref` with the correlator and routes the outcome back here.
    fn await_reply(
        &mut self,
        msg_ref: String,
        timeout: Duration,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, Result<Reply, Failure>, &mut Context<Self>) + 'static,
    ) {
        let (outgoing, answer) = Outgoing::new(None);
        outgoing.written(&self.correlator, msg_ref, timeout);
        ctx.spawn(
            outcome(answer)
                .into_actor(self)
                .map(move |result, subscription, ctx| then(subscription, result, ctx)),
        );
    }

    /// Feeds `event` to a topic's lifecycle and carries out what it asks for.
    fn apply(&mut self, name: &str, event: ChannelEvent, ctx: &mut Context<Self>) {
        let Some(topic) = self.topics.get_mut(name) else {
            return;
        };
        let actions = topic.lifecycle.on(event, Instant::now());
        for action in actions {
            match action {
                Action::SendJoin { join_ref } => self.send_join(name, join_ref, ctx),
                Action::SendLeave { join_ref } => self.send_leave(name, join_ref, ctx),
                Action::ScheduleRejoin { at } => self.schedule_rejoin(name, at, ctx),
                Action::Joined { .. } => {
                    if let Some(topic) = self.topics.get_mut(name) {
                        let reply = Reply::ok(topic.last_reply.clone());
                        for waiter in topic.waiters.drain(..) {
                            let _ = waiter.send(Ok(reply.clone()));
                        }
                    }
                    self.flush(name);
                }
                Action::EmitRejoined { .. } => {
                    let reply = self
                        .topics
                        .get(name)
                        .map(|topic| topic.last_reply.clone())
                        .unwrap_or_default();
                    self.announcer.emit(ConnectEvent::Rejoined {
                        topic: name.to_owned(),
                        reply,
                    });
                }
                Action::Closed => self.drop_topic(name, not_joined(name), ctx),
            }
        }
        self.sync_direct(name);
    }

    /// Opens the topic's direct path while it is joined with nothing
    /// buffered, and shuts it otherwise.
    fn sync_direct(&self, name: &str) {
        let join_ref = self.topics.get(name).and_then(|topic| {
            let ready = topic.state().is_joined() && topic.buffer.is_empty();
            ready.then(|| topic.state().join_ref()).flatten()
        });
        match (join_ref, &self.outbox) {
            (Some(join_ref), Some(outbox)) => self.direct.open(name, join_ref, outbox),
            _ => self.direct.close(name),
        }
    }

    fn send_join(&mut self, name: &str, join_ref: String, ctx: &mut Context<Self>) {
        let Some(topic) = self.topics.get_mut(name) else {
            return;
        };
        if let Some(timer) = topic.rejoin_timer.take() {
            ctx.cancel_future(timer);
        }
        let params = match topic.recovery.as_mut() {
            Some(recovery) => {
                recovery.joining();
                recovery.join_params(&topic.params)
            }
            None => topic.params.clone(),
        };
        let frame = phoenix::encode_parts(
            Some(&join_ref),
            Some(&join_ref),
            name,
            phoenix::PHX_JOIN,
            &params,
        );
        match self.write(frame) {
            Ok(()) => {}
            // The socket is going away: the join goes out on the reconnect.
            Err(Failure::Disconnected) => return,
            Err(error) => {
                tracing::warn!(topic = name, %error, "join not written; rejoining later");
                return self.apply(name, ChannelEvent::JoinError { join_ref }, ctx);
            }
        }
        let topic_name = name.to_owned();
        let timeout = self.config.join_timeout;
        self.await_reply(
            join_ref.clone(),
            timeout,
            ctx,
            move |subscription, outcome, ctx| {
                subscription.join_answered(&topic_name, join_ref, outcome, ctx);
            },
        );
    }

    fn join_answered(
        &mut self,
        name: &str,
        join_ref: String,
        outcome: Result<Reply, Failure>,
        ctx: &mut Context<Self>,
    ) {
        let Some(topic) = self.topics.get_mut(name) else {
            return;
        };
        if topic.state().join_ref() != Some(join_ref.as_str()) {
            return; // an answer to an older join
        }
        let event = match outcome {
            Ok(reply) if reply.status == ReplyStatus::Ok => {
                let steps = topic.recovery.as_mut().map(|recovery| {
                    let (joined, steps) = recovery.on_join_reply(&reply.response);
                    tracing::debug!(topic = name, ?joined, "recoverable topic joined");
                    steps
                });
                topic.last_reply = reply.response;
                topic.joined_once = true;
                // Joined first (buffered pushes flushed), then what was held.
                self.apply(name, ChannelEvent::JoinOk { join_ref }, ctx);
                if let Some(steps) = steps {
                    self.carry_out(name, steps, ctx);
                }
                return;
            }
            Ok(reply) if is_unrecovered_reply(&reply) => {
                // A strict topic the hub cannot recover: stop, do not skip (SEQ-7).
                tracing::warn!(topic = name, response = %reply.response, "strict topic not recoverable; left");
                metrics::counter!("switchboard_client_unrecovered_total").increment(1);
                for waiter in topic.waiters.drain(..) {
                    let _ = waiter.send(Ok(reply.clone()));
                }
                self.announcer.emit(ConnectEvent::Unrecovered {
                    topic: name.to_owned(),
                    reply: reply.response,
                });
                return self.drop_topic(name, not_joined(name), ctx);
            }
            Ok(reply) => {
                tracing::warn!(topic = name, response = %reply.response, "join refused");
                metrics::counter!("switchboard_client_join_refusals_total").increment(1);
                // The handle turns the error reply into `JoinError::Refused`.
                for waiter in topic.waiters.drain(..) {
                    let _ = waiter.send(Ok(reply.clone()));
                }
                if !topic.joined_once {
                    // The first join: the caller's error. Nothing is kept
                    // or retried behind its back.
                    return self.drop_topic(name, not_joined(name), ctx);
                }
                self.announcer.emit(ConnectEvent::JoinRefused {
                    topic: name.to_owned(),
                    reason: refusal_reason(&reply.response),
                    response: reply.response,
                });
                ChannelEvent::JoinError { join_ref }
            }
            Err(Failure::Timeout { after }) => {
                tracing::warn!(topic = name, ?after, "join timed out");
                for waiter in topic.waiters.drain(..) {
                    let _ = waiter.send(Err(Failure::Timeout { after }));
                }
                ChannelEvent::JoinTimeout { join_ref }
            }
            // Disconnected or closed: the transport messages take it from here.
            Err(_) => return,
        };
        self.apply(name, event, ctx);
    }

    fn send_leave(&mut self, name: &str, join_ref: String, ctx: &mut Context<Self>) {
        let msg_ref = self.refs.next();
        let frame = phoenix::encode_parts(
            Some(&join_ref),
            Some(&msg_ref),
            name,
            phoenix::PHX_LEAVE,
            &json!({}),
        );
        if self.write(frame).is_err() {
            return self.apply(name, ChannelEvent::LeaveReplied { join_ref }, ctx);
        }
        let topic_name = name.to_owned();
        let timeout = self.config.push_timeout;
        self.await_reply(msg_ref, timeout, ctx, move |subscription, _, ctx| {
            subscription.apply(&topic_name, ChannelEvent::LeaveReplied { join_ref }, ctx);
        });
    }

    fn schedule_rejoin(&mut self, name: &str, at: Instant, ctx: &mut Context<Self>) {
        // A millisecond of slack: timers may fire a hair before `at`.
        let delay = at.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
        let topic_name = name.to_owned();
        let timer = ctx.run_later(delay, move |subscription, ctx| {
            if let Some(topic) = subscription.topics.get_mut(&topic_name) {
                topic.rejoin_timer = None;
            }
            let event = ChannelEvent::RejoinTimerFired {
                join_ref: subscription.refs.next(),
                transport_up: subscription.outbox.is_some(),
            };
            subscription.apply(&topic_name, event, ctx);
        });
        if let Some(topic) = self.topics.get_mut(name) {
            if let Some(old) = topic.rejoin_timer.replace(timer) {
                ctx.cancel_future(old);
            }
        }
    }

    fn flush(&mut self, name: &str) {
        let Some(topic) = self.topics.get_mut(name) else {
            return;
        };
        let join_ref = topic.state().join_ref().map(str::to_owned);
        let pending: Vec<Buffered> = topic.buffer.drain(..).collect();
        for item in pending {
            self.buffered_bytes -= item.size;
            self.write_push(name, join_ref.as_deref(), item);
        }
    }

    fn write_push(&mut self, topic: &str, join_ref: Option<&str>, item: Buffered) {
        let frame = phoenix::encode_parts(
            join_ref,
            Some(&item.msg_ref),
            topic,
            &item.event,
            &item.payload,
        );
        match (self.write(frame), item.responder) {
            (Ok(()), Some((outgoing, timeout))) => {
                outgoing.written(&self.correlator, item.msg_ref, timeout);
            }
            (Ok(()), None) => {}
            (Err(Failure::Disconnected), responder) => {
                // The socket is going away: keep the push for the rejoin.
                let mut item = Buffered { responder, ..item };
                item.size = item.measure(topic);
                self.buffered_bytes += item.size;
                if let Some(topic) = self.topics.get_mut(topic) {
                    topic.buffer.push_back(item);
                }
            }
            (Err(error), Some((outgoing, _))) => outgoing.fail(error),
            (Err(error), None) => {
                metrics::counter!("switchboard_client_sends_dropped_total", "reason" => "write_failed")
                    .increment(1);
                tracing::warn!(topic, %error, "fire-and-forget send dropped");
            }
        }
    }

    /// Writes now when joined, else buffers (bounded); returns the sync outcome.
    fn enqueue(
        &mut self,
        topic_name: &str,
        event: String,
        payload: Value,
        responder: Option<(Outgoing<Reply, Failure>, Duration)>,
    ) -> Result<(), Failure> {
        if self.closed {
            return Err(Failure::Closed);
        }
        let Some(topic) = self.topics.get(topic_name) else {
            return Err(not_joined(topic_name));
        };
        if !topic.wants_join() {
            return Err(not_joined(topic_name));
        }
        let msg_ref = self.refs.next();
        let mut item = Buffered {
            msg_ref,
            event,
            payload,
            size: 0, // measured only if it has to wait in the buffer
            responder,
            expires_at: Instant::now() + self.config.buffer_deadline,
        };
        if topic.state().is_joined() && self.outbox.is_some() {
            let join_ref = topic.state().join_ref().map(str::to_owned);
            self.write_push(topic_name, join_ref.as_deref(), item);
            return Ok(());
        }
        if topic.buffer.len() >= self.config.buffer_max_frames {
            return Err(Failure::BufferFull {
                reason: "buffer_max_frames",
            });
        }
        let size = item.measure(topic_name);
        item.size = size;
        if self.buffered_bytes + size > self.config.buffer_max_bytes {
            return Err(Failure::BufferFull {
                reason: "buffer_max_bytes",
            });
        }
        self.buffered_bytes += size;
        if let Some(topic) = self.topics.get_mut(topic_name) {
            topic.buffer.push_back(item);
        }
        Ok(())
    }

    fn sweep_expired(&mut self) {
        let now = Instant::now();
        let after = self.config.buffer_deadline;
        for (name, topic) in &mut self.topics {
            while topic
                .buffer
                .front()
                .is_some_and(|item| item.expires_at <= now)
            {
                let Some(item) = topic.buffer.pop_front() else {
                    break;
                };
                self.buffered_bytes -= item.size;
                metrics::counter!("switchboard_client_buffer_expired_total").increment(1);
                tracing::debug!(topic = %name, "buffered send expired");
                if let Some((outgoing, _)) = item.responder {
                    outgoing.fail(Failure::Timeout { after });
                }
            }
        }
    }

    fn drop_topic(&mut self, name: &str, error: Failure, ctx: &mut Context<Self>) {
        self.direct.close(name);
        self.order.retain(|topic| topic != name);
        let Some(mut topic) = self.topics.remove(name) else {
            return;
        };
        if let Some(timer) = topic.rejoin_timer.take() {
            ctx.cancel_future(timer);
        }
        self.fail_topic(&mut topic, error);
    }

    fn fail_topic(&mut self, topic: &mut Topic, error: Failure) {
        for item in topic.buffer.drain(..) {
            self.buffered_bytes -= item.size;
            if let Some((outgoing, _)) = item.responder {
                outgoing.fail(error.clone());
            }
        }
        for waiter in topic.waiters.drain(..) {
            let _ = waiter.send(Err(error.clone()));
        }
    }
}
/// An error reply refusing a strict resume.
fn is_unrecovered_reply(reply: &Reply) -> bool {
    reply.status == ReplyStatus::Error && is_unrecovered(&reply.response)
}

/// The `reason` of an error response, or the whole response as text.
pub(crate) fn refusal_reason(response: &Value) -> String {
    match response.get("reason").and_then(Value::as_str) {
        Some(reason) => reason.to_owned(),
        None => response.to_string(),
    }
}

fn not_joined(topic: &str) -> Failure {
    Failure::NotJoined {
        topic: topic.to_owned(),
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
