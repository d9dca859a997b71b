//! The hub's WebSocket routes: the Phoenix endpoint and the ingest endpoint.
//!
//! Both make the checks of [`upgrade`](crate::server::http::upgrade) before upgrading; the
//! Phoenix endpoint first checks the protocol version (403).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::protocol::phoenix;
use crate::server::channel::SocketInfo;
use crate::server::http::upgrade::{admit, query_params, refused, session_parts, upgrade};
use crate::server::service::HubService;
use crate::server::session::ingest_socket::{IngestDeps, IngestSocket};
use crate::server::session::phoenix_socket::{PhoenixSocket, SocketDeps};
use crate::server::session::ServerSession;
use crate::server::stats::Refusal;

/// The subprotocol phoenix.js offers beside its token entry.
const PHOENIX_SUBPROTOCOL: &str = "phoenix";

/// actix-web handler for the Phoenix V2 WebSocket route.
pub(crate) async fn phoenix_socket(
    req: HttpRequest,
    body: web::Payload,
    service: web::Data<HubService>,
) -> HttpResponse {
    let params = match query_params(&req, &service) {
        Ok(params) => params,
        Err(refusal) => return refused(refusal),
    };
    let stats = service.stats();
    if params.get("vsn").map(String::as_str) != Some(phoenix::VSN) {
        stats.refused(Refusal::BadVersion);
        return refused(Refusal::BadVersion);
    }
    let token = params.get("token").map(String::as_str);
    let slot = match admit(&req, &service, token) {
        Ok(slot) => slot,
        Err(refusal) => return refused(refusal),
    };
    let limit = service.config().max_frame_bytes;
    let (response, session, stream, oversized) =
        match upgrade(&req, body, &[PHOENIX_SUBPROTOCOL], slot, limit).await {
            Ok(upgraded) => upgraded,
            Err(error) => return error.error_response(),
        };
    let config = service.config();
    let registry = service.registry().clone();
    let id = registry.next_session_id();
    let deps = SocketDeps {
        router: service.router().clone(),
        registry: registry.clone(),
        stats: stats.clone(),
        max_channels: config.max_channels_per_socket,
    };
    let info = SocketInfo {
        session_id: id,
        params,
    };
    ServerSession::start(
        session_parts(&service, session, stream, id, oversized),
        move |outbox, _, _| PhoenixSocket::new(info, deps, outbox),
    );
    response
}

/// actix-web handler for the envelope v1 ingest route.
pub(crate) async fn ingest_socket(
    req: HttpRequest,
    body: web::Payload,
    service: web::Data<HubService>,
) -> HttpResponse {
    let token = match query_params(&req, &service) {
        Ok(mut params) => params.remove("token"),
        Err(refusal) => return refused(refusal),
    };
    let slot = match admit(&req, &service, token.as_deref()) {
        Ok(slot) => slot,
        Err(refusal) => return refused(refusal),
    };
    // Admitted, so the credentials name a principal.
    let principal = service
        .credentials()
        .principal(&req, token.as_deref())
        .unwrap_or_else(|| "anonymous".to_owned());
    let limit = service.config().max_frame_bytes;
    let (response, session, stream, oversized) = match upgrade(&req, body, &[], slot, limit).await {
        Ok(upgraded) => upgraded,
        Err(error) => return error.error_response(),
    };
    let id = service.registry().next_session_id();
    let ingest = service.ingest();
    let deps = IngestDeps {
        queue: ingest.queue.clone(),
        admission: ingest.admission.clone(),
        registry: service.registry().clone(),
        stats: service.stats().clone(),
        outbox_frames: service.config().max_outbound_frames,
        bidirectional: service.bidirectional(),
        dedup: ingest.dedup.clone(),
        principal,
        gauge: ingest.gauge.clone(),
        idle_timeout: service.config().idle_timeout,
    };
    ServerSession::start(
        session_parts(&service, session, stream, id, oversized),
        move |outbox, gate, ctx| IngestSocket::new(id, deps, outbox, gate, ctx),
    );
    response
}
