//! Data the other end of an envelope connection sends (`data` envelopes):
//! handed to the application's receiver in order, answered upstream with
//! `ack` or `nack` only once the application has answered.
//!
//! A full receiver stops the reading (the producer waits, its mailbox
//! fills, the connection stops reading the socket), so nothing is dropped.
//! A resend of an id acked recently is acked again at once (the first ack
//! was lost with its link); an id still waiting for its answer is not
//! handed out twice.

use std::collections::{HashSet, VecDeque};

use actix::fut::wrap_future;
use actix::{ActorFutureExt, AsyncContext, Context, Handler, Message};
use bytestring::ByteString;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::actor::Producer;
use crate::protocol::envelope::Envelope;

/// Longest upstream id kept (longer ones are counted and dropped).
const MAX_ID_BYTES: usize = 256;

/// How many acked ids are remembered to answer resends.
const REMEMBERED: usize = 16_384;

/// One `data` envelope from the other end, waiting for the application's
/// answer: [`ack`](Self::ack) once it is safe (stored, processed), or
/// [`nack`](Self::nack). Dropped unanswered, it is nacked `dropped`.
///
/// ```no_run
/// # async fn run(handle: switchboard::client::ProducerHandle) {
/// let mut data = handle.receive_data(256);
/// while let Some(item) = data.recv().await {
///     println!("{}: {}", item.id(), item.payload());
///     item.ack();
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct UpstreamData {
    id: String,
    payload: Value,
    answer: Option<oneshot::Sender<Answer>>,
}

/// What the application answered.
#[derive(Debug)]
enum Answer {
    Ack,
    Nack { reason: String, error: String },
}

impl UpstreamData {
    /// The envelope's id (the sender's; unique per message).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The envelope's payload.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// Answers `ack`: the sender may forget it.
    pub fn ack(mut self) {
        self.answer(Answer::Ack);
    }

    /// Answers `nack` with a short machine-readable `reason` and a detail.
    pub fn nack(mut self, reason: impl Into<String>, error: impl Into<String>) {
        self.answer(Answer::Nack {
            reason: reason.into(),
            error: error.into(),
        });
    }

    fn answer(&mut self, answer: Answer) {
        if let Some(sender) = self.answer.take() {
            let _ = sender.send(answer);
        }
    }
}

impl Drop for UpstreamData {
    fn drop(&mut self) {
        self.answer(Answer::Nack {
            reason: "dropped".to_owned(),
            error: "the application dropped it unanswered".to_owned(),
        });
    }
}

/// The inbound side of a producer: where data goes, and which ids are
/// waiting or were acked recently.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    receiver: Option<mpsc::Sender<UpstreamData>>,
    waiting: HashSet<String>,
    acked: HashSet<String>,
    acked_order: VecDeque<String>,
}

impl Inbound {
    fn remember_acked(&mut self, id: String) {
        if self.acked.insert(id.clone()) {
            self.acked_order.push_back(id);
        }
        while self.acked_order.len() > REMEMBERED {
            if let Some(oldest) = self.acked_order.pop_front() {
                self.acked.remove(&oldest);
            }
        }
    }
}

/// Hand the data of this connection to `0` from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ReceiveData(pub mpsc::Sender<UpstreamData>);

/// A `data` envelope arrived.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct InboundData {
    pub id: String,
    pub payload: Value,
}

impl Producer {
    /// Writes `envelope` on the live link, if there is one (a lost answer
    /// is answered again when the sender resends).
    fn answer_upstream(&self, envelope: Envelope) {
        if let Some(outbox) = self.outbox() {
            let _ = outbox.push(ByteString::from(envelope.encode()));
        }
    }

    fn answered(&mut self, id: String, answer: Result<Answer, oneshot::error::RecvError>) {
        self.inbound_mut().waiting.remove(&id);
        match answer {
            Ok(Answer::Ack) => {
                self.answer_upstream(Envelope::ack(id.clone()));
                self.inbound_mut().remember_acked(id);
            }
            Ok(Answer::Nack { reason, error }) => {
                self.answer_upstream(Envelope::nack(id, reason, Some(error)));
            }
            // The answer's sender is in UpstreamData, which nacks on drop.
            Err(_) => self.answer_upstream(Envelope::nack(id, "dropped", None)),
        }
    }
}

impl Handler<ReceiveData> for Producer {
    type Result = ();

    fn handle(&mut self, msg: ReceiveData, _: &mut Context<Self>) {
        self.inbound_mut().receiver = Some(msg.0);
    }
}

impl Handler<InboundData> for Producer {
    type Result = ();

    fn handle(&mut self, msg: InboundData, ctx: &mut Context<Self>) {
        let InboundData { id, payload } = msg;
        if id.len() > MAX_ID_BYTES {
            metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "id_too_long")
                .increment(1);
            return;
        }
        let inbound = self.inbound_mut();
        if inbound.acked.contains(&id) {
            return self.answer_upstream(Envelope::ack(id));
        }
        if inbound.waiting.contains(&id) {
            return; // handed out already; its answer is on its way
        }
        let Some(receiver) = inbound.receiver.clone() else {
            metrics::counter!("switchboard_client_invalid_frames_total", "reason" => "unexpected_type")
                .increment(1);
            return self.answer_upstream(Envelope::nack(id, "no_receiver", None));
        };
        inbound.waiting.insert(id.clone());
        let (answer, answered) = oneshot::channel();
        let data = UpstreamData {
            id: id.clone(),
            payload,
            answer: Some(answer),
        };
        // Waiting here holds every later message back: order is kept and
        // a slow receiver slows the socket instead of losing data.
        ctx.wait(wrap_future::<_, Self>(async move {
            // A receiver that is gone answers through the data's drop.
            let _ = receiver.send(data).await;
        }));
        ctx.spawn(
            wrap_future::<_, Self>(answered)
                .map(move |answer, producer, _| producer.answered(id, answer)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_ids_are_remembered_up_to_a_bound() {
        let mut inbound = Inbound::default();
        for n in 0..REMEMBERED + 10 {
            inbound.remember_acked(format!("id-{n}"));
        }
        assert_eq!(inbound.acked.len(), REMEMBERED);
        assert!(!inbound.acked.contains("id-0"), "the oldest is forgotten");
        assert!(inbound.acked.contains(&format!("id-{}", REMEMBERED + 9)));
    }

    #[test]
    fn dropped_data_is_nacked() {
        let (answer, mut answered) = oneshot::channel();
        drop(UpstreamData {
            id: "x".to_owned(),
            payload: Value::Null,
            answer: Some(answer),
        });
        assert!(matches!(
            answered.try_recv(),
            Ok(Answer::Nack { reason, .. }) if reason == "dropped"
        ));
    }
}
