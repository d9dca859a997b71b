//! The default transport: awc over TCP, with rustls for `wss://`.
//!
//! Frames over the dial's limit are refused at their header; fragments are
//! joined (bounded as they arrive) so the connection sees whole messages.

use std::sync::{Arc, Mutex};

use awc::error::{ConnectError, SendRequestError, WsClientError, WsProtocolError};
use awc::ws::Frame;
use futures_util::{future, SinkExt, StreamExt};

use super::client_frames::ClientFrames;
use super::frame_guard::GuardedCodec;
use super::reassembly::{Broken, Reassembly, Whole};
use super::socket::{Close, DialRequest, Dialing, Message, Socket, Transport, TransportError};
use crate::client::tls::{client_config, handshake_error};
use crate::client::{DialError, DialErrorKind, TlsOptions};

/// Dials with awc: `ws://` over TCP, `wss://` over rustls with the
/// platform's roots and, optionally, a CA file of the application's.
///
/// Every [`ConnectionConfig`](crate::client::ConnectionConfig) without a
/// transport of its own uses one, built from its `tls` options.
#[derive(Debug, Default)]
pub struct AwcTransport {
    options: TlsOptions,
    /// Built at the first dial.
    tls: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl AwcTransport {
    /// A transport checking `wss://` servers as `options` say.
    pub fn new(options: TlsOptions) -> AwcTransport {
        AwcTransport {
            options,
            tls: Mutex::new(None),
        }
    }

    /// The TLS settings of every dial, built once; an unusable CA file is a
    /// TLS dial error (terminal until a dial succeeded).
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, DialError> {
        let mut cached = self
            .tls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tls) = cached.as_ref() {
            return Ok(tls.clone());
        }
        let tls = client_config(&self.options).map_err(|error| {
            DialError::new(DialErrorKind::Tls {
                reason: error.to_string(),
            })
        })?;
        *cached = Some(tls.clone());
        Ok(tls)
    }
}

impl Transport for AwcTransport {
    fn dial(&self, request: DialRequest) -> Dialing {
        let tls = self.tls();
        Box::pin(async move { connect(tls?, request).await })
    }
}

async fn connect(
    tls: Arc<rustls::ClientConfig>,
    request: DialRequest,
) -> Result<Socket, DialError> {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls))
        .timeout(request.connect_timeout)
        .finish();
    let limit = request.max_message_bytes;
    let mut ws = client.ws(request.url.as_str()).max_frame_size(limit);
    for (name, value) in &request.headers {
        ws = ws.header(name.as_str(), value.as_str());
    }
    if !request.subprotocols.is_empty() {
        ws = ws.protocols(&request.subprotocols);
    }
    let (_, framed) = ws.connect().await.map_err(classify)?;
    // Off awc's `Framed` and its two 8 KiB buffers, onto buffers of ours.
    let parts = framed.into_parts();
    let codec = GuardedCodec::new(parts.codec, limit);
    let (sink, stream) = ClientFrames::new(parts.io, codec, &parts.read_buf).split();
    let sink = sink
        .sink_map_err(|_: WsProtocolError| TransportError::Closed)
        .with(|message: Message| future::ready(Ok::<_, TransportError>(message.into_actix())));
    let mut reassembly = Reassembly::default();
    let stream =
        stream.filter_map(move |item| future::ready(inbound(item, &mut reassembly, limit)));
    Ok(Socket::new(sink, stream))
}

/// One frame read: a whole message, nothing yet (a fragment), or an error.
fn inbound(
    item: Result<Frame, WsProtocolError>,
    reassembly: &mut Reassembly,
    limit: usize,
) -> Option<Result<Message, TransportError>> {
    let whole = match item {
        Ok(Frame::Text(bytes)) => Whole::Text(bytes),
        Ok(Frame::Binary(bytes)) => Whole::Binary(bytes),
        Ok(Frame::Continuation(item)) => match reassembly.push(item, limit) {
            Ok(Some(whole)) => whole,
            Ok(None) => return None,
            Err(Broken::TooLarge) => return Some(Err(TransportError::TooLarge)),
            Err(Broken::NoFirstFragment) => {
                let why = "continuation without a first frame".to_owned();
                return Some(Err(TransportError::Protocol(why)));
            }
        },
        Ok(Frame::Ping(bytes)) => return Some(Ok(Message::Ping(bytes))),
        Ok(Frame::Pong(bytes)) => return Some(Ok(Message::Pong(bytes))),
        Ok(Frame::Close(reason)) => {
            return Some(Ok(Message::Close(reason.map(Close::from_actix))));
        }
        Err(WsProtocolError::Overflow) => return Some(Err(TransportError::TooLarge)),
        Err(error) => return Some(Err(TransportError::Protocol(error.to_string()))),
    };
    Some(match whole {
        Whole::Text(bytes) => bytestring::ByteString::try_from(bytes)
            .map(Message::Text)
            .map_err(|_| TransportError::InvalidText),
        Whole::Binary(bytes) => Ok(Message::Binary(bytes)),
    })
}

/// The HTTP client's error, in its words (awc's errors are not `Send`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ClientError(String);

fn classify(error: WsClientError) -> DialError {
    match error {
        WsClientError::InvalidResponseStatus(status) => DialError::new(DialErrorKind::Refused {
            status: status.as_u16(),
        }),
        WsClientError::SendRequest(SendRequestError::Connect(ConnectError::Io(io)))
            if tls_is_terminal(&io) =>
        {
            // The reason is the TLS layer's own words; nothing below it.
            DialError::new(DialErrorKind::Tls {
                reason: io.to_string(),
            })
        }
        other => DialError::caused_by(DialErrorKind::Connect, ClientError(other.to_string())),
    }
}

/// Whether a failed handshake failed for a reason a redial cannot change:
/// a certificate that is not trusted or not for this host, or a server that
/// supports nothing we do. Not a certificate outside its validity period (a
/// clock not set yet, a renewal on its way), nor an alert the server sent
/// (those can be passing).
fn tls_is_terminal(error: &std::io::Error) -> bool {
    use rustls::{CertificateError, Error};
    match handshake_error(error) {
        Some(Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        )) => false,
        Some(
            Error::InvalidCertificate(_)
            | Error::NoCertificatesPresented
            | Error::UnsupportedNameType
            | Error::PeerIncompatible(_),
        ) => true,
        _ => false,
    }
}
