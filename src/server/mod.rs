//! The inbound side: a Phoenix Channels V2 hub inside actix-web.
//!
//! [`HubService`] mounts the endpoint in an app; [`serve::start`] runs it on a
//! server of its own. Each socket is a [`ServerSession`](session::ServerSession)
//! actor; membership lives in the shared [`Registry`](registry::Registry); apps
//! broadcast by messaging the [`Hub`].

pub mod auth;
pub mod channel;
pub mod endpoint;
pub mod history;
pub mod hub;
pub mod ingest_socket;
pub mod phoenix_socket;
pub mod registry;
pub mod serve;
pub mod service;
pub mod session;
pub mod snapshot;
pub mod stats;
pub mod upgrade;

pub use auth::Credentials;
pub use channel::{
    Channel, ChannelContext, ChannelFailure, ChannelRouter, Outcome, RoomChannel, SocketInfo,
};
pub use history::{History, Recovery, Resume};
pub use hub::{Broadcast, Drain, Hub};
pub use serve::{start, start_service, start_with, RunningHub, StartError};
pub use service::HubService;
pub use stats::{CloseCause, FrameProblem, HubStats, Refusal};
