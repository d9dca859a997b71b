//! The hub's HTTP side: the WebSocket routes and their checks before the
//! upgrade ([`endpoint`], [`upgrade`]), `GET /health`
//! ([`health`]), where the routes are mounted ([`routes`]), and the bound
//! on connections not upgraded yet ([`pending`]).

pub(crate) mod endpoint;
pub(crate) mod health;
pub(crate) mod pending;
pub(crate) mod routes;
pub(crate) mod upgrade;
