//! How a message on a joined topic reaches the application: through the
//! topic's recovery when it has one (in order, once, gaps announced and
//! positions stored), then to the registered handlers.

use actix::Context;
use tokio::sync::mpsc;

use crate::client::events::ConnectEvent;
use crate::client::phoenix::channel_state::{ChannelEvent, ChannelState};
use crate::client::phoenix::recovery::Step;
use crate::client::phoenix::subscription::messages::{Incoming, PushSink};
use crate::client::phoenix::subscription::Subscription;
use crate::protocol::phoenix::Frame;
use crate::protocol::resume::Position;
use crate::sequence::Advance;

impl Subscription {
    /// A message on a joined topic: through the topic's recovery first when
    /// it has one (in order, once), then to the handlers.
    pub(super) fn receive(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        let Some(recovery) = self
            .topics
            .get_mut(&frame.topic)
            .and_then(|topic| topic.recovery.as_mut())
        else {
            // Not recoverable: a drop is counted and logged, nothing more.
            let _ = self.dispatch(frame);
            return;
        };
        let name = frame.topic.clone();
        let steps = recovery.on_message(frame);
        self.carry_out(&name, steps, ctx);
    }

    /// Delivers, announces or recovers, as a topic's recovery asks.
    pub(super) fn carry_out(&mut self, name: &str, steps: Vec<Step>, ctx: &mut Context<Self>) {
        let mut moved = false;
        for step in steps {
            match step {
                Step::Deliver(frame) => {
                    moved = true;
                    let sequence = Position::of(&frame.payload).map(|position| position.sequence);
                    if let (Handed::Missed, Some(sequence)) = (self.dispatch(frame), sequence) {
                        // A handler could not take it: lost for it, and said so.
                        let lost = Step::Gap {
                            expected: sequence,
                            got: sequence.saturating_add(1),
                        };
                        self.announce_gap(name, &lost);
                    }
                }
                Step::Gap { .. } => {
                    moved = true;
                    self.announce_gap(name, &step);
                }
                Step::Recover => self.recover(name, ctx),
            }
        }
        let position = self
            .topics
            .get(name)
            .and_then(|topic| topic.recovery.as_ref())
            .map(|recovery| recovery.position());
        if let (true, Some((delivered, epoch))) = (moved, position) {
            // Recorded before the next inbound message is handled, so no
            // later message reaches a handler first (SEQ-2).
            let epoch = epoch.map(str::to_owned);
            self.store_position(name, (delivered, epoch));
        }
    }

    /// Records a topic's delivered position with the snapshotter.
    fn store_position(&self, name: &str, (delivered, epoch): (u64, Option<String>)) {
        self.positions.snapshotter().do_send(Advance {
            channel: name.to_owned(),
            delivered,
            epoch,
        });
    }

    fn announce_gap(&self, name: &str, gap: &Step) {
        let Step::Gap { expected, got } = *gap else {
            return;
        };
        metrics::counter!("switchboard_client_gaps_total").increment(1);
        tracing::warn!(
            topic = name,
            expected,
            got,
            "sequence gap the hub could not fill"
        );
        self.announcer.emit(ConnectEvent::Gap {
            topic: name.to_owned(),
            expected,
            got,
        });
    }

    /// A live hole: join again, resuming from the position, so the hub replays it.
    fn recover(&mut self, name: &str, ctx: &mut Context<Self>) {
        metrics::counter!("switchboard_client_live_gaps_total").increment(1);
        tracing::info!(topic = name, "live sequence gap; rejoining to recover");
        let joined = self
            .topics
            .get(name)
            .is_some_and(|topic| matches!(topic.state(), ChannelState::Joined { .. }));
        // Joining already resumes from the position; leaving needs nothing.
        if joined && self.outbox.is_some() {
            let join_ref = self.refs.next();
            self.apply(name, ChannelEvent::TransportUp { join_ref }, ctx);
        }
    }

    /// Hands a message to the topic's handlers; answers whether every
    /// handler it was meant for took it.
    pub(super) fn dispatch(&mut self, frame: Frame) -> Handed {
        let Some(sinks) = self.handlers.get_mut(&frame.topic) else {
            metrics::counter!("switchboard_client_pushes_dropped_total", "reason" => "no_handler")
                .increment(1);
            tracing::debug!(topic = %frame.topic, "no handler registered: push dropped");
            return Handed::Missed;
        };
        let mut handed = Handed::All;
        let wanted = |event: &Option<String>, incoming: &Incoming| {
            event.as_deref().is_none_or(|event| event == incoming.event)
        };
        let incoming = Incoming {
            topic: frame.topic,
            event: frame.event,
            payload: frame.payload,
        };
        // The last handler meant for it gets the message itself, the others a copy.
        let mut copies = sinks
            .iter()
            .filter(|(event, _)| wanted(event, &incoming))
            .count();
        let mut pending = Some(incoming);
        sinks.retain(|(event, sink)| {
            let Some(incoming) = pending.as_ref() else {
                return true;
            };
            if !wanted(event, incoming) {
                return true;
            }
            copies -= 1;
            let message = if copies == 0 {
                pending.take()
            } else {
                pending.clone()
            };
            let Some(message) = message else {
                return true;
            };
            let (missed, alive) = match sink {
                PushSink::Actor(recipient) => match recipient.try_send(message) {
                    Ok(()) => (None, true),
                    Err(actix::dev::SendError::Full(message)) => (Some(message), true),
                    Err(actix::dev::SendError::Closed(_)) => (None, false),
                },
                PushSink::Channel(sender) => match sender.try_send(message) {
                    Ok(()) => (None, true),
                    Err(mpsc::error::TrySendError::Full(message)) => (Some(message), true),
                    Err(mpsc::error::TrySendError::Closed(_)) => (None, false),
                },
            };
            if let Some(message) = missed {
                metrics::counter!("switchboard_client_pushes_dropped_total", "reason" => "handler_full")
                    .increment(1);
                tracing::warn!(topic = %message.topic, "handler behind: push dropped");
                handed = Handed::Missed;
            }
            alive
        });
        handed
    }
}

/// Whether a push reached every handler meant for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handed {
    All,
    Missed,
}
