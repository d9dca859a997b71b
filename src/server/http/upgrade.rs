//! Checks made before any upgrade, shared by every endpoint of the hub:
//! origin (403), credentials (401), capacity (503). Nothing is upgraded
//! unless all pass, and the connection slot then lives exactly as long as
//! the HTTP connection.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;

use crate::server::origin::{origin_allowed, HubOrigin};
use crate::server::registry::{ConnectionSlot, SessionId};
use crate::server::service::HubService;
use crate::server::session::SessionParts;
use crate::server::stats::Refusal;
use crate::transport::frame_guard::GuardedPayload;
use crate::transport::outbox::OutboxLimits;

/// A request body as actix-http boxes it.
type BoxedPayloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// Refuses (431, counted) a request whose headers add up to more than
/// `server.max_header_bytes`: names, values, and 4 bytes of separators each.
pub(crate) fn headers_fit(req: &HttpRequest, service: &HubService) -> Result<(), Refusal> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > service.config().max_header_bytes {
        service.stats().refused(Refusal::HeadersTooLarge);
        return Err(Refusal::HeadersTooLarge);
    }
    Ok(())
}

/// The query parameters of an upgrade request, once its headers fit
/// `server.max_header_bytes` and its query string fits
/// `server.max_query_bytes` (checked first: the parameters are kept per
/// socket). A refusal is counted; a query that does not parse is empty.
pub(crate) fn query_params(
    req: &HttpRequest,
    service: &HubService,
) -> Result<HashMap<String, String>, Refusal> {
    headers_fit(req, service)?;
    if req.query_string().len() > service.config().max_query_bytes {
        service.stats().refused(Refusal::QueryTooLong);
        return Err(Refusal::QueryTooLong);
    }
    Ok(
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default(),
    )
}

/// Origin, credentials and capacity; a connection slot when all pass.
/// Every refusal is counted.
pub(crate) fn admit(
    req: &HttpRequest,
    service: &HubService,
    query_token: Option<&str>,
) -> Result<ConnectionSlot, Refusal> {
    let hub = match service.public_origin() {
        Some(public) => HubOrigin::Public(public.clone()),
        None => HubOrigin::Bound(req.app_config().local_addr()),
    };
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|origin| origin.to_str());
    let allowed = match origin {
        None => true,
        Some(Ok(origin)) => origin_allowed(Some(origin), &hub, &service.config().allowed_origins),
        Some(Err(_)) => false,
    };
    let refusal = if !allowed {
        Refusal::Origin
    } else if !service.credentials().admits(req, query_token) {
        Refusal::Unauthorized
    } else if let Some(slot) = service.registry().try_admit() {
        return Ok(slot);
    } else {
        Refusal::Capacity
    };
    service.stats().refused(refusal);
    Err(refusal)
}

/// The HTTP answer to a refused upgrade.
pub(crate) fn refused(refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::BadVersion => {
            HttpResponse::Forbidden().body("unsupported protocol version: use vsn=2.0.0")
        }
        Refusal::Origin => HttpResponse::Forbidden().body("origin not allowed"),
        Refusal::Unauthorized => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .body("missing or invalid credentials"),
        Refusal::Capacity => HttpResponse::ServiceUnavailable().body("too many connections"),
        Refusal::QueryTooLong => HttpResponse::UriTooLong().body("query string too long"),
        Refusal::HeadersTooLarge => {
            HttpResponse::build(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .body("request headers too large")
        }
        Refusal::PendingUpgrades => HttpResponse::ServiceUnavailable()
            .force_close()
            .body("too many connections without a request"),
    }
}

/// An upgraded socket: the response to return, its two halves, and the
/// flag its frame guard sets when it refuses a frame.
pub(crate) type Upgraded = (
    HttpResponse,
    actix_ws::Session,
    actix_ws::MessageStream,
    Arc<AtomicBool>,
);

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
    Ok((response, session, stream, oversized))
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

/// The transport half of a session's parts, from the hub's config.
pub(crate) fn session_parts(
    service: &HubService,
    session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    id: SessionId,
    oversized: Arc<AtomicBool>,
) -> SessionParts {
    let config = service.config();
    SessionParts {
        session,
        stream: stream
            .max_frame_size(config.max_frame_bytes)
            .aggregate_continuations()
            .max_continuation_size(config.max_frame_bytes),
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
