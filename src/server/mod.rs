//! The inbound side: a Phoenix Channels V2 hub inside actix-web.
//!
//! [`HubService::builder`] puts a hub together from a
//! [`Config`](crate::config::Config): the [`ChannelRouter`] that maps topics
//! to [`Channel`]s, the [`Credentials`] every socket must present, and the
//! [`Sink`](crate::sink::Sink) ingested data goes to. Mount the built
//! [`HubService`] in an app with [`HubService::configure`], or let
//! [`HubBuilder::start`] serve it on an HTTP server of its own
//! ([`RunningHub`]). Apps broadcast with [`HubService::broadcast`] or by
//! messaging the [`Hub`] actor.

pub(crate) mod auth;
pub(crate) mod builder;
pub(crate) mod channel;
pub(crate) mod history;
pub(crate) mod http;
pub(crate) mod hub;
pub(crate) mod longpoll;
pub(crate) mod member;
pub(crate) mod memory_socket;
pub(crate) mod origin;
pub(crate) mod origin_warnings;
pub(crate) mod presence;
pub(crate) mod pull;
pub(crate) mod registry;
pub(crate) mod serve;
pub(crate) mod service;
pub(crate) mod session;
pub(crate) mod snapshot;
pub(crate) mod stats;
pub(crate) mod tls;

pub use crate::transport::RequestError;
pub use auth::{Credentials, MissingSecret};
pub use builder::{BuildError, HubBuilder};
pub use channel::{
    Channel, ChannelContext, ChannelFailure, ChannelRouter, Outcome, PresenceRoom, RoomChannel,
    SocketInfo,
};
pub use hub::{Broadcast, DrainSockets, Hub};
pub use member::TopicMessage;
pub use presence::PresenceRefusal;
pub use registry::SessionId;
pub use serve::{RunningHub, StartError};
pub use service::HubService;
pub use stats::{CloseCause, FrameProblem, HubStats, Refusal, Throttle};
pub use tls::TlsError;
