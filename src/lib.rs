//! # switchboard
//!
//! Supervised, typed WebSocket messaging for actix applications.
//!
//! - [`server`]: a Phoenix Channels V2 hub inside actix-web that the
//!   official `phoenix` JavaScript client joins unchanged, with an envelope
//!   v1 ingest endpoint and recoverable topics (resume from a sequence).
//! - [`client`]: a [`Switchboard`](client::Switchboard) actor that keeps
//!   outbound connections alive: auth on every dial, heartbeats, reconnect
//!   with backoff, rejoin of every topic, correlated request/reply.
//! - [`ingest`] and [`sink`]: a bounded, backpressured queue in front of a
//!   [`Sink`](sink::Sink): an actor of the application, or NATS JetStream.
//! - [`sequence`]: durable per-channel sequences and positions.
//! - [`protocol`]: the wire formats; [`config`]: the TOML/JSON config.
//!
//! A hub on a free port, and a supervised connection that joins it:
//!
//! ```
//! use actix::Actor;
//! use serde_json::json;
//! use switchboard::client::{ConnectionConfig, Open, Switchboard};
//! use switchboard::config::Config;
//! use switchboard::server::HubService;
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut config = Config::default();
//!     config.server.listen = "127.0.0.1:0".into();
//!     let hub = HubService::builder(&config).start()?;
//!
//!     let board = Switchboard::default().start();
//!     let connection = board.send(Open(ConnectionConfig::new(&hub.socket_url()))).await??;
//!     connection.join("room:lobby", json!({})).await?;
//!     let reply = connection.push("room:lobby", "ping", json!({"n": 1})).await?;
//!     assert_eq!(reply.response, json!({"n": 1}));
//!
//!     connection.close().await;
//!     hub.shutdown().await;
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]
#![deny(unreachable_pub)]

pub mod client;
pub(crate) mod cluster;
pub mod config;
pub mod ingest;
pub(crate) mod metrics;
pub mod protocol;
pub(crate) mod report;
pub mod sequence;
pub mod server;
pub mod sink;
pub mod transport;

pub use metrics::install_prometheus_recorder;

/// The README's Rust examples, compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
