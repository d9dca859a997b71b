//! `Hub`: the actor apps message to broadcast and to drain the hub.
//!
//! Membership itself lives in the shared [`Registry`] so sessions and
//! handlers can read it without a round trip; the Hub is the message-based
//! front door to it.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use serde_json::Value;

use super::registry::{CloseSession, Registry};

/// Sends `[null, null, topic, event, payload]` to every member of `topic`.
/// Answers how many members it was queued for.
#[derive(Debug, Clone, Message)]
#[rtype(result = "usize")]
pub struct Broadcast {
    /// Target topic, e.g. `room:lobby`.
    pub topic: String,
    /// Event name.
    pub event: String,
    /// Payload (a JSON object for phoenix.js).
    pub payload: Value,
}

/// Refuses new sockets and closes every open one with `code`, in batches.
/// Answers once every close has been requested.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct DrainSockets {
    /// Close code; 1012 (service restart) asks clients to come back.
    pub code: u16,
}

/// The hub actor.
pub struct Hub {
    registry: Arc<Registry>,
    batch: usize,
    batch_interval: Duration,
}

impl Hub {
    /// A hub over `registry` that drains `batch` sockets per `batch_interval`.
    pub(crate) fn new(registry: Arc<Registry>, batch: usize, batch_interval: Duration) -> Hub {
        Hub {
            registry,
            batch: batch.max(1),
            batch_interval,
        }
    }
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Handler<Broadcast> for Hub {
    type Result = usize;

    fn handle(&mut self, msg: Broadcast, _: &mut Context<Self>) -> usize {
        self.registry
            .broadcast(&msg.topic, &msg.event, &msg.payload, None)
    }
}

impl Handler<DrainSockets> for Hub {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: DrainSockets, _: &mut Context<Self>) -> ResponseFuture<()> {
        self.registry.start_draining();
        let sessions = self.registry.session_handles();
        let (batch, pause) = (self.batch, self.batch_interval);
        tracing::info!(sockets = sessions.len(), batch, "draining the hub");
        Box::pin(async move {
            for (index, chunk) in sessions.chunks(batch).enumerate() {
                if index > 0 {
                    tokio::time::sleep(pause).await;
                }
                for session in chunk {
                    session.do_send(CloseSession {
                        code: msg.code,
                        reason: "server restarting",
                    });
                }
            }
        })
    }
}
