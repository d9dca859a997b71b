//! How the `Subscription` sends: pushes written at once on a joined topic,
//! or buffered (bounded in frames, bytes and time) until its join.

use std::time::{Duration, Instant};

use actix::{AsyncContext, Context};
use bytestring::ByteString;

use super::topic::{not_joined, Buffered, Topic};
use super::Subscription;
use crate::client::failure::Failure;
use crate::protocol::phoenix::{self, Reply};
use crate::protocol::Payload;
use crate::transport::correlator::Outgoing;

impl Subscription {
    pub(super) fn write(&self, frame: String) -> Result<(), Failure> {
        let outbox = self.outbox.as_ref().ok_or(Failure::Disconnected)?;
        outbox.push(ByteString::from(frame)).map_err(|_| {
            if outbox.is_gone() {
                Failure::Disconnected
            } else {
                Failure::Backpressure
            }
        })
    }

    pub(super) fn flush(&mut self, name: &str) {
        let Some(topic) = self.topics.get_mut(name) else {
            return;
        };
        let join_ref = topic.state().join_ref().map(str::to_owned);
        let pending: Vec<Buffered> = topic.buffer.drain(..).collect();
        for item in pending {
            self.buffered_bytes -= item.size;
            // A buffered send that cannot be written now is counted and
            // dropped: its caller was answered when it was buffered.
            let _ = self.write_push(name, join_ref.as_deref(), item);
        }
    }

    /// Writes one push; a push that waits for its reply learns a failure
    /// through its answer, a fire-and-forget send through the `Err`.
    pub(super) fn write_push(
        &mut self,
        topic: &str,
        join_ref: Option<&str>,
        item: Buffered,
    ) -> Result<(), Failure> {
        let frame = phoenix::encode_raw(
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
                return Err(error);
            }
        }
        Ok(())
    }

    /// Writes now when joined, else buffers (bounded); returns the sync outcome.
    pub(super) fn enqueue(
        &mut self,
        topic_name: &str,
        event: String,
        payload: Payload,
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
            return self.write_push(topic_name, join_ref.as_deref(), item);
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

    pub(super) fn sweep_expired(&mut self) {
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

    pub(super) fn drop_topic(&mut self, name: &str, error: Failure, ctx: &mut Context<Self>) {
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

    pub(super) fn fail_topic(&mut self, topic: &mut Topic, error: Failure) {
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
