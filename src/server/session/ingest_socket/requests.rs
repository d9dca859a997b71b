//! Requests on an ingest socket, both ways: the sender's to the built-in
//! methods, answered at once (no future per request, so a flood of them
//! costs the worker nothing but the answers), and the hub's to the sender,
//! correlated by id.

use actix::{Context, Handler, ResponseFuture};
use bytestring::ByteString;
use serde_json::{json, Value};

use super::{IngestSocket, Session};
use crate::protocol::envelope::Envelope;
use crate::server::registry::SenderRequest;
use crate::server::stats::FrameProblem;
use crate::transport::correlator::{outcome, send_request};
use crate::transport::RequestError;

impl IngestSocket {
    /// Answers a request to a built-in method.
    pub(super) fn answer(&mut self, id: String, method: &str, params: &Value) {
        let reply = match method {
            "status" => {
                let status = self.gauge.read();
                Envelope::reply_ok(
                    id,
                    json!({
                        "queue_depth": status.queue_depth,
                        "queue_capacity": status.queue_capacity,
                        "utilization": status.utilization,
                        "in_flight": status.in_flight,
                        "connections": self.registry.connections(),
                    }),
                )
            }
            "backpressure" => match params.get("rate_limit").and_then(Value::as_u64) {
                Some(limit) => {
                    self.rate_limit = Some(limit);
                    Envelope::reply_ok(id, json!({"rate_limit": limit}))
                }
                None => Envelope::reply_error(
                    id,
                    json!({"code": "invalid", "message": "params.rate_limit must be a non-negative integer"}),
                ),
            },
            other => {
                self.stats.frame_problem(FrameProblem::UnmatchedTopic);
                Envelope::reply_error(
                    id,
                    json!({"code": "not_found", "message": format!("unknown method `{other}`")}),
                )
            }
        };
        self.write(&reply);
    }
}

impl Handler<SenderRequest> for Session {
    type Result = ResponseFuture<Result<Envelope, RequestError>>;

    fn handle(&mut self, msg: SenderRequest, _: &mut Context<Self>) -> Self::Result {
        let socket = self.protocol();
        socket.requests += 1;
        let id = format!("hub-{}", socket.requests);
        let frame = Envelope::request(id.clone(), msg.method, msg.params).encode();
        let outbox = &socket.outbox;
        let write = || {
            outbox
                .push(ByteString::from(frame))
                .map_err(|_| RequestError::Disconnected)
        };
        let sent = send_request(
            &socket.slots,
            &socket.correlator,
            id,
            socket.request_timeout,
            write,
        );
        match sent {
            Ok(answer) => Box::pin(outcome(answer)),
            Err(error) => Box::pin(async move { Err(error) }),
        }
    }
}
