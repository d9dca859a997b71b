//! A recoverable topic's history read straight from the stream, for a
//! history request about a topic this node does not follow (`GET
//! /history/{topic}` on any node answers for any topic).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::handle::{Feed, Shared};
use crate::server::history::TopicLog;

/// Why a topic's history could not be read from the stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryReadError {
    /// The history stream is not there yet (NATS away since the start).
    #[error("the cluster's history stream is not available")]
    Unavailable,
    /// NATS did not answer in time.
    #[error("reading the history stream took longer than {0:?}")]
    TimedOut(Duration),
    /// NATS answered with an error.
    #[error("reading the history stream failed")]
    Failed(#[source] async_nats::jetstream::stream::DirectGetError),
}

/// Reads every message the stream holds of `topic` into a fresh copy.
pub(super) async fn read(
    shared: &Shared,
    topic: &str,
    within: Duration,
) -> Result<Arc<Mutex<TopicLog>>, HistoryReadError> {
    let stream = shared
        .stream
        .borrow()
        .clone()
        .ok_or(HistoryReadError::Unavailable)?;
    let copy = TopicLog::cluster_copy(shared.copies.size, shared.copies.max_bytes);
    let scratch = Feed {
        log: Arc::new(Mutex::new(copy)),
        state: Mutex::default(),
        // Not live: nothing read here is delivered to anyone.
        ready: watch::channel(false).0,
    };
    let reading = super::topic_task::read_back(shared, &stream, topic, &scratch, None);
    tokio::time::timeout(within, reading)
        .await
        .map_err(|_| HistoryReadError::TimedOut(within))?
        .map_err(HistoryReadError::Failed)?;
    Ok(scratch.log)
}
