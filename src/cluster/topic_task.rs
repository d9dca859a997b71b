//! Following one topic: the other nodes' plain broadcasts and presence
//! messages on its subject, and, on a recoverable topic, its messages as
//! the history stream republishes them, read back from the stream wherever
//! the node missed one (after a drop, a NATS outage, or before its first
//! join: the copy is caught up before any join goes on).

use std::sync::Arc;

use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use async_nats::{Client, HeaderMap, Message, Subscriber};
use bytes::Bytes;
use bytestring::ByteString;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::connection::RETRY;
use super::feed::{Offer, Stored};
use super::handle::{Feed, Shared};
use super::health::Dropped;
use super::wire::{self, PresenceWire};
use crate::server::history;

/// Follows `topic` until the task is aborted or NATS is closed.
pub(super) async fn follow(
    shared: Arc<Shared>,
    client: Client,
    topic: String,
    recoverable: bool,
    mut reconnects: watch::Receiver<u64>,
) {
    let mut plain = subscribe(&client, shared.subjects.topic(&topic)).await;
    let mut stored = match recoverable {
        true => Some(subscribe(&client, shared.subjects.republished(&topic)).await),
        false => None,
    };
    // Subscribed before reading back: nothing stored from now on is missed.
    let _ = tokio::time::timeout(shared.config.request_timeout, client.flush()).await;
    shared.send_presence(&topic, &PresenceWire::Sync { to: None });
    // Joins wait for this: subscribed (and, on a recoverable topic, the
    // copy caught up).
    let followed = shared.feed(&topic, || {});
    let feed = recoverable.then_some(followed.clone());
    if let Some(feed) = &feed {
        catch_up(&shared, &topic, feed, None).await;
    }
    followed.ready.send_replace(true);
    reconnects.borrow_and_update();
    // After a reconnect: when the nodes that did not answer are let go.
    let mut unanswered_at: Option<tokio::time::Instant> = None;
    loop {
        let unanswered = async {
            match unanswered_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = plain.next() => match message {
                Some(message) => on_plain(&shared, &topic, &message),
                None => return,
            },
            message = next(&mut stored) => match (message, &feed) {
                (Some(message), Some(feed)) => on_stored(&shared, &topic, feed, &message).await,
                _ => return,
            },
            changed = reconnects.changed() => {
                if changed.is_err() {
                    return;
                }
                // Whatever was said while NATS was away is asked for again.
                if let Some(feed) = &feed {
                    catch_up(&shared, &topic, feed, None).await;
                }
                if let Some(registry) = shared.registry.upgrade() {
                    let publish = |wire: PresenceWire| shared.send_presence(&topic, &wire);
                    registry.presence().resync(&topic, &publish);
                }
                unanswered_at = Some(tokio::time::Instant::now() + shared.config.request_timeout);
            }
            () = unanswered => {
                unanswered_at = None;
                if let Some(registry) = shared.registry.upgrade() {
                    registry.presence().drop_unanswered(&registry, &topic);
                }
            }
        }
    }
}

async fn subscribe(client: &Client, subject: String) -> Subscriber {
    loop {
        match client.subscribe(subject.clone()).await {
            Ok(subscriber) => return subscriber,
            Err(error) => {
                tracing::debug!(%error, %subject, "cluster subscription failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn next(stored: &mut Option<Subscriber>) -> Option<Message> {
    match stored {
        Some(subscriber) => subscriber.next().await,
        None => std::future::pending().await,
    }
}

/// Another node's plain broadcast or presence message.
fn on_plain(shared: &Shared, topic: &str, message: &Message) {
    let headers = message.headers.as_ref();
    let Some(node) = wire::header(headers, wire::NODE) else {
        return shared.stats.dropped(Dropped::Malformed);
    };
    if node == shared.instance {
        return; // our own, delivered here already
    }
    let Some(registry) = shared.registry.upgrade() else {
        return;
    };
    match wire::header(headers, wire::KIND) {
        Some(wire::KIND_BROADCAST) => match ByteString::try_from(message.payload.clone()) {
            Ok(frame) => {
                registry.deliver_encoded(topic, &frame, None);
                let sent_at = wire::header_u64(headers, wire::SENT_AT);
                shared.stats.delivered(wire::KIND_BROADCAST, sent_at);
            }
            Err(_) => shared.stats.dropped(Dropped::Malformed),
        },
        Some(wire::KIND_PRESENCE) => match serde_json::from_slice::<PresenceWire>(&message.payload)
        {
            Ok(presence)
                if !matches!(presence, PresenceWire::Sync { .. }) && !shared.knows(node) =>
            {
                // What a node not heard from yet holds is asked for once it is.
                shared.stats.dropped(Dropped::UnknownNode);
            }
            Ok(presence) => {
                let publish = |reply: PresenceWire| shared.send_presence(topic, &reply);
                let me = shared.instance.as_str();
                registry
                    .presence()
                    .on_remote(&registry, topic, node, me, presence, &publish);
            }
            Err(_) => shared.stats.dropped(Dropped::Malformed),
        },
        _ => shared.stats.dropped(Dropped::Malformed),
    }
}

/// A message the stream republished.
async fn on_stored(shared: &Shared, topic: &str, feed: &Feed, message: &Message) {
    let headers = message.headers.as_ref();
    let stream_sequence = wire::header_u64(headers, wire::STREAM_SEQUENCE);
    let Some((stored, frame, sent_at)) = parse(headers, stream_sequence, &message.payload) else {
        return shared.stats.dropped(Dropped::Malformed);
    };
    if take(shared, topic, feed, &stored, frame, sent_at, false) == Offer::ReadBack {
        // Something came between: read back through this very message.
        catch_up(shared, topic, feed, Some(stored.stream_sequence)).await;
    }
}

/// Reads back from the stream (through `until`, or to its end), retrying
/// while NATS is away.
async fn catch_up(shared: &Shared, topic: &str, feed: &Feed, until: Option<u64>) {
    let mut streams = shared.stream.subscribe();
    loop {
        let Ok(stream) = streams.wait_for(Option::is_some).await.map(|s| s.clone()) else {
            return;
        };
        let Some(stream) = stream else {
            continue;
        };
        match read_back(shared, &stream, topic, feed, until).await {
            Ok(()) => return,
            Err(error) => {
                tracing::debug!(%error, topic, "cluster read-back failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Takes the topic's stored messages one after another from where the
/// copy is, until `until` or the end.
pub(super) async fn read_back(
    shared: &Shared,
    stream: &Stream,
    topic: &str,
    feed: &Feed,
    until: Option<u64>,
) -> Result<(), async_nats::jetstream::stream::DirectGetError> {
    let subject = shared.subjects.history(topic);
    let behind = lock(&feed.state).stream_sequence();
    if until.is_some_and(|until| until <= behind) && made_again(stream, behind).await {
        // A message numbered below the copy's position: the stream began anew.
        restart_copy(topic, feed);
    }
    loop {
        let after = lock(&feed.state).stream_sequence();
        if until.is_some_and(|until| after >= until) {
            return Ok(());
        }
        let message = match stream
            .direct_get_next_for_subject(subject.as_str(), Some(after.saturating_add(1)))
            .await
        {
            Ok(message) => message,
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
                if after > 0 && made_again(stream, after).await {
                    // Numbered from 1 again: the copy starts afresh, empty.
                    tracing::warn!(
                        topic,
                        "the history stream was made again: its copy restarts"
                    );
                    *lock(&feed.state) = Default::default();
                    history::lock(&feed.log).restart("", 0);
                    continue;
                }
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let headers = Some(&message.headers);
        match parse(headers, Some(message.sequence), &message.payload) {
            Some((stored, frame, sent_at)) => {
                take(shared, topic, feed, &stored, frame, sent_at, true);
            }
            None => {
                shared.stats.dropped(Dropped::Malformed);
                lock(&feed.state).skip(message.sequence);
            }
        }
    }
}

/// The stream was made again (numbered from 1): the copy starts afresh,
/// empty, and is read again from the start.
fn restart_copy(topic: &str, feed: &Feed) {
    tracing::warn!(
        topic,
        "the history stream was made again: its copy restarts"
    );
    *lock(&feed.state) = Default::default();
    history::lock(&feed.log).restart("", 0);
}

/// Whether the stream now ends before `after`: it was deleted and made
/// again (or lost its store), so its sequences began anew.
async fn made_again(stream: &Stream, after: u64) -> bool {
    match stream.get_info().await {
        Ok(info) => info.state.last_sequence < after,
        Err(_) => false,
    }
}

/// Offers one message to the copy; keeps it (and delivers it, once the
/// copy has caught up) when it is the next one or starts the copy afresh.
fn take(
    shared: &Shared,
    topic: &str,
    feed: &Feed,
    stored: &Stored,
    frame: ByteString,
    sent_at: Option<u64>,
    read_back: bool,
) -> Offer {
    let mut state = lock(&feed.state);
    let offer = match read_back {
        true => state.offer_next(stored),
        false => state.offer_live(stored),
    };
    tracing::trace!(
        topic,
        stored.sequence,
        stored.stream_sequence,
        read_back,
        ?offer,
        "offered"
    );
    if !matches!(offer, Offer::Append | Offer::Restart) {
        return offer;
    }
    let live = *feed.ready.borrow();
    let mut log = history::lock(&feed.log);
    if offer == Offer::Restart {
        if live && stored.sequence != 1 {
            metrics::counter!("switchboard_cluster_history_holes_total").increment(1);
            tracing::warn!(
                topic,
                sequence = stored.sequence,
                "the history stream has a hole"
            );
        }
        log.restart(&stored.epoch, stored.sequence.saturating_sub(1));
    }
    log.push_stored(stored.sequence, frame.clone());
    state.take(stored);
    if live {
        if let Some(registry) = shared.registry.upgrade() {
            // Under the copy's lock: a join's replay cannot interleave.
            registry.deliver_encoded(topic, &frame, Some(stored.sequence));
        }
        shared.stats.delivered("sequenced", sent_at);
    }
    offer
}

/// A stored message's position and frame, from its headers and body.
fn parse(
    headers: Option<&HeaderMap>,
    stream_sequence: Option<u64>,
    payload: &Bytes,
) -> Option<(Stored, ByteString, Option<u64>)> {
    let sequence = wire::header_u64(headers, wire::SEQUENCE).filter(|s| *s > 0)?;
    let epoch = wire::header(headers, wire::EPOCH)?.to_owned();
    let stored = Stored {
        stream_sequence: stream_sequence?,
        sequence,
        epoch,
    };
    let frame = ByteString::try_from(payload.clone()).ok()?;
    Some((stored, frame, wire::header_u64(headers, wire::SENT_AT)))
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
