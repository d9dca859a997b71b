//! The upgrade of an admitted request to a WebSocket: frames capped at
//! their header, the connection slot held exactly as long as the HTTP
//! connection, the read half as a session takes it, and the socket's
//! outbox as its response body (one hop from a push to the write buffer).

use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::error::PayloadError;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;

use crate::server::registry::{ConnectionSlot, SessionId};
use crate::server::service::HubService;
use crate::server::session::{InboundStream, Outgoing, SessionParts};
use crate::transport::frame_guard::GuardedPayload;
use crate::transport::outbox::{Outbox, OutboxBody, OutboxLimits};

/// A request body as actix-http boxes it.
type BoxedPayloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// An upgraded socket: the response to return, where its frames go, its
/// read half, and the flag its frame guard sets when it refuses a frame.
pub(crate) type Upgraded = (HttpResponse, Outgoing, InboundStream, Arc<AtomicBool>);

/// Upgrades, selecting one of `protocols` when the client offers it, with
/// inbound frames over `max_frame_bytes` refused at their header. The slot
/// is freed when actix-http drops the response body, i.e. when the TCP
/// connection is really gone, not merely when the session stopped.
pub(crate) async fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
    protocols: &[&str],
    slot: ConnectionSlot,
    service: &HubService,
) -> Result<Upgraded, actix_web::Error> {
    let max_frame_bytes = service.config().max_frame_bytes;
    let oversized = Arc::new(AtomicBool::new(false));
    let body = guard_frames(req, body, max_frame_bytes, oversized.clone()).await?;
    // actix-ws makes the handshake and reads; its own writing half (a
    // channel and the body emptying it) is not used.
    let (response, _unused_writer, stream) = actix_ws::handle_with_protocols(req, body, protocols)?;
    let (outbox, closer, queued) = Outbox::bounded(outbox_limits(service));
    let response = response
        .map_body(|_, read_signal| SocketBody {
            outbox: queued.into_body(),
            _read_signal: read_signal,
            _slot: slot,
        })
        .map_into_boxed_body();
    let stream = stream
        .max_frame_size(max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(max_frame_bytes);
    let outgoing = Outgoing::Outbox(outbox, closer);
    Ok((response, outgoing, Box::pin(stream), oversized))
}

/// The response body of a hub socket: its outbox, and what must live
/// exactly as long as the connection.
struct SocketBody {
    outbox: OutboxBody,
    /// actix-ws's body, never polled: dropping it tells the read half that
    /// the connection is gone.
    _read_signal: BoxBody,
    /// The connection slot.
    _slot: ConnectionSlot,
}

impl MessageBody for SocketBody {
    type Error = <OutboxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().outbox).poll_next(cx)
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

/// The bounds of a hub socket's outbox, from the hub's config.
fn outbox_limits(service: &HubService) -> OutboxLimits {
    let config = service.config();
    OutboxLimits {
        max_frames: config.max_outbound_frames,
        max_bytes: config.max_outbound_bytes,
    }
}

/// A session's parts for a socket of the hub, from its config.
pub(crate) fn session_parts(
    service: &HubService,
    outgoing: Outgoing,
    stream: InboundStream,
    id: SessionId,
    oversized: Arc<AtomicBool>,
) -> SessionParts {
    let config = service.config();
    SessionParts {
        outgoing,
        stream,
        id,
        registry: service.registry().clone(),
        stats: service.stats().clone(),
        idle_timeout: config.idle_timeout,
        limits: outbox_limits(service),
        oversized,
        inbound_rate: config.inbound_rate,
    }
}
