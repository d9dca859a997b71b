//! Several hubs as one, over NATS JetStream (`[cluster]`).
//!
//! A node keeps serving its own sockets as a single hub does, and shares
//! with the other nodes, through NATS:
//! - **plain broadcasts**: made on one node, delivered there at once and
//!   published once on the topic's subject; every other node that has
//!   members on the topic delivers the same frame ([`topic_task`]);
//! - **recoverable topics**: a broadcast is stored in the history stream
//!   first, under a compare-and-set on the topic's subject, so the topic has
//!   one sequence across the cluster ([`sequencer`]); every node, the one
//!   that made it too, delivers it once the stream republishes it, in the
//!   stream's order, reading back whatever it missed ([`feed`],
//!   [`topic_task`]);
//! - **presence**: every node's changes, numbered, and its whole state on
//!   request ([`crate::server::presence`]);
//! - **heartbeats**: which nodes are up ([`peers`]).
//!
//! A node subscribes only to the topics it has members on. Everything it
//! sends waits in bounded queues: what does not fit is counted and dropped;
//! a plain broadcast or presence change that cannot leave while NATS is
//! away is counted and dropped too, a recoverable broadcast waits (in the
//! same bound) until the stream takes it.

mod connection;
pub(crate) mod feed;
mod handle;
mod health;
mod history_read;
mod interest;
pub(crate) mod peers;
mod sequencer;
pub(crate) mod subject;
mod topic_task;
pub(crate) mod wire;

pub(crate) use handle::{Cluster, FeedJoin};
pub(crate) use health::ClusterHealth;
