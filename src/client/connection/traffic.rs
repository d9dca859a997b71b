//! What the `Connection` does with the traffic of a live link: heartbeats
//! out, and each inbound message (text to the actors of its protocol,
//! pings, pongs, the server's close).

use actix::{AsyncContext, Context};
use bytestring::ByteString;
use serde_json::json;

use super::dial::is_terminal;
use super::Connection;
use crate::client::peers::Peers;
use crate::protocol::phoenix;
use crate::transport::{Close, Message};

impl Connection {
    pub(super) fn beat(&mut self, generation: u64, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        let Some(link) = self.state.link_mut() else {
            return;
        };
        if link.pending_heartbeat.is_some() {
            metrics::counter!("switchboard_client_heartbeat_timeouts_total").increment(1);
            return self.lost("heartbeat timeout", ctx);
        }
        let msg_ref = self.parts.refs.next();
        if matches!(self.parts.peers, Peers::Envelope { .. }) {
            // Envelope v1 has no heartbeat message: a WebSocket ping carries the ref.
            let _ = link.outbox.ping(bytes::Bytes::from(msg_ref.clone()));
            link.pending_heartbeat = Some(msg_ref);
            return;
        }
        let frame = phoenix::encode_parts(
            None,
            Some(&msg_ref),
            phoenix::PHOENIX_TOPIC,
            phoenix::HEARTBEAT,
            &json!({}),
        );
        // A full write queue surfaces as SlowConsumer, which drops the socket.
        let _ = link.outbox.push(ByteString::from(frame));
        link.pending_heartbeat = Some(msg_ref);
    }

    pub(super) fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let Some(link) = self.state.link_mut() else {
            return;
        };
        // Borrowed, never cloned: a fresh Addr clone would bypass the
        // receivers' mailbox capacity on try_send.
        if let Some(backlog) = self.parts.peers.route(text, &mut link.pending_heartbeat) {
            // Read nothing more until the receiver has taken it.
            ctx.wait(actix::fut::wrap_future::<_, Self>(backlog));
        }
    }

    pub(super) fn on_message(&mut self, message: Message, ctx: &mut Context<Self>) {
        let Some(link) = self.state.link_mut() else {
            return;
        };
        // Any message from the server proves the link alive, not only the
        // heartbeat's answer: a busy link is never mistaken for a dead one.
        link.pending_heartbeat = None;
        match message {
            Message::Text(text) => {
                // The server answers: this link made progress.
                link.progressed = true;
                self.on_text(&text, ctx)
            }
            Message::Binary(_) => {
                metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "binary")
                    .increment(1);
            }
            Message::Ping(payload) => {
                let _ = link.outbox.pong(payload);
            }
            Message::Pong(payload) => {
                if link.pending_heartbeat.as_deref().map(str::as_bytes) == Some(&payload[..]) {
                    link.pending_heartbeat = None;
                }
            }
            Message::Close(close) => self.on_close(close, ctx),
        }
    }

    pub(super) fn on_close(&mut self, close: Option<Close>, ctx: &mut Context<Self>) {
        let code = close.as_ref().map(|close| close.code);
        let words = match &close {
            Some(close) => format!("server closed with {} {}", close.code, close.reason),
            None => "server closed".to_owned(),
        };
        if code.is_some_and(is_terminal) {
            return self.close_for_good(words.trim_end(), ctx);
        }
        // A server that is failing (1011) or asks to come back later (1013)
        // gets no quick redial, whatever it said before.
        if matches!(code, Some(1011 | 1013)) {
            if let Some(link) = self.state.link_mut() {
                link.progressed = false;
            }
        }
        // Any other close, 1000 included, is one the user did not ask for.
        self.lost(words.trim_end(), ctx);
    }
}
