//! The long-poll routes at `<socket path>/longpoll` (`/socket/longpoll`
//! by default), as phoenix.js's `LongPoll` speaks them: a GET without a
//! token opens a session (`{"status": 410, "token": ...}`), a GET with one
//! waits for its frames (200 with `messages`, or 204), a POST hands it
//! newline-separated frames; an unknown token answers 410. The status
//! travels in the JSON body, HTTP 200. The admission is the WebSocket
//! endpoint's (`vsn`, origin, credentials, capacity), with the auth token
//! in `X-Phoenix-AuthToken`; a refusal is `{"status": 403}` (or 500 for
//! capacity, which phoenix.js retries). Allowed origins get CORS headers.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::json;

use crate::server::http::admission::{admit_phoenix, Asking};
use crate::server::http::endpoint::start_phoenix;
use crate::server::longpoll::{within_frame_limit, Polled};
use crate::server::origin::origin_allowed;
use crate::server::service::HubService;
use crate::server::session::Outgoing;
use crate::server::stats::Refusal;

/// The header phoenix.js's `LongPoll` carries its `authToken` in.
const AUTH_TOKEN_HEADER: &str = "x-phoenix-authtoken";

/// Where the long-poll routes are, for a WebSocket endpoint at `path`.
pub(crate) fn longpoll_path(path: &str) -> String {
    match path.strip_suffix("/websocket") {
        Some(base) => format!("{base}/longpoll"),
        None => format!("{}/longpoll", path.trim_end_matches('/')),
    }
}

pub(crate) async fn poll(req: HttpRequest, service: web::Data<HubService>) -> HttpResponse {
    let params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let answer = match params.get("token") {
        None => open(&req, &service),
        Some(token) => match service.longpolls().poll(token).await {
            Polled::Messages(messages) => {
                json!({"status": 200, "token": token, "messages": messages})
            }
            Polled::Nothing => json!({"status": 204, "token": token}),
            Polled::Gone => json!({"status": 410}),
        },
    };
    with_cors(&req, &service, HttpResponse::Ok()).json(answer)
}

pub(crate) async fn post(
    req: HttpRequest,
    body: web::Bytes,
    service: web::Data<HubService>,
) -> HttpResponse {
    let params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let lines: Vec<String> = String::from_utf8_lossy(&body)
        .split('\n')
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    let status = match params.get("token") {
        Some(_) if !within_frame_limit(&lines, service.config().max_frame_bytes) => 413,
        Some(token) if service.longpolls().post(token, lines).await => 200,
        _ => 410,
    };
    with_cors(&req, &service, HttpResponse::Ok()).json(json!({ "status": status }))
}

pub(crate) async fn preflight(req: HttpRequest, service: web::Data<HubService>) -> HttpResponse {
    let mut response = with_cors(&req, &service, HttpResponse::NoContent());
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "content-type, x-phoenix-authtoken, authorization",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
    response.finish()
}

/// A new session, admitted like a WebSocket.
fn open(req: &HttpRequest, service: &HubService) -> serde_json::Value {
    let mut headers: HeaderMap = req.headers().clone();
    if let Some(token) = req
        .headers()
        .get(AUTH_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(bearer) = HeaderValue::try_from(format!("Bearer {token}")) {
            headers.insert(header::AUTHORIZATION, bearer);
        }
    }
    let mut asking = Asking::http(req, service);
    asking.headers = &headers;
    let admitted = match admit_phoenix(&asking, service) {
        Ok(admitted) => admitted,
        Err(Refusal::Capacity | Refusal::PendingUpgrades) => return json!({"status": 500}),
        Err(_) => return json!({"status": 403}),
    };
    let config = service.config();
    let (window, max_bytes) = (config.longpoll_window, config.max_outbound_bytes);
    let Some((token, sink, stream)) = service.longpolls().open(admitted.slot, window, max_bytes)
    else {
        return json!({"status": 500});
    };
    let oversized = Arc::new(AtomicBool::new(false));
    start_phoenix(
        service,
        admitted.params,
        admitted.principal,
        Outgoing::Sink(sink),
        stream,
        oversized,
    );
    json!({"status": 410, "token": token})
}

/// `response` with CORS headers when the request's origin may open sockets.
pub(crate) fn with_cors(
    req: &HttpRequest,
    service: &HubService,
    mut response: HttpResponseBuilder,
) -> HttpResponseBuilder {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return response;
    };
    let hub = Asking::http(req, service).hub;
    if origin_allowed(Some(origin), &hub, &service.config().allowed_origins) {
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
            .insert_header((header::VARY, "Origin"));
    }
    response
}
