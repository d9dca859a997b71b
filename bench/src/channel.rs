//! The hub-side channel every Phoenix scenario talks to.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard::protocol::{ChannelErrorCode, Payload};
use switchboard::server::{Channel, ChannelContext, ChannelFailure, Outcome, SocketInfo};

use crate::counter::Counter;
use crate::payload::{COUNT_EVENT, PING_EVENT};

/// Anyone may join; `count` is counted and not answered (one-way traffic);
/// `ping` is answered with its own payload (request/reply); anything else
/// is broadcast to the topic and answered `ok`, like `RoomChannel`.
pub struct BenchChannel {
    counted: Arc<Counter>,
}

impl BenchChannel {
    /// A channel counting `count` events into `counted`.
    pub fn new(counted: Arc<Counter>) -> BenchChannel {
        BenchChannel { counted }
    }
}

impl Channel for BenchChannel {
    fn join(&self, _: &str, _: &Payload, _: &SocketInfo) -> Result<Value, ChannelErrorCode> {
        Ok(json!({}))
    }

    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        match event {
            COUNT_EVENT => {
                self.counted.add(1);
                Ok(Outcome::NoReply)
            }
            PING_EVENT => Ok(Outcome::Ok(payload.clone())),
            _ => {
                ctx.broadcast(event, payload);
                Ok(Outcome::Ok(Payload::empty_object()))
            }
        }
    }
}
