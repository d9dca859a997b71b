//! What a [`NatsSink`](super::NatsSink) publishes and how it reads the
//! answers: one item at a time ([`Sink::send`](super::Sink::send)), or a
//! batch published without waiting in between and confirmed together
//! under one deadline ([`Sink::send_batch`](super::Sink::send_batch)).

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::{HeaderValue, Subject};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::error::Elapsed;

use super::{Accepted, AcceptedBatch, ItemKind, SinkError, SinkItem};

/// Where a batch goes, and the bound of each of its waits.
pub(super) struct Target {
    pub(super) client: async_nats::Client,
    pub(super) data: Subject,
    pub(super) control: Subject,
    pub(super) limit: Duration,
}

impl Target {
    fn subject(&self, kind: ItemKind) -> Subject {
        match kind {
            ItemKind::Data => self.data.clone(),
            ItemKind::Control => self.control.clone(),
        }
    }
}

/// Each item's outcome so far, while a batch is handed over.
struct Outcomes {
    slots: Vec<Option<Result<(), SinkError>>>,
    /// Items the hand-over reached (the rest were not sent).
    reached: usize,
}

impl Outcomes {
    fn new(count: usize) -> Outcomes {
        let mut slots = Vec::with_capacity(count);
        slots.resize_with(count, || None);
        Outcomes { slots, reached: 0 }
    }

    /// Items never sent get `error`; the rest keep what they have.
    fn unsent(&mut self, error: &SinkError) {
        for slot in &mut self.slots[self.reached..] {
            *slot = Some(Err(error.clone()));
        }
    }

    /// Records that item `index` failed; `Err` when the rest must not be
    /// sent (a retryable failure: they are retried, in order, with it).
    fn fail(&mut self, index: usize, error: SinkError) -> Result<(), SinkError> {
        let stop = error.is_retryable();
        self.slots[index] = Some(Err(error.clone()));
        if stop {
            return Err(error);
        }
        Ok(())
    }

    /// After a hand-over ended (or its deadline did): what it did not send
    /// fails as the hand-over did.
    fn handed_over(&mut self, ended: Result<Result<(), SinkError>, Elapsed>, limit: Duration) {
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.unsent(&error),
            Err(_) => self.unsent(&SinkError::Timeout(limit)),
        }
    }

    /// The outcomes; an item still without one did not answer in time.
    fn finish(self, limit: Duration) -> Vec<Result<(), SinkError>> {
        self.slots
            .into_iter()
            .map(|slot| slot.unwrap_or(Err(SinkError::Timeout(limit))))
            .collect()
    }
}

fn settled(outcomes: Vec<Result<(), SinkError>>) -> AcceptedBatch {
    Box::pin(futures_util::future::ready(outcomes))
}

/// A JetStream batch: every item published in order, no wait in between
/// (a retryable failure stops the rest, which are not sent), then every
/// `PubAck` awaited together until the deadline.
pub(super) async fn jetstream_batch(
    target: Target,
    context: jetstream::Context,
    stream: String,
    items: Vec<SinkItem>,
) -> AcceptedBatch {
    let limit = target.limit;
    if let Err(error) = ensure_connected(&target.client) {
        return settled(vec![Err(error); items.len()]);
    }
    let mut outcomes = Outcomes::new(items.len());
    // Polled only once all are sent (their futures are not `Sync`, which
    // the hand-over's own future must be across its awaits).
    let mut acks = Vec::with_capacity(items.len());
    let handing = async {
        for (index, item) in items.into_iter().enumerate() {
            outcomes.reached = index + 1;
            let subject = target.subject(item.kind);
            let handed = match stored(&stream, item) {
                Ok(message) => context
                    .send_publish(subject, message)
                    .await
                    .map_err(|error| publish_error(error, limit)),
                Err(error) => Err(error),
            };
            match handed {
                Ok(ack) => acks.push((index, ack)),
                Err(error) => outcomes.fail(index, error)?,
            }
        }
        Ok(())
    };
    let ended = tokio::time::timeout(limit, handing).await;
    outcomes.handed_over(ended, limit);
    Box::pin(async move {
        let mut acks: FuturesUnordered<_> = acks
            .into_iter()
            .map(|(index, ack)| async move { (index, ack.await) })
            .collect();
        let confirmed = async {
            while let Some((index, ack)) = acks.next().await {
                let outcome = ack.map(|ack| note_duplicate(&ack));
                outcomes.slots[index] = Some(outcome.map_err(|error| publish_error(error, limit)));
            }
        };
        let _ = tokio::time::timeout(limit, confirmed).await;
        outcomes.finish(limit)
    })
}

/// A core NATS batch: every item published in order (a retryable failure
/// stops the rest), then one flush confirms all that were published.
pub(super) async fn core_batch(target: Target, items: Vec<SinkItem>) -> AcceptedBatch {
    let limit = target.limit;
    if let Err(error) = ensure_connected(&target.client) {
        return settled(vec![Err(error); items.len()]);
    }
    let mut outcomes = Outcomes::new(items.len());
    let mut published = Vec::with_capacity(items.len());
    let handing = async {
        for (index, item) in items.into_iter().enumerate() {
            outcomes.reached = index + 1;
            let subject = target.subject(item.kind);
            match target.client.publish(subject, item.payload).await {
                Ok(()) => published.push(index),
                Err(error) => outcomes.fail(index, core_error(error))?,
            }
        }
        Ok(())
    };
    let ended = tokio::time::timeout(limit, handing).await;
    outcomes.handed_over(ended, limit);
    let client = target.client;
    Box::pin(async move {
        if !published.is_empty() {
            let flushed = bounded(limit, client.flush()).await.and_then(|flushed| {
                flushed
                    .map_err(|error| SinkError::Unavailable(format!("flushing to NATS: {error}")))
            });
            for index in published {
                outcomes.slots[index] = Some(flushed.clone());
            }
        }
        outcomes.finish(limit)
    })
}

/// The message storing `item` in `stream`, deduplicated by its store id
/// (or its id) as `Nats-Msg-Id`.
fn stored(stream: &str, item: SinkItem) -> Result<PublishMessage, SinkError> {
    let mut message = PublishMessage::build()
        .payload(item.payload)
        .expected_stream(stream);
    let stored_as = item.store_id.as_deref().unwrap_or(&item.id);
    if !stored_as.is_empty() {
        // Parsed, not converted: an id with CR or LF cannot be a header
        // (the conversion would panic).
        let id: HeaderValue = stored_as.parse().map_err(|_| {
            SinkError::Rejected(format!(
                "item id {stored_as:?} cannot be a Nats-Msg-Id header"
            ))
        })?;
        message = message.header(async_nats::header::NATS_MESSAGE_ID, id);
    }
    Ok(message)
}

fn note_duplicate(ack: &PublishAck) {
    if ack.duplicate {
        tracing::debug!(
            stream = %ack.stream,
            sequence = ack.sequence,
            "JetStream already held this item"
        );
    }
}

fn core_error(error: async_nats::client::PublishError) -> SinkError {
    match error.kind() {
        async_nats::client::PublishErrorKind::MaxPayloadExceeded
        | async_nats::client::PublishErrorKind::InvalidSubject => {
            SinkError::Rejected(error.to_string())
        }
        async_nats::client::PublishErrorKind::Send => SinkError::Unavailable(error.to_string()),
    }
}

pub(super) async fn publish_core(
    client: async_nats::Client,
    subject: Subject,
    item: SinkItem,
    limit: Duration,
) -> Result<Accepted, SinkError> {
    ensure_connected(&client)?;
    bounded(limit, client.publish(subject, item.payload))
        .await?
        .map_err(core_error)?;
    Ok(Box::pin(async move {
        bounded(limit, client.flush())
            .await?
            .map_err(|error| SinkError::Unavailable(format!("flushing to NATS: {error}")))
    }))
}

pub(super) async fn publish_jetstream(
    client: async_nats::Client,
    context: jetstream::Context,
    stream: String,
    subject: Subject,
    item: SinkItem,
    limit: Duration,
) -> Result<Accepted, SinkError> {
    ensure_connected(&client)?;
    let message = stored(&stream, item)?;
    let ack = bounded(limit, context.send_publish(subject, message))
        .await?
        .map_err(|error| publish_error(error, limit))?;
    Ok(Box::pin(async move {
        let ack = bounded(limit, ack)
            .await?
            .map_err(|error| publish_error(error, limit))?;
        note_duplicate(&ack);
        Ok(())
    }))
}

/// Sorts a JetStream publish failure into retryable or not.
fn publish_error(error: PublishError, limit: Duration) -> SinkError {
    let message = format!("JetStream publish: {error}");
    match error.kind() {
        PublishErrorKind::TimedOut => SinkError::Timeout(limit),
        // No responders: the stream is missing, or not back yet after a
        // restart of the server. The connection broke, or too many acks pend.
        PublishErrorKind::StreamNotFound
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending => SinkError::Unavailable(message),
        // Payload plus headers over the server's max_payload; a stream
        // refusing the item.
        PublishErrorKind::MaxPayloadExceeded
        | PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence => SinkError::Rejected(message),
        _ => match std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<jetstream::Error>())
        {
            // The stream answered with an error: 503 is "try again later",
            // anything else refuses this item.
            Some(api) if api.code() == 503 => SinkError::Unavailable(message),
            Some(_) => SinkError::Rejected(message),
            None => SinkError::Unavailable(message),
        },
    }
}

/// Fails fast while the client is reconnecting, instead of queueing items
/// that would only time out.
pub(super) fn ensure_connected(client: &async_nats::Client) -> Result<(), SinkError> {
    match client.connection_state() {
        State::Connected => Ok(()),
        state => Err(SinkError::Unavailable(format!(
            "NATS connection is not up ({state})"
        ))),
    }
}

/// `future`, or [`SinkError::Timeout`] after `limit`.
pub(super) async fn bounded<F: std::future::IntoFuture>(
    limit: Duration,
    future: F,
) -> Result<F::Output, SinkError> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| SinkError::Timeout(limit))
}
