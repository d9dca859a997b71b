//! The outbound side: connections the application dials and keeps alive.
//!
//! A [`Switchboard`] actor supervises any number of connections. [`Open`]
//! dials a Phoenix Channels connection and answers a [`PhoenixHandle`]
//! (join, push, send, publish); [`OpenProducer`] dials an envelope v1
//! ingest connection and answers a [`ProducerHandle`]. Both hand out the
//! protocol-independent [`ConnectionHandle`] (status, events, close,
//! restart) through `Deref`. Behind each handle, actors on one of the
//! switchboard's arbiters (one per core by default, see
//! [`Switchboard::builder`]) own the socket, the topics and the requests
//! waiting for replies; a connection that drops is redialled with backoff
//! and its topics rejoined.
//!
//! ```no_run
//! use actix::Actor;
//! use serde_json::json;
//! use switchboard::client::{ConnectionConfig, Open, Switchboard};
//!
//! #[actix::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let board = Switchboard::default().start();
//!     let url = "ws://127.0.0.1:4000/socket/websocket";
//!     let lobby = board.send(Open(ConnectionConfig::new(url))).await??;
//!     lobby.join("room:lobby", json!({})).await?;
//!     let reply = lobby.push("room:lobby", "ping", json!({"n": 1})).await?;
//!     println!("{reply:?}");
//!     Ok(())
//! }
//! ```

pub(crate) mod arbiters;
pub(crate) mod assembly;
pub(crate) mod auth;
pub(crate) mod backoff;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod failure;
pub(crate) mod gauges;
pub(crate) mod handle;
pub(crate) mod link;
pub(crate) mod peers;
pub(crate) mod phoenix;
pub(crate) mod positions;
pub(crate) mod producer;
pub(crate) mod refs;
pub(crate) mod switchboard;
pub(crate) mod switchboard_builder;
pub(crate) mod tls;

pub use crate::transport::RequestError;
pub use auth::{ClientAuth, TokenSource};
pub use backoff::ReconnectPolicy;
pub use config::{ConnectionConfig, WireProtocol};
pub use error::{
    ConnectionClosed, DialError, DialErrorKind, HistoryError, JoinError, OpenError, ProduceError,
    PublishError, PushError, SendError,
};
pub use events::{ConnectEvent, ConnectionStatus};
pub use handle::{ConnectionHandle, ConnectionId};
pub use phoenix::aspect::SchemaCheck;
pub use phoenix::handle::PhoenixHandle;
pub use phoenix::presence::{PresenceChange, PresenceList, TopicPresence};
pub use phoenix::subscription::Incoming;
pub use producer::handle::ProducerHandle;
pub use producer::inbound::UpstreamData;
pub use switchboard::{Close, Directory, List, Open, OpenProducer, Switchboard};
pub use switchboard_builder::SwitchboardBuilder;
pub use tls::TlsOptions;
