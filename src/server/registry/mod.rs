//! The hub's shared directory: topic membership, open sockets, the connection
//! count. Sessions and actix-web handlers read and update it without an actor
//! round trip; the [`Hub`](super::hub::Hub) actor wraps it for message-based use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use actix::{Message, Recipient};
use bytestring::ByteString;
use dashmap::DashMap;
use serde_json::Value;

use super::history::{self, History};
use super::member::{Carried, Delivery, Member};
use super::presence::Presence;
use crate::cluster::Cluster;
use crate::config::PresenceConfig;
use crate::protocol::phoenix;
use crate::transport::outbox::Outbox;

/// Identifies one socket for the life of the hub.
pub type SessionId = u64;

/// Asks a session to close its socket with the given code.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub(crate) struct CloseSession {
    /// RFC 6455 close code.
    pub code: u16,
    /// Short human-readable reason.
    pub reason: &'static str,
}

/// A request from the hub to an ingest sender, answered by its reply envelope.
#[derive(Debug, Message)]
#[rtype(result = "Result<crate::protocol::envelope::Envelope, crate::transport::RequestError>")]
pub(crate) struct SenderRequest {
    /// Method name.
    pub method: String,
    /// Parameters.
    pub params: Value,
}

/// Directory shared by every session of one hub.
pub(crate) struct Registry {
    topics: DashMap<String, Members>,
    sessions: DashMap<SessionId, Recipient<CloseSession>>,
    senders: DashMap<SessionId, Recipient<SenderRequest>>,
    connections: AtomicUsize,
    max_connections: usize,
    next_session: AtomicU64,
    draining: AtomicBool,
    history: Option<History>,
    presence: Presence,
    /// The cluster this hub is a node of (`[cluster]`).
    cluster: OnceLock<Arc<Cluster>>,
}

mod cluster;
mod members;
mod raw;
mod resume;

pub(crate) use members::Members;

/// One counted slot of `max_connections`; frees itself when dropped.
pub(crate) struct ConnectionSlot {
    registry: Arc<Registry>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.registry.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    /// An empty directory that admits at most `max_connections` sockets.
    pub(crate) fn new(max_connections: usize) -> Registry {
        Registry {
            topics: DashMap::new(),
            sessions: DashMap::new(),
            senders: DashMap::new(),
            connections: AtomicUsize::new(0),
            max_connections,
            next_session: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            history: None,
            presence: Presence::new(&PresenceConfig::default()),
            cluster: OnceLock::new(),
        }
    }

    /// Keeps a replayable history for the topics `history` covers.
    pub(crate) fn with_history(mut self, history: History) -> Registry {
        self.history = Some(history);
        self
    }

    /// Tracks presence within `config`'s bounds.
    pub(crate) fn with_presence(mut self, config: &PresenceConfig) -> Registry {
        self.presence = Presence::new(config);
        self
    }

    /// Who is on each topic.
    pub(crate) fn presence(&self) -> &Presence {
        &self.presence
    }

    /// The history, when `topic` is recoverable.
    pub(crate) fn history_for(&self, topic: &str) -> Option<&History> {
        self.history
            .as_ref()
            .filter(|history| history.covers(topic))
    }

    /// Takes a connection slot, or `None` when full or draining.
    pub(crate) fn try_admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        if self.is_draining() {
            return None;
        }
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max_connections).then_some(open + 1)
            })
            .ok()
            .map(|_| ConnectionSlot {
                registry: self.clone(),
            })
    }

    /// A fresh session id.
    pub(crate) fn next_session_id(&self) -> SessionId {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Records an open session so shutdown can reach it.
    pub(crate) fn add_session(&self, id: SessionId, close: Recipient<CloseSession>) {
        self.sessions.insert(id, close);
    }

    /// Records an ingest sender the hub can send requests to.
    pub(crate) fn add_sender(&self, id: SessionId, requests: Recipient<SenderRequest>) {
        self.senders.insert(id, requests);
    }

    /// The ingest senders connected now.
    pub(crate) fn senders(&self) -> Vec<SessionId> {
        self.senders.iter().map(|entry| *entry.key()).collect()
    }

    /// Where requests to ingest sender `id` go.
    pub(crate) fn sender(&self, id: SessionId) -> Option<Recipient<SenderRequest>> {
        self.senders.get(&id).map(|entry| entry.value().clone())
    }

    /// Forgets a session and every topic it had joined.
    pub(crate) fn remove_session<'a>(
        &self,
        id: SessionId,
        topics: impl IntoIterator<Item = &'a str>,
    ) {
        self.sessions.remove(&id);
        self.senders.remove(&id);
        for topic in topics {
            self.unsubscribe(topic, id);
        }
    }

    /// Adds a socket to a topic.
    pub(crate) fn subscribe(&self, topic: &str, id: SessionId, outbox: Outbox) {
        self.add_member(topic, id, Member::Socket(outbox));
    }

    /// Adds any member to a topic. In a cluster, the topic's first member
    /// makes the node follow it.
    pub(crate) fn add_member(&self, topic: &str, id: SessionId, member: Member) {
        match self.topics.entry(topic.to_owned()) {
            dashmap::Entry::Occupied(mut members) => {
                members.get_mut().insert(id, member);
            }
            dashmap::Entry::Vacant(empty) => {
                // Told under the entry's lock: a leave of the last member and
                // this join reach the cluster in the order they happened.
                if let Some(cluster) = self.cluster() {
                    cluster.set_members(topic, true);
                }
                empty.insert(Members {
                    members: HashMap::from([(id, member)]),
                    sent: AtomicU64::new(0),
                });
            }
        }
    }

    /// Removes a member from a topic, untracking its presence there; the
    /// topic goes when its last member does.
    pub(crate) fn unsubscribe(&self, topic: &str, id: SessionId) {
        self.remove_member(topic, id);
        self.presence.untrack(self, topic, id, None);
    }

    /// Removes a member from a topic's members (nothing else).
    fn remove_member(&self, topic: &str, id: SessionId) {
        if let dashmap::Entry::Occupied(mut members) = self.topics.entry(topic.to_owned()) {
            members.get_mut().remove(&id);
            if members.get().is_empty() {
                // Under the entry's lock, as in `add_member`.
                if let Some(cluster) = self.cluster() {
                    cluster.set_members(topic, false);
                }
                members.remove();
            }
        }
    }

    /// Sends `[null, null, topic, event, payload]` to every member as it
    /// is: never sequenced, reserved names allowed (the hub's own
    /// `presence_diff`).
    pub(crate) fn fan_out(&self, topic: &str, event: &str, payload: &Value) -> usize {
        self.send_unsequenced(topic, event, payload, None)
    }

    /// Encodes `[null, null, topic, event, payload]` once and hands it to
    /// every member but `except`.
    fn send_unsequenced(
        &self,
        topic: &str,
        event: &str,
        payload: &Value,
        except: Option<SessionId>,
    ) -> usize {
        if !self.topics.contains_key(topic) {
            return 0;
        }
        let frame = ByteString::from(phoenix::encode_parts(None, None, topic, event, payload));
        self.deliver_plain(topic, event, Carried::Value(payload), &frame, except)
    }

    /// Hands `frame` (`[null, null, topic, event, payload]`, encoded) to
    /// every member but `except`.
    fn deliver_plain(
        &self,
        topic: &str,
        event: &str,
        payload: Carried<'_>,
        frame: &ByteString,
        except: Option<SessionId>,
    ) -> usize {
        let Some(members) = self.topics.get(topic) else {
            return 0;
        };
        let delivery = Delivery {
            topic,
            event,
            payload,
            sequence: None,
            frame,
        };
        self.deliver(members, &delivery, except)
    }

    /// Sends `[null, null, topic, event, payload]` to every member except
    /// `except`, encoding it once. Returns how many members it was queued for;
    /// members whose outbox is full are skipped (and closed by their session).
    /// On a recoverable topic the payload is sequenced and kept first.
    pub(crate) fn broadcast(
        &self,
        topic: &str,
        event: &str,
        payload: &Value,
        except: Option<SessionId>,
    ) -> usize {
        if phoenix::is_reserved_event(event) {
            refuse_reserved(topic, event, "broadcast");
            return 0;
        }
        if let Some(cluster) = self.cluster() {
            return self.broadcast_in_cluster(cluster, topic, event, payload, except);
        }
        if let Some(history) = self.history_for(topic) {
            let log = history.log(topic, |topic| self.member_count(topic) > 0);
            let mut log = history::lock(&log);
            history.touch(&mut log);
            let (frame, stamped) = log.append_stamped(topic, event, payload);
            // Queued while the log is locked: a joiner's replay cannot
            // interleave. Every member gets every sequence, the sender too
            // (`except` is ignored): a hole would only make it rejoin.
            let Some(members) = self.topics.get(topic) else {
                return 0;
            };
            let delivery = Delivery {
                topic,
                event,
                payload: Carried::Value(&stamped),
                sequence: Some(log.top()),
                frame: &frame,
            };
            return self.deliver(members, &delivery, None);
        }
        self.send_unsequenced(topic, event, payload, except)
    }

    /// Hands `delivery` to every member but `except`; answers how many took
    /// it. An actor that could not is dropped from the topic (counted); a
    /// socket whose outbox is full is closed by its own session.
    fn deliver(
        &self,
        members: dashmap::mapref::one::Ref<'_, String, Members>,
        delivery: &Delivery<'_>,
        except: Option<SessionId>,
    ) -> usize {
        members.sent.fetch_add(1, Ordering::Relaxed);
        let mut taken = 0;
        let mut dropped = Vec::new();
        for (id, member) in members.iter().filter(|(id, _)| Some(**id) != except) {
            if member.deliver(delivery) {
                taken += 1;
            } else if member.is_actor() {
                dropped.push(*id);
            }
        }
        drop(members);
        for id in dropped {
            metrics::counter!("switchboard_hub_actor_members_dropped_total").increment(1);
            tracing::warn!(
                topic = delivery.topic,
                id,
                "actor member dropped: its mailbox is full or closed"
            );
            // Membership only: an actor is never tracked for presence, and
            // this may run under a topic's presence or history lock.
            self.remove_member(delivery.topic, id);
        }
        taken
    }

    /// Sockets open now.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Topics with at least one member.
    pub(crate) fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// Members of `topic` now.
    pub(crate) fn member_count(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, |members| members.len())
    }

    /// Marks the hub as draining: new sockets are refused from now on.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the hub is shutting down.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The close handles of every open session, for a drain.
    pub(crate) fn session_handles(&self) -> Vec<Recipient<CloseSession>> {
        self.sessions
            .iter()
            .map(|entry| entry.value().clone())
            .collect()
    }
}

/// A broadcast or push of a reserved event name (it would reach phoenix.js
/// as its channel's own lifecycle): refused, counted and logged.
pub(crate) fn refuse_reserved(topic: &str, event: &str, path: &'static str) {
    metrics::counter!("switchboard_reserved_events_refused_total", "path" => path).increment(1);
    tracing::warn!(topic, event, path, "refused to send a reserved event name");
}
