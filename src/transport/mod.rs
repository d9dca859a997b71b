//! Pieces both sides of a WebSocket share: the bounded outbound queue and
//! request/reply by id.

pub(crate) mod correlator;
pub(crate) mod frame_guard;
pub(crate) mod outbox;
pub(crate) mod pem;
pub(crate) mod read_gate;

pub use correlator::RequestError;
