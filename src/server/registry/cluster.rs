//! The directory as a cluster node uses it: broadcasts that reach the other
//! nodes, and frames from them delivered to the members here.

use std::sync::Arc;

use bytestring::ByteString;
use serde_json::Value;

use super::{Registry, SessionId};
use crate::cluster::Cluster;
use crate::protocol::phoenix::{self, Frame};
use crate::server::member::{Carried, Delivery};

impl Registry {
    /// Makes the hub a node of `cluster` (once). Session ids then start
    /// from a number drawn from the node's instance (its id and this
    /// start), so the default presence key (`socket:<id>`) of two sockets
    /// on two nodes, or on one node before and after a restart, differs.
    pub(crate) fn set_cluster(&self, cluster: Arc<Cluster>) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(cluster.instance(), &mut hasher);
        let base = (std::hash::Hasher::finish(&hasher) & 0xf_ffff) << 32; // below 2^53: exact in JSON
        self.next_session
            .fetch_max(base + 1, std::sync::atomic::Ordering::Relaxed);
        let _ = self.cluster.set(cluster);
    }

    /// The cluster this hub is a node of.
    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// A broadcast on a cluster node. A plain one reaches the members here
    /// at once and goes to the other nodes once, encoded; one on a
    /// recoverable topic goes to the history stream, and reaches every
    /// node's members (these too) once stored and sequenced. Answers the
    /// members here.
    pub(super) fn broadcast_in_cluster(
        &self,
        cluster: &Cluster,
        topic: &str,
        event: &str,
        payload: &Value,
        except: Option<SessionId>,
    ) -> usize {
        if self.history_for(topic).is_some() {
            if !cluster.publish_sequenced(topic, event, payload) {
                return 0;
            }
            return self.member_count(topic);
        }
        let frame = ByteString::from(phoenix::encode_parts(None, None, topic, event, payload));
        let taken = self.deliver_plain(topic, event, Carried::Value(payload), &frame, except);
        cluster.publish_plain(topic, &frame);
        taken
    }

    /// Sends `[null, null, topic, event, payload]` to the members on this
    /// node only, as a hub without a cluster does.
    pub(crate) fn broadcast_local(&self, topic: &str, event: &str, payload: &Value) -> usize {
        if phoenix::is_reserved_event(event) {
            super::refuse_reserved(topic, event, "broadcast");
            return 0;
        }
        self.send_unsequenced(topic, event, payload, None)
    }

    /// The page of `topic`'s history `query` asks for, read from `log`.
    pub(crate) fn page_of(
        &self,
        topic: &str,
        log: &std::sync::Mutex<crate::server::history::TopicLog>,
        query: &crate::protocol::history::HistoryQuery,
    ) -> Option<crate::protocol::history::HistoryPage> {
        let history = self.history_for(topic)?;
        let selected = history.select(&crate::server::history::lock(log), query);
        Some(selected.into_page())
    }

    /// Hands a frame made on another node (or stored in the history
    /// stream) to every member here. An actor member gets it decoded.
    pub(crate) fn deliver_encoded(
        &self,
        topic: &str,
        frame: &ByteString,
        sequence: Option<u64>,
    ) -> usize {
        let Some(members) = self.topics.get(topic) else {
            return 0;
        };
        let has_actors = members.values().any(|member| member.is_actor());
        let decoded = has_actors
            .then(|| Frame::decode(frame))
            .and_then(Result::ok);
        if has_actors && decoded.is_none() {
            // Not a frame: nobody here gets it.
            metrics::counter!("switchboard_cluster_dropped_total", "reason" => "malformed")
                .increment(1);
            return 0;
        }
        let (event, payload) = match &decoded {
            Some(frame) => (frame.event.as_str(), Carried::Raw(&frame.payload)),
            None => ("", Carried::Value(&Value::Null)),
        };
        let delivery = Delivery {
            topic,
            event,
            payload,
            sequence,
            frame,
        };
        self.deliver(members, &delivery, None)
    }
}
