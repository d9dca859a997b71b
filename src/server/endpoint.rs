//! The Phoenix endpoint: checks made before the upgrade, then the upgrade.
//!
//! Order of checks: protocol version (403), origin (403), credentials (401),
//! capacity (503). Nothing is upgraded unless all pass.

use std::collections::HashMap;

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::channel::SocketInfo;
use super::phoenix_socket::SocketDeps;
use super::registry::ConnectionSlot;
use super::service::HubService;
use super::session::{ServerSession, SessionParts};
use super::stats::Refusal;
use crate::protocol::phoenix;
use crate::transport::outbox::OutboxLimits;

/// The subprotocol phoenix.js offers beside its token entry.
const PHOENIX_SUBPROTOCOL: &str = "phoenix";

/// actix-web handler for the Phoenix V2 WebSocket route.
pub async fn phoenix_socket(
    req: HttpRequest,
    body: web::Payload,
    service: web::Data<HubService>,
) -> HttpResponse {
    let params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let stats = service.stats();
    if params.get("vsn").map(String::as_str) != Some(phoenix::VSN) {
        stats.refused(Refusal::BadVersion);
        return HttpResponse::Forbidden().body("unsupported protocol version: use vsn=2.0.0");
    }
    if !origin_allowed(&req, &service.config().allowed_origins) {
        stats.refused(Refusal::Origin);
        return HttpResponse::Forbidden().body("origin not allowed");
    }
    let token = params.get("token").map(String::as_str);
    if !service.credentials().admits(&req, token) {
        stats.refused(Refusal::Unauthorized);
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .body("missing or invalid credentials");
    }
    let Some(slot) = service.registry().try_admit() else {
        stats.refused(Refusal::Capacity);
        return HttpResponse::ServiceUnavailable().body("too many connections");
    };
    let (response, session, stream) =
        match actix_ws::handle_with_protocols(&req, body, &[PHOENIX_SUBPROTOCOL]) {
            Ok(upgrade) => upgrade,
            Err(error) => return error.error_response(),
        };
    let config = service.config();
    let stream = stream
        .max_frame_size(config.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(config.max_frame_bytes);
    let registry = service.registry().clone();
    ServerSession::start(SessionParts {
        session,
        stream,
        info: SocketInfo {
            session_id: registry.next_session_id(),
            params,
        },
        deps: SocketDeps {
            router: service.router().clone(),
            registry,
            stats: stats.clone(),
            max_channels: config.max_channels_per_socket,
        },
        idle_timeout: config.idle_timeout,
        limits: OutboxLimits {
            max_frames: config.max_outbound_frames,
            max_bytes: config.max_outbound_bytes,
        },
    });
    // The slot is freed when actix-http drops the body, i.e. when the TCP
    // connection is really gone, not merely when the session stopped.
    response
        .map_body(|_, body| SlotBody { body, _slot: slot })
        .map_into_boxed_body()
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

/// Empty list: same origin only; `*`: any; otherwise an exact match.
/// A request without `Origin` (not from a browser) is allowed.
pub fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if allowed.is_empty() {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        return matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
    }
    allowed
        .iter()
        .any(|entry| entry == "*" || entry.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(origin: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::default().insert_header((header::HOST, "hub.local:4000"));
        if let Some(origin) = origin {
            req = req.insert_header((header::ORIGIN, origin));
        }
        req.to_http_request()
    }

    #[test]
    fn same_origin_when_list_is_empty() {
        assert!(origin_allowed(&request(Some("http://hub.local:4000")), &[]));
        assert!(!origin_allowed(&request(Some("http://evil.example")), &[]));
        assert!(origin_allowed(&request(None), &[]));
    }

    #[test]
    fn star_and_exact_entries() {
        let star = vec!["*".to_owned()];
        assert!(origin_allowed(&request(Some("http://any.where")), &star));
        let list = vec!["https://app.example/".to_owned()];
        assert!(origin_allowed(&request(Some("https://app.example")), &list));
        assert!(!origin_allowed(
            &request(Some("https://other.example")),
            &list
        ));
    }
}
