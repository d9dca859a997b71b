//! The hub's WebSocket routes: the Phoenix endpoint and the ingest endpoint,
//! and the start of the session behind each socket they admit (TCP or
//! in-memory alike).
//!
//! Both make the checks of [`admission`](crate::server::http::admission)
//! before upgrading.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::server::channel::SocketInfo;
use crate::server::http::admission::{admit_ingest, admit_phoenix, refused, Asking};
use crate::server::http::upgrade::{session_parts, upgrade};
use crate::server::service::HubService;
use crate::server::session::ingest_socket::{IngestDeps, IngestSocket};
use crate::server::session::phoenix_socket::{PhoenixSocket, SocketDeps};
use crate::server::session::{InboundStream, Outgoing, ServerSession};

/// The subprotocol phoenix.js offers beside its token entry.
const PHOENIX_SUBPROTOCOL: &str = "phoenix";

/// actix-web handler for the Phoenix V2 WebSocket route.
pub(crate) async fn phoenix_socket(
    req: HttpRequest,
    body: web::Payload,
    service: web::Data<HubService>,
) -> HttpResponse {
    let admitted = match admit_phoenix(&Asking::http(&req, &service), &service) {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    let protocols = [PHOENIX_SUBPROTOCOL];
    let (response, outgoing, stream, oversized) =
        match upgrade(&req, body, &protocols, admitted.slot, &service).await {
            Ok(upgraded) => upgraded,
            Err(error) => return error.error_response(),
        };
    start_phoenix(
        &service,
        admitted.params,
        admitted.principal,
        outgoing,
        stream,
        oversized,
    );
    response
}

/// actix-web handler for the envelope v1 ingest route.
pub(crate) async fn ingest_socket(
    req: HttpRequest,
    body: web::Payload,
    service: web::Data<HubService>,
) -> HttpResponse {
    let admitted = match admit_ingest(&Asking::http(&req, &service), &service) {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    let (response, outgoing, stream, oversized) =
        match upgrade(&req, body, &[], admitted.slot, &service).await {
            Ok(upgraded) => upgraded,
            Err(error) => return error.error_response(),
        };
    start_ingest(&service, admitted.principal, outgoing, stream, oversized);
    response
}

/// Starts the session of an admitted Phoenix socket on the current arbiter.
pub(crate) fn start_phoenix(
    service: &HubService,
    params: HashMap<String, String>,
    principal: String,
    outgoing: Outgoing,
    stream: InboundStream,
    oversized: Arc<AtomicBool>,
) {
    let registry = service.registry().clone();
    let id = registry.next_session_id();
    let deps = SocketDeps {
        router: service.router().clone(),
        registry,
        stats: service.stats().clone(),
        max_channels: service.config().max_channels_per_socket,
    };
    let info = SocketInfo {
        session_id: id,
        params,
        principal,
    };
    ServerSession::start(
        session_parts(service, outgoing, stream, id, oversized),
        move |outbox, _, _| PhoenixSocket::new(info, deps, outbox),
    );
}

/// Starts the session of an admitted ingest socket, sending as
/// `principal`, on the current arbiter.
pub(crate) fn start_ingest(
    service: &HubService,
    principal: String,
    outgoing: Outgoing,
    stream: InboundStream,
    oversized: Arc<AtomicBool>,
) {
    let id = service.registry().next_session_id();
    let ingest = service.ingest();
    let config = service.config();
    let deps = IngestDeps {
        queue: ingest.queue.clone(),
        admission: ingest.admission.clone(),
        registry: service.registry().clone(),
        stats: service.stats().clone(),
        outbox_frames: config.max_outbound_frames,
        bidirectional: service.bidirectional(),
        dedup: ingest.dedup.clone(),
        principal,
        gauge: ingest.gauge.clone(),
        idle_timeout: config.idle_timeout,
    };
    ServerSession::start(
        session_parts(service, outgoing, stream, id, oversized),
        move |outbox, gate, ctx| IngestSocket::new(id, deps, outbox, gate, ctx),
    );
}
