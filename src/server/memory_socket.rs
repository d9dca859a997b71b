//! Sockets that reach the hub through a
//! [`MemoryTransport`](crate::transport::MemoryTransport): admitted by the
//! same checks as an upgrade and served by the same sessions.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Uri;
use actix_ws::{AggregatedMessage, ProtocolError};
use futures_util::StreamExt;

use crate::client::{DialError, DialErrorKind};
use crate::server::http::admission::{admit_ingest, admit_phoenix, refused, Asking};
use crate::server::http::endpoint::{start_ingest, start_phoenix};
use crate::server::origin::HubOrigin;
use crate::server::service::HubService;
use crate::server::session::{InboundStream, Outgoing};
use crate::transport::{Close, DialRequest, Message, Socket, TransportError};

impl HubService {
    /// Opens the hub's end of an in-memory socket asked for by `request`:
    /// `hub_end` carries what the client sends and takes what the session
    /// writes. A refusal is the HTTP status an upgrade would have had.
    pub(crate) fn open_in_memory(
        &self,
        request: &DialRequest,
        hub_end: Socket,
    ) -> Result<(), DialError> {
        let uri: Uri = request.url.parse().map_err(|error| {
            DialError::new(DialErrorKind::Url {
                reason: format!("{}: {error}", request.url),
            })
        })?;
        let headers = header_map(request)?;
        let asking = Asking {
            headers: &headers,
            query: uri.query().unwrap_or(""),
            hub: HubOrigin::InProcess,
        };
        let config = self.config();
        let phoenix = uri.path() == config.path;
        if !phoenix && uri.path() != config.ingest_path {
            return Err(DialError::new(DialErrorKind::Refused { status: 404 }));
        }
        let admitted = if phoenix {
            admit_phoenix(&asking, self)
        } else {
            admit_ingest(&asking, self)
        }
        .map_err(|refusal| {
            let status = refused(refusal).status().as_u16();
            DialError::new(DialErrorKind::Refused { status })
        })?;
        let limit = config.max_frame_bytes;
        let slot = admitted.slot;
        let stream: InboundStream = Box::pin(hub_end.stream.map(move |item| {
            // The slot is held for as long as the session reads.
            let _open = &slot;
            inbound(item, limit)
        }));
        let oversized = Arc::new(AtomicBool::new(false));
        if phoenix {
            let principal = admitted.principal;
            start_phoenix(
                self,
                admitted.params,
                principal,
                Outgoing::Sink(hub_end.sink),
                stream,
                oversized,
            );
        } else {
            let outgoing = Outgoing::Sink(hub_end.sink);
            start_ingest(self, admitted.principal, outgoing, stream, oversized);
        }
        Ok(())
    }
}

/// The request's headers, as an upgrade would carry them; a header that
/// could not be sent over HTTP is a URL-level error (nothing can fix it).
fn header_map(request: &DialRequest) -> Result<HeaderMap, DialError> {
    let mut headers = HeaderMap::new();
    let invalid = |name: &str| {
        DialError::new(DialErrorKind::Url {
            reason: format!("header {name} cannot be sent"),
        })
    };
    for (name, value) in &request.headers {
        let key = HeaderName::try_from(name.as_str()).map_err(|_| invalid(name))?;
        let value = HeaderValue::try_from(value.as_str()).map_err(|_| invalid(name))?;
        headers.append(key, value);
    }
    if !request.subprotocols.is_empty() {
        let offered = HeaderValue::try_from(request.subprotocols.join(", "))
            .map_err(|_| invalid("Sec-WebSocket-Protocol"))?;
        headers.append(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL, offered);
    }
    Ok(headers)
}

/// One message from the client, as the session reads it from an upgraded
/// socket (a message past the frame limit refused as such).
fn inbound(
    item: Result<Message, TransportError>,
    limit: usize,
) -> Result<AggregatedMessage, ProtocolError> {
    let message = item.map_err(|error| ProtocolError::Io(std::io::Error::other(error)))?;
    if crate::transport::message_len(&message) > limit {
        return Err(ProtocolError::Overflow);
    }
    Ok(match message {
        Message::Text(text) => AggregatedMessage::Text(text),
        Message::Binary(bytes) => AggregatedMessage::Binary(bytes),
        Message::Ping(bytes) => AggregatedMessage::Ping(bytes),
        Message::Pong(bytes) => AggregatedMessage::Pong(bytes),
        Message::Close(close) => AggregatedMessage::Close(close.map(Close::into_actix)),
    })
}
