//! The hub's HTTP side: the WebSocket routes ([`endpoint`]), the checks
//! before any socket opens ([`admission`]), the upgrade ([`upgrade`]),
//! `GET /health` ([`health`]), `GET /history/{topic}` and
//! `GET /presence/{topic}` ([`topic_reads`]),
//! the live page at `server.dashboard` ([`dashboard`]), where the routes
//! are mounted ([`routes`]), and the bound on connections not upgraded yet
//! ([`pending`]).

pub(crate) mod admission;
pub(crate) mod dashboard;
pub(crate) mod endpoint;
pub(crate) mod health;
pub(crate) mod longpoll;
pub(crate) mod pending;
pub(crate) mod routes;
pub(crate) mod topic_reads;
pub(crate) mod upgrade;
