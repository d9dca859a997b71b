//! One sequence per recoverable topic across the cluster.
//!
//! A node stores a broadcast on a recoverable topic as the topic's next
//! message: sequence `n + 1` in the epoch of message `n`, published with
//! `Nats-Expected-Last-Subject-Sequence` = the stream sequence of message
//! `n`. When another node stored one first, the stream refuses it (wrong
//! last sequence); the node reads the topic's last message and tries again.
//! So the stream holds each topic's messages as 1, 2, 3… with no hole and
//! no duplicate, however many nodes publish at once. A topic with no message
//! (new, or its history lost) starts at 1 in a new epoch.
//!
//! Each try carries the same `Nats-Msg-Id`, so a try that was stored but
//! whose acknowledgement was lost is not stored twice. Broadcasts leave one
//! at a time, in the order they were made on this node.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use async_nats::jetstream::{self};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::connection::{headers, RETRY};
use super::handle::{SequencedJob, Shared};
use super::health::Dropped;
use super::wire;
use crate::protocol::clock::unix_millis;
use crate::protocol::phoenix;
use crate::server::history::stamp;

/// Most tries of one broadcast that lose the compare-and-set.
const MAX_CONFLICTS: u32 = 1000;
/// Most tries of one broadcast that NATS refuses while connected (about
/// ten seconds of retries): then it is dropped, counted.
const MAX_REFUSALS: u32 = 50;
/// Most topics whose last message is remembered.
const MAX_REMEMBERED: usize = 10_000;

/// A topic's last stored message, as far as this node knows.
#[derive(Debug, Clone)]
struct Last {
    stream_sequence: u64,
    sequence: u64,
    epoch: String,
}

/// Stores the broadcasts of `jobs`, one after another.
pub(super) async fn run(
    shared: Arc<Shared>,
    js: jetstream::Context,
    mut jobs: mpsc::Receiver<SequencedJob>,
) {
    let mut last: HashMap<String, Last> = HashMap::new();
    let mut published: u64 = 0;
    while let Some(job) = jobs.recv().await {
        published += 1;
        let id = format!("{}:{published}", shared.instance);
        store(&shared, &js, &mut last, &job, &id).await;
        shared.release(job.bytes);
    }
}

async fn store(
    shared: &Shared,
    js: &jetstream::Context,
    last: &mut HashMap<String, Last>,
    job: &SequencedJob,
    id: &str,
) {
    let subject = shared.subjects.history(&job.topic);
    let (mut conflicts, mut refusals) = (0, 0);
    loop {
        let stream = current_stream(shared).await;
        let known = match last.get(&job.topic) {
            Some(known) => Some(known.clone()),
            None => match read_last(&stream, &subject).await {
                Ok(found) => found,
                Err(()) => {
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let (sequence, epoch, expected) = match &known {
            Some(known) => (
                known.sequence + 1,
                known.epoch.clone(),
                known.stream_sequence,
            ),
            None => (1, new_epoch(), 0),
        };
        let stamped = stamp(&job.topic, &job.event, &job.payload, sequence, &epoch);
        let frame = phoenix::encode_parts(None, None, &job.topic, &job.event, &stamped);
        let mut headers = headers(shared, "sequenced");
        headers.insert(wire::SEQUENCE, sequence.to_string().as_str());
        headers.insert(wire::EPOCH, epoch.as_str());
        let message = PublishMessage::build()
            .payload(Bytes::from(frame))
            .headers(headers)
            .message_id(id)
            .expected_stream(&shared.config.stream)
            .expected_last_subject_sequence(expected);
        let acked = match js.send_publish(subject.clone(), message).await {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match acked {
            Ok(ack) if !ack.duplicate => {
                remember(
                    last,
                    &job.topic,
                    Last {
                        stream_sequence: ack.sequence,
                        sequence,
                        epoch,
                    },
                );
                shared.stats.published("sequenced");
                return;
            }
            Ok(_) => {
                // An earlier try was stored after all.
                last.remove(&job.topic);
                shared.stats.published("sequenced");
                return;
            }
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                last.remove(&job.topic);
                shared.stats.conflict();
                conflicts += 1;
                if conflicts >= MAX_CONFLICTS {
                    tracing::warn!(topic = %job.topic, "recoverable broadcast dropped: too contended");
                    shared.stats.dropped(Dropped::Contended);
                    return;
                }
            }
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                tracing::warn!(topic = %job.topic, "recoverable broadcast dropped: larger than NATS takes");
                shared.stats.dropped(Dropped::Rejected);
                return;
            }
            Err(error) => {
                tracing::debug!(%error, topic = %job.topic, "recoverable publish failed; retrying");
                last.remove(&job.topic);
                if error.kind() == PublishErrorKind::StreamNotFound {
                    // Deleted under us: made again, its sequences anew.
                    super::connection::find_stream_once(shared, js).await;
                } else if shared.stats.state() == super::health::LinkState::Connected {
                    refusals += 1;
                    if refusals >= MAX_REFUSALS {
                        tracing::warn!(%error, topic = %job.topic, "recoverable broadcast dropped: NATS keeps refusing it");
                        shared.stats.dropped(Dropped::Rejected);
                        return;
                    }
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

fn remember(last: &mut HashMap<String, Last>, topic: &str, known: Last) {
    if last.len() >= MAX_REMEMBERED && !last.contains_key(topic) {
        last.clear();
    }
    last.insert(topic.to_owned(), known);
}

/// The history stream, once it exists.
async fn current_stream(shared: &Shared) -> Stream {
    let mut streams = shared.stream.subscribe();
    loop {
        if let Ok(found) = streams.wait_for(Option::is_some).await {
            if let Some(stream) = found.clone() {
                return stream;
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// The topic's last stored message; `Ok(None)` when it has none.
async fn read_last(stream: &Stream, subject: &str) -> Result<Option<Last>, ()> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(message) => {
            let headers = Some(&message.headers);
            let sequence = wire::header_u64(headers, wire::SEQUENCE);
            let epoch = wire::header(headers, wire::EPOCH);
            match (sequence, epoch) {
                (Some(sequence), Some(epoch)) => Ok(Some(Last {
                    stream_sequence: message.sequence,
                    sequence,
                    epoch: epoch.to_owned(),
                })),
                // Not one of ours: the topic starts again after it.
                _ => Ok(Some(Last {
                    stream_sequence: message.sequence,
                    sequence: 0,
                    epoch: new_epoch(),
                })),
            }
        }
        Err(error) if error.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(error) => {
            tracing::debug!(%error, subject, "reading a topic's last message failed");
            Err(())
        }
    }
}

/// A fresh epoch: the time and a random part, so a topic whose history
/// was lost never reuses one.
fn new_epoch() -> String {
    format!("{:x}{:08x}", unix_millis(), fastrand::u32(..))
}
