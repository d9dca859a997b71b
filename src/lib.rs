//! # switchboard
//!
//! Supervised, typed WebSocket messaging for actix applications.
//!
//! This release holds the hub: a Phoenix Channels V2 server inside
//! actix-web that the official `phoenix` JavaScript client joins unchanged.
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use switchboard::config::Config;
//! use switchboard::server::{ChannelRouter, HubService};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = HubService::new(&Config::default(), ChannelRouter::rooms())
//!         .expect("secrets named in the config are set");
//!     HttpServer::new(move || App::new().configure(|cfg| hub.configure(cfg)))
//!         .bind("127.0.0.1:4000")?
//!         .run()
//!         .await
//! }
//! ```

#![warn(missing_docs)]

pub mod client;
pub mod commands;
pub mod config;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod protocol;
pub mod sequence;
pub mod server;
pub mod sink;
pub mod transport;
