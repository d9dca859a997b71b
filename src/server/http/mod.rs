//! The hub's HTTP side: the WebSocket routes ([`endpoint`]), the checks
//! before any socket opens ([`admission`]), the upgrade ([`upgrade`]),
//! `GET /health` ([`health`]), where the routes are mounted ([`routes`]),
//! and the bound on connections not upgraded yet ([`pending`]).

pub(crate) mod admission;
pub(crate) mod endpoint;
pub(crate) mod health;
pub(crate) mod pending;
pub(crate) mod routes;
pub(crate) mod upgrade;
