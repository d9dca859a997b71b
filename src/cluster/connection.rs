//! The node's own thread: one NATS connection (re-dialled by the client
//! while NATS is away), the history stream made or found, and the tasks
//! that publish, sequence, beat and follow topics. The thread ends when the
//! hub it serves is gone.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, HeaderMap};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::handle::{Outgoing, SequencedJob, Shared};
use super::health::{Dropped, LinkState};
use super::wire::{self, Heartbeat, PresenceWire};

/// The longest pause between two dials while NATS is away.
const MAX_REDIAL: Duration = Duration::from_secs(1);
/// The pause before trying again what NATS could not do.
pub(super) const RETRY: Duration = Duration::from_millis(200);

/// Starts the node's thread.
pub(super) fn spawn(
    shared: Arc<Shared>,
    outgoing: mpsc::Receiver<Outgoing>,
    sequenced: mpsc::Receiver<SequencedJob>,
) {
    let name = format!("cluster-{}", shared.node_id);
    let started = std::thread::Builder::new().name(name).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => runtime.block_on(run(shared, outgoing, sequenced)),
            Err(error) => tracing::error!(%error, "cluster thread has no runtime"),
        }
    });
    if let Err(error) = started {
        tracing::error!(%error, "cluster thread not started");
    }
}

async fn run(
    shared: Arc<Shared>,
    outgoing: mpsc::Receiver<Outgoing>,
    sequenced: mpsc::Receiver<SequencedJob>,
) {
    let (reconnects, _) = watch::channel(0u64);
    let Some(client) = connect(&shared, reconnects.clone()).await else {
        return;
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(shared.config.request_timeout)
        .build(client.clone());
    let tasks = [
        tokio::spawn(find_stream(shared.clone(), js.clone())),
        tokio::spawn(send_outgoing(shared.clone(), client.clone(), outgoing)),
        tokio::spawn(super::sequencer::run(shared.clone(), js, sequenced)),
        tokio::spawn(beat(shared.clone(), client.clone())),
        tokio::spawn(hear_peers(shared.clone(), client.clone())),
    ];
    follow_topics(&shared, &client, &reconnects).await;
    for task in tasks {
        task.abort();
    }
    let _ = client.drain().await;
    tracing::debug!(node = %shared.node_id, "cluster node stopped");
}

async fn connect(shared: &Arc<Shared>, reconnects: watch::Sender<u64>) -> Option<Client> {
    let events = shared.clone();
    let options = async_nats::ConnectOptions::new()
        .name(format!("switchboard {}", shared.node_id))
        .retry_on_initial_connect()
        .connection_timeout(shared.config.request_timeout)
        .request_timeout(Some(shared.config.request_timeout))
        // A half-open link is noticed within two heartbeats.
        .ping_interval(shared.config.heartbeat)
        // This node's own publishes never come back to it (the stream's
        // republished messages do: the server sends them).
        .no_echo()
        .reconnect_delay_callback(|attempts| {
            (RETRY * u32::try_from(attempts).unwrap_or(u32::MAX)).min(MAX_REDIAL)
        })
        .event_callback(move |event| {
            let shared = events.clone();
            let reconnects = reconnects.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        shared.stats.set_state(LinkState::Connected);
                        reconnects.send_modify(|count| *count += 1);
                        tracing::info!(node = %shared.node_id, "cluster connected to NATS");
                    }
                    async_nats::Event::Disconnected => {
                        shared.stats.set_state(LinkState::Disconnected);
                        tracing::warn!(node = %shared.node_id, "cluster lost NATS; redialling");
                    }
                    async_nats::Event::SlowConsumer(_) => {
                        shared.stats.dropped(Dropped::SlowConsumer)
                    }
                    _ => {}
                }
            }
        });
    match options.connect(shared.config.nats_url.as_str()).await {
        Ok(client) => Some(client),
        Err(error) => {
            let url = crate::sink::redact(&shared.config.nats_url);
            tracing::error!(%error, %url, "cluster cannot use its NATS URL");
            None
        }
    }
}

/// The history stream as this node would make it.
pub(super) fn history_stream(shared: &Shared) -> stream::Config {
    let config = &shared.config;
    let subjects = &shared.subjects;
    stream::Config {
        name: config.stream.clone(),
        subjects: vec![subjects.history_all()],
        storage: stream::StorageType::File,
        max_messages_per_subject: i64::try_from(shared.copies.size).unwrap_or(i64::MAX),
        max_bytes: i64::try_from(config.history_max_bytes).unwrap_or(i64::MAX),
        max_age: config.history_max_age,
        discard: stream::DiscardPolicy::Old,
        allow_direct: true,
        republish: Some(stream::Republish {
            source: subjects.history_all(),
            destination: subjects.republished_all(),
            headers_only: false,
        }),
        ..Default::default()
    }
}

/// Makes (or finds) the history stream, retrying while NATS is away.
pub(super) async fn find_stream(shared: Arc<Shared>, js: jetstream::Context) {
    let wanted = history_stream(&shared);
    loop {
        match js.get_or_create_stream(wanted.clone()).await {
            Ok(found) => {
                tracing::info!(stream = %shared.config.stream, "cluster history stream ready");
                shared.stream.send_replace(Some(found));
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "cluster history stream not ready yet");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Makes (or finds) the history stream once; the stream handle is
/// replaced when it was.
pub(super) async fn find_stream_once(shared: &Shared, js: &jetstream::Context) {
    match js.get_or_create_stream(history_stream(shared)).await {
        Ok(found) => {
            tracing::warn!(stream = %shared.config.stream, "cluster history stream made again");
            shared.stream.send_replace(Some(found));
        }
        Err(error) => tracing::debug!(%error, "cluster history stream not made"),
    }
}

/// The headers every message of this node carries.
pub(super) fn headers(shared: &Shared, kind: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(wire::NODE, shared.instance.as_str());
    headers.insert(wire::KIND, kind);
    let now = crate::protocol::clock::unix_micros().to_string();
    headers.insert(wire::SENT_AT, now.as_str());
    headers
}

/// Publishes plain broadcasts and presence messages, in the order queued;
/// while NATS is away they are dropped (counted), not held.
async fn send_outgoing(shared: Arc<Shared>, client: Client, mut queue: mpsc::Receiver<Outgoing>) {
    while let Some(message) = queue.recv().await {
        let bytes = message.bytes();
        let (topic, kind, body) = match message {
            Outgoing::Broadcast { topic, frame } => {
                (topic, wire::KIND_BROADCAST, frame.into_bytes())
            }
            Outgoing::Presence { topic, body } => (topic, wire::KIND_PRESENCE, body),
        };
        let sent = if client.connection_state() == State::Connected {
            let subject = shared.subjects.topic(&topic);
            let publish = client.publish_with_headers(subject, headers(&shared, kind), body);
            matches!(
                tokio::time::timeout(shared.config.request_timeout, publish).await,
                Ok(Ok(()))
            )
        } else {
            false
        };
        if sent {
            shared.stats.published(kind);
        } else {
            shared.stats.dropped(Dropped::Disconnected);
        }
        shared.release(bytes);
    }
}

/// Says this node is alive every `cluster.heartbeat`, and lets the peers not
/// heard from for `cluster.down_after` go. Ends when the hub is gone.
async fn beat(shared: Arc<Shared>, client: Client) {
    let config = &shared.config;
    let mut checks = tokio::time::interval(config.heartbeat / 4);
    let mut last_beat: Option<Instant> = None;
    loop {
        checks.tick().await;
        let Some(registry) = shared.registry.upgrade() else {
            return;
        };
        let now = Instant::now();
        if last_beat.is_none_or(|last| now.duration_since(last) >= config.heartbeat) {
            last_beat = Some(now);
            let draining = shared.draining.load(Ordering::Acquire);
            let heartbeat = Heartbeat {
                node: shared.instance.clone(),
                state: if draining { "draining" } else { "serving" }.to_owned(),
                connections: registry.connections(),
                topics: registry.topic_count(),
            };
            if let Ok(body) = serde_json::to_vec(&heartbeat) {
                let beat = client.publish(shared.subjects.nodes(), body.into());
                let _ = tokio::time::timeout(config.request_timeout, beat).await;
            }
        }
        let down = shared
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .expire(now, config.down_after);
        for node in down {
            tracing::warn!(%node, "cluster node down: its presences leave");
            metrics::counter!("switchboard_cluster_peers_down_total").increment(1);
            registry.presence().drop_node(&registry, &node);
        }
    }
}

/// Reads the other nodes' heartbeats. A node heard from for the first time
/// (or again after being down) is asked for its presence on every topic
/// followed here.
async fn hear_peers(shared: Arc<Shared>, client: Client) {
    let mut heard = loop {
        match client.subscribe(shared.subjects.nodes()).await {
            Ok(subscriber) => break subscriber,
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    while let Some(message) = heard.next().await {
        let Ok(heartbeat) = serde_json::from_slice::<Heartbeat>(&message.payload) else {
            shared.stats.dropped(Dropped::Malformed);
            continue;
        };
        if heartbeat.node == shared.instance {
            continue;
        }
        let node = heartbeat.node.clone();
        let seen = shared
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .seen(heartbeat, Instant::now());
        match seen {
            Ok(true) => {
                tracing::info!(%node, "cluster node up");
                for topic in shared.interest.all() {
                    let ask = PresenceWire::Sync {
                        to: Some(node.clone()),
                    };
                    shared.send_presence(&topic, &ask);
                }
            }
            Ok(false) => {}
            Err(()) => shared.stats.dropped(Dropped::TooManyPeers),
        }
        let peers = shared
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .view(Instant::now())
            .len();
        metrics::gauge!("switchboard_cluster_peers").set(peers as f64);
    }
}

/// Follows the topics wanted, and only those: a task per topic, started
/// and stopped as wants change. Returns when the hub is gone.
async fn follow_topics(shared: &Arc<Shared>, client: &Client, reconnects: &watch::Sender<u64>) {
    let mut following: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            () = shared.interest.changed() => {}
            () = tokio::time::sleep(shared.config.heartbeat) => {}
        }
        let Some(registry) = shared.registry.upgrade() else {
            break;
        };
        following.retain(|_, task| !task.is_finished());
        let mut changed = shared.interest.take_changed();
        // A wanted topic whose task ended (NATS closed it) is followed again.
        changed.extend(
            shared
                .interest
                .all()
                .into_iter()
                .filter(|topic| !following.contains_key(topic)),
        );
        for topic in changed {
            let wanted = shared.interest.wanted(&topic);
            if wanted && !following.contains_key(&topic) {
                let recoverable = registry.history_for(&topic).is_some();
                let task = super::topic_task::follow(
                    shared.clone(),
                    client.clone(),
                    topic.clone(),
                    recoverable,
                    reconnects.subscribe(),
                );
                following.insert(topic, tokio::spawn(task));
            } else if !wanted && shared.let_go(&topic) {
                if let Some(task) = following.remove(&topic) {
                    task.abort();
                }
                registry.presence().forget_remote(&topic);
            }
        }
        shared.followed.store(following.len(), Ordering::Relaxed);
        metrics::gauge!("switchboard_cluster_subscriptions").set(following.len() as f64);
    }
    for task in following.into_values() {
        task.abort();
    }
}
