//! The Phoenix Channels engine of a connection: its topics and their
//! lifecycle ([`subscription`], [`channel_state`]), resume from a sequence
//! ([`recovery`]), typed aspect handlers ([`aspect`]), the direct send path
//! ([`direct`]) and the handle the application holds ([`handle`]).

pub(crate) mod aspect;
pub(crate) mod channel_state;
pub(crate) mod direct;
pub(crate) mod handle;
pub(crate) mod presence;
pub(crate) mod recovery;
pub(crate) mod subscription;
