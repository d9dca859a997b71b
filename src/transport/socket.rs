//! What a client connection needs from a WebSocket, whatever carries it:
//! a dial, then a stream and a sink of whole messages.
//!
//! Control frames and fragmentation are handled below this line: a
//! [`Transport`] answers nothing on its own, joins fragments into whole
//! messages (refusing one past the request's limit as it grows), and ends
//! the stream without a [`Message::Close`] when the connection is lost
//! without a close frame (the WebSocket code 1006).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use futures_util::{Sink, Stream};

use crate::client::DialError;

/// One whole WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A ping; the connection answers it.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame, with its code and reason when it has them.
    Close(Option<Close>),
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The close code (RFC 6455 §7.4), e.g. 1000.
    pub code: u16,
    /// The reason, possibly empty.
    pub reason: String,
}

impl Message {
    /// The same message in actix-http's terms (awc and actix-ws use them).
    pub(crate) fn into_actix(self) -> actix_ws::Message {
        match self {
            Message::Text(text) => actix_ws::Message::Text(text),
            Message::Binary(bytes) => actix_ws::Message::Binary(bytes),
            Message::Ping(bytes) => actix_ws::Message::Ping(bytes),
            Message::Pong(bytes) => actix_ws::Message::Pong(bytes),
            Message::Close(close) => actix_ws::Message::Close(close.map(Close::into_actix)),
        }
    }
}

impl Close {
    /// The same close in actix-http's terms.
    pub(crate) fn into_actix(self) -> actix_ws::CloseReason {
        actix_ws::CloseReason {
            code: self.code.into(),
            description: Some(self.reason).filter(|reason| !reason.is_empty()),
        }
    }

    /// A close given in actix-http's terms.
    pub(crate) fn from_actix(reason: actix_ws::CloseReason) -> Close {
        Close {
            code: reason.code.into(),
            reason: reason.description.unwrap_or_default(),
        }
    }
}

/// Why reading or writing a socket failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A message larger than the dial's `max_message_bytes`: refused before
    /// it was read whole.
    #[error("message larger than the limit")]
    TooLarge,
    /// A text message that is not UTF-8; the socket stays usable.
    #[error("text message is not valid UTF-8")]
    InvalidText,
    /// The peer broke the WebSocket protocol.
    #[error("websocket protocol error: {0}")]
    Protocol(String),
    /// The socket is closed: nothing more can be written.
    #[error("socket closed")]
    Closed,
}

/// The write half of a socket: whole messages.
pub type SocketSink = Pin<Box<dyn Sink<Message, Error = TransportError>>>;

/// The read half of a socket: whole messages, ending when the socket is gone.
pub type SocketStream = Pin<Box<dyn Stream<Item = Result<Message, TransportError>>>>;

/// A dialled socket.
pub struct Socket {
    /// Where messages to the peer go.
    pub sink: SocketSink,
    /// What the peer sends.
    pub stream: SocketStream,
}

impl Socket {
    /// A socket of any sink and stream of whole messages.
    pub fn new<Si, St>(sink: Si, stream: St) -> Socket
    where
        Si: Sink<Message, Error = TransportError> + 'static,
        St: Stream<Item = Result<Message, TransportError>> + 'static,
    {
        Socket {
            sink: Box::pin(sink),
            stream: Box::pin(stream),
        }
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").finish_non_exhaustive()
    }
}

/// One dial: where, with which headers and subprotocols, within which limits.
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// The URL with this dial's query parameters.
    pub url: String,
    /// Request headers (the credential's `Authorization`, for one).
    pub headers: Vec<(String, String)>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`.
    pub subprotocols: Vec<String>,
    /// Largest inbound message; a larger one is [`TransportError::TooLarge`].
    pub max_message_bytes: usize,
    /// How long the connect and the handshake may take.
    pub connect_timeout: Duration,
}

impl DialRequest {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The future of a dial. Not `Send`: it runs on the connection's arbiter.
pub type Dialing = Pin<Box<dyn Future<Output = Result<Socket, DialError>>>>;

/// Something that dials WebSockets: the awc client by default
/// ([`AwcTransport`](crate::transport::AwcTransport)), or the in-process
/// [`MemoryTransport`](crate::transport::MemoryTransport).
///
/// The connection that uses it keeps the heartbeat, the reconnects and the
/// protocol; a transport only dials and carries whole messages.
pub trait Transport: Send + Sync + 'static {
    /// Opens one socket. Errors say whether a redial can help through
    /// their [`DialErrorKind`](crate::client::DialErrorKind).
    fn dial(&self, request: DialRequest) -> Dialing;
}
