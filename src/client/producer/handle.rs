//! `ProducerHandle`: what the application holds to send data over an
//! envelope v1 connection (the ingest client).

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use actix::Addr;
use serde_json::Value;

use crate::client::error::ProduceError;
use crate::client::failure::{answered, Failure};
use crate::client::handle::ConnectionHandle;
use crate::client::positions::Positions;
use crate::client::positions::{stamp, StampFailure};
use crate::client::producer::actor::{Producer, Request, SendData};
use crate::client::producer::inbound::{ReceiveData, UpstreamData};
use crate::protocol::content::ContentEnvelope;
use crate::protocol::envelope::Envelope;
use crate::sequence::{Advance, Position};
use crate::transport::RequestError;
use tokio::sync::mpsc;

/// A handle on one supervised envelope v1 connection. The methods of
/// [`ConnectionHandle`] (status, events, close ...) are available through `Deref`.
#[derive(Clone)]
pub struct ProducerHandle {
    pub(crate) link: ConnectionHandle,
    pub(crate) producer: Addr<Producer>,
    pub(crate) positions: Positions,
    pub(crate) name: Arc<str>,
    pub(crate) publish_order: Arc<tokio::sync::Mutex<()>>,
    pub(crate) identity: Arc<OnceLock<Arc<str>>>,
}

impl Deref for ProducerHandle {
    type Target = ConnectionHandle;

    fn deref(&self) -> &ConnectionHandle {
        &self.link
    }
}

impl ProducerHandle {
    /// Sends one data envelope and waits until the hub acked it. It is kept
    /// (and resent after a reconnect) until then, or until the buffer deadline.
    pub async fn send_data(&self, payload: Value) -> Result<(), ProduceError> {
        let send = SendData {
            payload,
            wait_for_ack: true,
            id: None,
        };
        self.queue(send).await
    }

    /// Sends one data envelope without waiting for its ack (it is still
    /// resent after a reconnect until acked).
    pub async fn send(&self, payload: Value) -> Result<(), ProduceError> {
        let send = SendData {
            payload,
            wait_for_ack: false,
            id: None,
        };
        self.queue(send).await
    }

    /// Publishes a content envelope on `channel` for exactly-once ingest
    /// (SEQ-9): stamped with the channel's next sequence (from the
    /// connection's snapshotter, so never reused, even across a restart
    /// when it is file-backed) and this producer's name; its envelope id is
    /// `producer:sequence`, which the hub deduplicates on and JetStream
    /// gets as `Nats-Msg-Id`. Kept and resent after every reconnect until
    /// acked; answers the stamped envelope once acked (or, with
    /// `wait_for_ack` false, once written or buffered).
    pub async fn publish(
        &self,
        channel: &str,
        aspect: &str,
        payload: Value,
        wait_for_ack: bool,
    ) -> Result<ContentEnvelope, ProduceError> {
        // Stamped and queued under one lock, so concurrent publishes reach
        // the producer (and the hub) in sequence order.
        let order = self.publish_order.lock().await;
        let identity = self.identity().await?;
        let sequence = stamp(&self.positions.snapshotter(), self.sequence_key()).await?;
        let envelope = ContentEnvelope::stamped(channel, aspect, sequence, &identity, payload);
        let send = SendData {
            payload: envelope.to_value(),
            wait_for_ack,
            id: Some(envelope.dedup_id()),
        };
        let ack = answered(self.producer.send(send).await)?;
        drop(order);
        if let Some(ack) = ack {
            ack.await.unwrap_or(Err(Failure::Closed))?;
        }
        Ok(envelope)
    }

    /// Queues a data envelope, then waits for its ack if asked to.
    async fn queue(&self, send: SendData) -> Result<(), ProduceError> {
        match answered(self.producer.send(send).await)? {
            Some(ack) => Ok(ack.await.unwrap_or(Err(Failure::Closed))?),
            None => Ok(()),
        }
    }

    /// One sequence per producer, whatever the channel: (producer, sequence)
    /// names a message uniquely.
    fn sequence_key(&self) -> String {
        format!("producer:{}", self.name)
    }

    /// The `producer` of every envelope this handle publishes:
    /// `name/incarnation`. The incarnation is kept in the snapshotter, so it
    /// survives a restart exactly when the sequence counter does (a
    /// `FileStore`); a producer that restarts without one is a new
    /// incarnation, and the hub never mistakes its messages for resends.
    async fn identity(&self) -> Result<Arc<str>, StampFailure> {
        if let Some(identity) = self.identity.get() {
            return Ok(identity.clone());
        }
        let key = self.sequence_key();
        let position = Position {
            channel: key.clone(),
        };
        let stored = self
            .positions
            .snapshotter()
            .send(position)
            .await
            .map_err(|_| StampFailure::Gone)?;
        let incarnation = match stored.and_then(|position| position.epoch) {
            Some(incarnation) => incarnation,
            None => {
                let incarnation = format!("{:016x}", fastrand::u64(..));
                let record = Advance {
                    channel: key,
                    delivered: 0,
                    epoch: Some(incarnation.clone()),
                };
                match self.positions.snapshotter().send(record).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(StampFailure::Store(error)),
                    Err(_) => return Err(StampFailure::Gone),
                }
                incarnation
            }
        };
        let identity: Arc<str> = Arc::from(format!("{}/{incarnation}", self.name));
        Ok(self.identity.get_or_init(|| identity).clone())
    }

    /// Hands every `data` envelope the other end sends on this connection
    /// to the returned receiver (of `capacity`), in order; each is answered
    /// upstream with `ack` or `nack` only once the application answers it.
    /// A full receiver slows the reading of the socket; nothing is dropped.
    /// Call once: a later call replaces the receiver.
    pub fn receive_data(&self, capacity: usize) -> mpsc::Receiver<UpstreamData> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        self.producer.do_send(ReceiveData(sender));
        receiver
    }

    /// The name this producer stamps its envelopes with (before `/incarnation`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a request and waits for the correlated reply.
    pub async fn request(&self, method: &str, params: Value) -> Result<Envelope, RequestError> {
        let request = Request {
            method: method.to_owned(),
            params,
        };
        self.producer
            .send(request)
            .await
            .unwrap_or(Err(RequestError::Closed))
    }
}
