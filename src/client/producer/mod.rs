//! The envelope v1 side of a connection: the actor that keeps data until
//! the hub acks it ([`actor`]), what it does with data the other end sends
//! ([`inbound`]), and the handle the application holds ([`handle`]).

pub(crate) mod actor;
pub(crate) mod handle;
pub(crate) mod inbound;
