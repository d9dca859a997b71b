//! The hub's HTTP side: the WebSocket routes and their checks before the
//! upgrade ([`endpoint`], [`upgrade`]), `GET /health`
//! ([`health`]) and where the routes are mounted ([`routes`]).

pub(crate) mod endpoint;
pub(crate) mod health;
pub(crate) mod routes;
pub(crate) mod upgrade;
