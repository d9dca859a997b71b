//! Pieces both sides of a WebSocket share: the bounded outbound queue.

pub(crate) mod outbox;
