//! [`Cluster`]: what the rest of the hub calls. Every call returns at once:
//! work for NATS goes into bounded queues that the node's own thread empties
//! ([`connection`](super::connection)).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use bytestring::ByteString;
use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::health::{ClusterHealth, Dropped, Stats};
use super::interest::Interest;
use super::peers::PeerTable;
use super::subject::Subjects;
use super::wire::PresenceWire;
use crate::config::ClusterConfig;
use crate::server::history::TopicLog;
use crate::server::registry::Registry;

/// A message for the other nodes' topic subjects.
pub(super) enum Outgoing {
    /// A plain broadcast's frame.
    Broadcast { topic: String, frame: ByteString },
    /// A presence message.
    Presence { topic: String, body: Bytes },
}

impl Outgoing {
    pub(super) fn bytes(&self) -> usize {
        match self {
            Outgoing::Broadcast { topic, frame } => topic.len() + frame.len(),
            Outgoing::Presence { topic, body } => topic.len() + body.len(),
        }
    }
}

/// A broadcast on a recoverable topic, to be sequenced by the stream.
pub(super) struct SequencedJob {
    pub topic: String,
    pub event: String,
    pub payload: Value,
    pub bytes: usize,
}

/// A topic as this node follows it: whether it is subscribed (and, on a
/// recoverable topic, its copy of the history caught up with the stream),
/// and that copy (unused on a plain topic).
pub(super) struct Feed {
    pub log: Arc<Mutex<TopicLog>>,
    /// Where the copy is in the stream (kept here, so a task that follows
    /// the topic again goes on from it).
    pub state: Mutex<super::feed::FeedState>,
    pub ready: watch::Sender<bool>,
}

/// The history copies' bounds.
#[derive(Clone, Copy)]
pub(super) struct CopyBounds {
    pub size: usize,
    pub max_bytes: usize,
}

/// What the node's thread and the handle share.
pub(super) struct Shared {
    /// The configured (or drawn) name, as `/health` shows it.
    pub node_id: String,
    /// Who this process is on the wire: `node_id~boot`, a new `boot` per
    /// start, so a node restarted under the same name is a new node to
    /// the others (its old presences go, its message ids are new).
    pub instance: String,
    pub subjects: Subjects,
    pub config: ClusterConfig,
    pub copies: CopyBounds,
    pub registry: Weak<Registry>,
    pub interest: Interest,
    pub feeds: DashMap<String, Arc<Feed>>,
    pub stats: Stats,
    pub peers: Mutex<PeerTable>,
    pub draining: AtomicBool,
    pub pending: AtomicUsize,
    pub pending_bytes: AtomicUsize,
    pub followed: AtomicUsize,
    /// The history stream, once it exists.
    pub stream: watch::Sender<Option<jetstream::stream::Stream>>,
    pub outgoing: mpsc::Sender<Outgoing>,
}

impl Shared {
    /// Whether `node` (an instance) is among the peers heard from.
    pub(super) fn knows(&self, node: &str) -> bool {
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .knows(node)
    }

    /// Takes room for `bytes` in the outgoing bound; `false` when full.
    pub(super) fn reserve(&self, bytes: usize) -> bool {
        let within = self
            .pending_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let next = held.saturating_add(bytes);
                (next <= self.config.max_pending_bytes).then_some(next)
            })
            .is_ok();
        if within {
            self.pending.fetch_add(1, Ordering::AcqRel);
        }
        within
    }

    /// Gives back what [`reserve`](Self::reserve) took.
    pub(super) fn release(&self, bytes: usize) {
        self.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Queues a message for the topic subjects; counted when it cannot be.
    pub(super) fn send(&self, message: Outgoing) {
        let bytes = message.bytes();
        if !self.reserve(bytes) {
            return self.stats.dropped(Dropped::QueueFull);
        }
        if self.outgoing.try_send(message).is_err() {
            self.release(bytes);
            self.stats.dropped(Dropped::QueueFull);
        }
    }

    /// Queues a presence message of `topic`.
    pub(super) fn send_presence(&self, topic: &str, wire: &PresenceWire) {
        match serde_json::to_vec(wire) {
            Ok(body) => self.send(Outgoing::Presence {
                topic: topic.to_owned(),
                body: Bytes::from(body),
            }),
            Err(error) => tracing::error!(%error, "presence message not encoded"),
        }
    }

    /// The copy of a recoverable topic, made empty (not ready) if missing;
    /// `while_held` runs under the entry's lock (a join marks the topic
    /// wanted there, so the copy cannot be let go in between).
    pub(super) fn feed(&self, topic: &str, while_held: impl FnOnce()) -> Arc<Feed> {
        let entry = self.feeds.entry(topic.to_owned());
        while_held();
        entry
            .or_insert_with(|| {
                let log = TopicLog::cluster_copy(self.copies.size, self.copies.max_bytes);
                Arc::new(Feed {
                    log: Arc::new(Mutex::new(log)),
                    state: Mutex::default(),
                    ready: watch::channel(false).0,
                })
            })
            .clone()
    }

    /// Lets `topic` go unless it is wanted again: decided under its feed
    /// entry's lock, where a join marks it wanted. `true` when let go.
    pub(super) fn let_go(&self, topic: &str) -> bool {
        match self.feeds.entry(topic.to_owned()) {
            dashmap::Entry::Occupied(feed) if !self.interest.wanted(topic) => {
                feed.remove();
                true
            }
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(_) => !self.interest.wanted(topic),
        }
    }
}

/// A join waiting for this node to follow its topic (on a recoverable
/// topic: for its copy to catch up with the stream). While it lives the
/// topic stays followed.
pub(crate) struct FeedJoin {
    shared: Arc<Shared>,
    topic: String,
    feed: Arc<Feed>,
}

impl FeedJoin {
    /// Whether the copy has caught up.
    pub(crate) fn is_ready(&self) -> bool {
        *self.feed.ready.borrow()
    }

    /// Waits (at most `within`) for the copy to catch up; `false` when it
    /// did not.
    pub(crate) async fn ready(&self, within: Duration) -> bool {
        let mut ready = self.feed.ready.subscribe();
        let caught_up = async move { ready.wait_for(|ready| *ready).await.is_ok() };
        matches!(tokio::time::timeout(within, caught_up).await, Ok(true))
    }

    /// The copy to join on.
    pub(crate) fn log(&self) -> &Arc<Mutex<TopicLog>> {
        &self.feed.log
    }
}

impl Drop for FeedJoin {
    fn drop(&mut self) {
        self.shared.interest.remove_pending(&self.topic);
    }
}

/// A hub's membership of a cluster.
pub(crate) struct Cluster {
    pub(super) shared: Arc<Shared>,
    pub(super) sequenced: mpsc::Sender<SequencedJob>,
}

impl Cluster {
    /// Starts the node on a thread of its own (it connects to NATS there,
    /// retrying while NATS is away); `registry` is the hub's.
    pub(crate) fn start(
        config: &ClusterConfig,
        history: &crate::config::HistoryConfig,
        registry: &Arc<Registry>,
    ) -> Arc<Cluster> {
        let node_id = if config.node_id.is_empty() {
            format!("node-{:08x}", fastrand::u32(..))
        } else {
            config.node_id.clone()
        };
        let (outgoing, outgoing_rx) = mpsc::channel(config.max_pending);
        let (sequenced, sequenced_rx) = mpsc::channel(config.max_pending);
        let instance = format!("{node_id}~{:08x}", fastrand::u32(..));
        let shared = Arc::new(Shared {
            node_id,
            instance,
            subjects: Subjects::new(&config.subject_prefix),
            config: config.clone(),
            copies: CopyBounds {
                size: history.size,
                max_bytes: history.max_bytes,
            },
            registry: Arc::downgrade(registry),
            interest: Interest::default(),
            feeds: DashMap::new(),
            stats: Stats::default(),
            peers: Mutex::new(PeerTable::default()),
            draining: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            pending_bytes: AtomicUsize::new(0),
            followed: AtomicUsize::new(0),
            stream: watch::channel(None).0,
            outgoing,
        });
        super::connection::spawn(shared.clone(), outgoing_rx, sequenced_rx);
        Arc::new(Cluster { shared, sequenced })
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// This process on the wire: `node_id~boot`.
    pub(crate) fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// Whether the node is connected to NATS now.
    pub(crate) fn is_connected(&self) -> bool {
        self.shared.stats.state() == super::health::LinkState::Connected
    }

    /// Whether the node is draining (it publishes no presence leaves).
    pub(crate) fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// The node drains: its heartbeats say so from now on.
    pub(crate) fn start_draining(&self) {
        self.shared.draining.store(true, Ordering::Release);
    }

    /// `topic` has members on this node now (or no longer).
    pub(crate) fn set_members(&self, topic: &str, members: bool) {
        self.shared.interest.set_members(topic, members);
    }

    /// Sends a plain broadcast's frame (already delivered here) to the
    /// other nodes.
    pub(crate) fn publish_plain(&self, topic: &str, frame: &ByteString) {
        self.shared.send(Outgoing::Broadcast {
            topic: topic.to_owned(),
            frame: frame.clone(),
        });
    }

    /// Hands a broadcast on a recoverable topic to the stream: every node
    /// (this one too) delivers it once stored. `false` when the node's
    /// queue is full (counted).
    pub(crate) fn publish_sequenced(&self, topic: &str, event: &str, payload: &Value) -> bool {
        let bytes = topic.len() + event.len() + payload.to_string().len();
        if !self.shared.reserve(bytes) {
            self.shared.stats.dropped(Dropped::QueueFull);
            return false;
        }
        let job = SequencedJob {
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload: payload.clone(),
            bytes,
        };
        if self.sequenced.try_send(job).is_err() {
            self.shared.release(bytes);
            self.shared.stats.dropped(Dropped::QueueFull);
            return false;
        }
        true
    }

    /// Sends one of this node's presence changes (or states) to the others.
    pub(crate) fn publish_presence(&self, topic: &str, wire: &PresenceWire) {
        self.shared.send_presence(topic, wire);
    }

    /// Starts a join on `topic`: the topic is followed from now on, and the
    /// join may go on once [`FeedJoin::is_ready`].
    pub(crate) fn join_feed(&self, topic: &str) -> FeedJoin {
        let feed = self
            .shared
            .feed(topic, || self.shared.interest.add_pending(topic));
        FeedJoin {
            shared: self.shared.clone(),
            topic: topic.to_owned(),
            feed,
        }
    }

    /// This node's caught-up copy of `topic`, when it follows it.
    pub(crate) fn live_copy(&self, topic: &str) -> Option<Arc<Mutex<TopicLog>>> {
        let feed = self.shared.feeds.get(topic)?;
        let ready = *feed.ready.borrow();
        ready.then(|| feed.log.clone())
    }

    /// Reads `topic`'s history from the stream (any node answers for any
    /// topic).
    pub(crate) async fn read_history(
        &self,
        topic: &str,
        within: Duration,
    ) -> Result<Arc<Mutex<TopicLog>>, super::history_read::HistoryReadError> {
        super::history_read::read(&self.shared, topic, within).await
    }

    /// The `/health` section.
    pub(crate) fn health(&self) -> ClusterHealth {
        let peers = self
            .shared
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .view(Instant::now());
        ClusterHealth::read(
            &self.shared.node_id,
            &self.shared.instance,
            &self.shared.stats,
            peers,
            self.shared.followed.load(Ordering::Relaxed),
            self.shared.pending.load(Ordering::Relaxed),
        )
    }
}
