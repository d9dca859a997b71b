//! The envelope v1 producer of a connection: the actor that keeps data
//! until the hub acks it ([`actor`]) and the handle the application holds
//! ([`handle`]).

pub(crate) mod actor;
pub(crate) mod handle;
