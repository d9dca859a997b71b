//! What carries a connection's messages, and the pieces both sides of a
//! WebSocket share.
//!
//! A client connection dials through a [`Transport`]: [`AwcTransport`]
//! (TCP and TLS) unless its config names another, such as a
//! [`MemoryTransport`] straight into a hub of the same process. Inside, the
//! bounded outbound queue and request/reply by id serve hub and client alike.

mod awc_client;
mod client_frames;
pub(crate) mod correlator;
pub(crate) mod frame_guard;
mod memory;
pub(crate) mod outbox;
pub(crate) mod pem;
pub(crate) mod read_gate;
mod reassembly;
mod socket;

pub use awc_client::AwcTransport;
pub use correlator::RequestError;
pub(crate) use memory::message_len;
pub use memory::MemoryTransport;
pub use socket::{
    Close, DialRequest, Dialing, Message, Socket, SocketSink, SocketStream, Transport,
    TransportError,
};
