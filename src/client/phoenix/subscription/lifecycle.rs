//! How the `Subscription` carries a topic through its lifecycle: joins,
//! their replies (refusals and resumes included), leaves, rejoins.

use std::time::{Duration, Instant};

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use serde_json::json;

use super::topic::{is_unrecovered_reply, not_joined, refusal_reason};
use super::Subscription;
use crate::client::events::ConnectEvent;
use crate::client::failure::Failure;
use crate::client::phoenix::channel_state::{Action, ChannelEvent};
use crate::protocol::phoenix::{self, Reply, ReplyStatus};
use crate::transport::correlator::{outcome, Outgoing};

impl Subscription {
    /// Registers `msg_ref` with the correlator and routes the outcome back here.
    pub(super) fn await_reply(
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
    pub(super) fn apply(&mut self, name: &str, event: ChannelEvent, ctx: &mut Context<Self>) {
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
    pub(super) fn sync_direct(&self, name: &str) {
        let join_ref = self.topics.get(name).and_then(|topic| {
            let ready = topic.state().is_joined() && topic.buffer.is_empty();
            ready.then(|| topic.state().join_ref()).flatten()
        });
        match (join_ref, &self.outbox) {
            (Some(join_ref), Some(outbox)) => self.direct.open(name, join_ref, outbox),
            _ => self.direct.close(name),
        }
    }

    pub(super) fn send_join(&mut self, name: &str, join_ref: String, ctx: &mut Context<Self>) {
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

    pub(super) fn join_answered(
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
                let mut told = false;
                for waiter in topic.waiters.drain(..) {
                    told |= waiter.send(Ok(reply.clone())).is_ok();
                }
                if !told {
                    // Nobody waits for this answer (a rejoin, or a join
                    // whose caller gave up): announce it.
                    self.announcer.emit(ConnectEvent::JoinRefused {
                        topic: name.to_owned(),
                        reason: refusal_reason(&reply.response),
                        response: reply.response,
                    });
                }
                if told || !topic.joined_once {
                    // A caller was told (its error), or the topic never
                    // joined: nothing is kept or retried behind its back.
                    return self.drop_topic(name, not_joined(name), ctx);
                }
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

    pub(super) fn send_leave(&mut self, name: &str, join_ref: String, ctx: &mut Context<Self>) {
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

    pub(super) fn schedule_rejoin(&mut self, name: &str, at: Instant, ctx: &mut Context<Self>) {
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
}
