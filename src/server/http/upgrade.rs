//! The upgrade of an admitted request to a WebSocket: frames capped at
//! their header, the connection slot held exactly as long as the HTTP
//! connection, and the socket's halves as a session takes them.

use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::error::PayloadError;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::{future, SinkExt, Stream};

use crate::server::registry::{ConnectionSlot, SessionId};
use crate::server::service::HubService;
use crate::server::session::{InboundStream, SessionParts};
use crate::transport::frame_guard::GuardedPayload;
use crate::transport::outbox::OutboxLimits;
use crate::transport::{Message, SocketSink, TransportError};

/// A request body as actix-http boxes it.
type BoxedPayloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// An upgraded socket: the response to return, its two halves, and the
/// flag its frame guard sets when it refuses a frame.
pub(crate) type Upgraded = (HttpResponse, SocketSink, InboundStream, Arc<AtomicBool>);

/// Upgrades, selecting one of `protocols` when the client offers it, with
/// inbound frames over `max_frame_bytes` refused at their header. The slot
/// is freed when actix-http drops the response body, i.e. when the TCP
/// connection is really gone, not merely when the session stopped.
pub(crate) async fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
    protocols: &[&str],
    slot: ConnectionSlot,
    max_frame_bytes: usize,
) -> Result<Upgraded, actix_web::Error> {
    let oversized = Arc::new(AtomicBool::new(false));
    let body = guard_frames(req, body, max_frame_bytes, oversized.clone()).await?;
    let (response, session, stream) = actix_ws::handle_with_protocols(req, body, protocols)?;
    let response = response
        .map_body(|_, body| SlotBody { body, _slot: slot })
        .map_into_boxed_body();
    let sink = session
        .sink_map_err(|_: actix_ws::Closed| TransportError::Closed)
        .with(|message: Message| future::ready(Ok::<_, TransportError>(message.into_actix())));
    let stream = stream
        .max_frame_size(max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(max_frame_bytes);
    Ok((response, Box::pin(sink), Box::pin(stream), oversized))
}

/// A response body that holds a connection slot for as long as it lives.
struct SlotBody {
    body: BoxBody,
    _slot: ConnectionSlot,
}

impl MessageBody for SlotBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// `body` behind a frame guard of `limit` bytes (the frame limit is then
/// enforced at each header, as the bytes arrive); `oversized` is set when
/// it refuses.
async fn guard_frames(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
    oversized: Arc<AtomicBool>,
) -> Result<web::Payload, actix_web::Error> {
    let guarded: BoxedPayloadStream = Box::pin(GuardedPayload::new(body, limit, oversized));
    let mut payload = actix_web::dev::Payload::from(guarded);
    web::Payload::from_request(req, &mut payload).await
}

/// A session's parts for a socket of the hub, from its config.
pub(crate) fn session_parts(
    service: &HubService,
    sink: SocketSink,
    stream: InboundStream,
    id: SessionId,
    oversized: Arc<AtomicBool>,
) -> SessionParts {
    let config = service.config();
    SessionParts {
        sink,
        stream,
        id,
        registry: service.registry().clone(),
        stats: service.stats().clone(),
        idle_timeout: config.idle_timeout,
        limits: OutboxLimits {
            max_frames: config.max_outbound_frames,
            max_bytes: config.max_outbound_bytes,
        },
        oversized,
        inbound_rate: config.inbound_rate,
    }
}
