//! The outbound side: connections the application dials and keeps alive.
//!
//! A [`Switchboard`] supervises any number of
//! connections. Each is three actors on the switchboard's arbiter: the
//! [`Connection`](connection::Connection) owns the socket, the
//! [`Subscription`](subscription::Subscription) owns the topics and the
//! handlers, the [`Correlator`](correlator::Correlator) owns the requests
//! waiting for replies. The application holds a
//! [`ConnectionHandle`].

pub mod aspect;
pub mod auth;
pub mod backoff;
pub mod channel_state;
pub mod config;
pub mod connection;
pub mod correlator;
pub mod dial_budget;
pub mod direct;
pub mod error;
pub mod events;
pub mod gauges;
pub mod handle;
pub mod link;
pub mod link_handle;
pub mod peers;
pub mod positions;
pub mod producer;
pub mod producer_handle;
pub mod recovery;
pub mod refs;
pub mod subscription;
pub mod switchboard;

pub use auth::{ClientAuth, TokenSource};
pub use backoff::ReconnectPolicy;
pub use config::{ConnectionConfig, WireProtocol};
pub use error::{DialError, OpenError, RequestError};
pub use events::{ConnectEvent, Status};
pub use handle::ConnectionHandle;
pub use link_handle::{ConnectionId, LinkHandle};
pub use producer_handle::ProducerHandle;
pub use subscription::Incoming;
pub use switchboard::{Close, List, Open, OpenProducer, Switchboard};
