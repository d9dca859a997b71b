//! `ProducerHandle`: what the application holds to send data over an
//! envelope v1 connection (the ingest client).

use std::ops::Deref;

use actix::Addr;
use serde_json::Value;

use super::error::RequestError;
use super::link_handle::{answered, LinkHandle};
use super::producer::{Producer, Request, SendData};
use crate::protocol::envelope::Envelope;

/// A handle on one supervised envelope v1 connection. The methods of
/// [`LinkHandle`] (status, events, close ...) are available through `Deref`.
#[derive(Clone)]
pub struct ProducerHandle {
    pub(crate) link: LinkHandle,
    pub(crate) producer: Addr<Producer>,
}

impl Deref for ProducerHandle {
    type Target = LinkHandle;

    fn deref(&self) -> &LinkHandle {
        &self.link
    }
}

impl ProducerHandle {
    /// Sends one data envelope and waits until the hub acked it. It is kept
    /// (and resent after a reconnect) until then, or until the buffer deadline.
    pub async fn send_data(&self, payload: Value) -> Result<(), RequestError> {
        let send = SendData {
            payload,
            wait_for_ack: true,
        };
        answered(self.producer.send(send).await)
    }

    /// Sends one data envelope without waiting for its ack (it is still
    /// resent after a reconnect until acked).
    pub async fn send(&self, payload: Value) -> Result<(), RequestError> {
        let send = SendData {
            payload,
            wait_for_ack: false,
        };
        answered(self.producer.send(send).await)
    }

    /// Sends a request and waits for the correlated reply.
    pub async fn request(&self, method: &str, params: Value) -> Result<Envelope, RequestError> {
        let request = Request {
            method: method.to_owned(),
            params,
        };
        answered(self.producer.send(request).await)
    }
}
