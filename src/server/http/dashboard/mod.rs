//! The dashboard, at `server.dashboard` (say `/dashboard`): a page the hub
//! serves itself, its HTML, script and style embedded in the binary
//! (`assets/`), and the figures the page polls once a second,
//! `GET <path>/state`.
//!
//! Whatever the number of viewers, the hub reads its figures at most once
//! per [`board::INTERVAL`] and keeps the JSON ([`board::Board`], one per
//! hub); a viewer gets that body as it is (not copied), 304 when it sent
//! the current tag, and 429 past [`board::MAX_BODIES`] bodies in one
//! interval. The JSON itself is bounded ([`snapshot`]).
//!
//! The page holds no figures and is served to anyone; `state` is behind
//! the admin token, like `/metrics` (the page asks for the token, taken
//! from `#token=` in its URL or typed in, and sends it as a bearer).

mod board;

mod drops;
mod series;
mod snapshot;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use self::board::Answer;
pub(crate) use self::board::Board;
use crate::server::http::admission::{headers_fit, refused};
use crate::server::service::HubService;

const HTML: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// What the page may load: its own script, style and figures, nothing else.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// An embedded file as served: its body, type and tag.
struct Asset {
    body: Bytes,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: Bytes, content_type: &'static str) -> Arc<Asset> {
        let etag = format!("\"{:016x}\"", fnv1a(&body));
        Arc::new(Asset {
            body,
            content_type,
            etag,
        })
    }
}

/// Mounts the dashboard at `server.dashboard`, when set.
pub(super) fn mount(cfg: &mut web::ServiceConfig, service: &HubService) {
    let Some(path) = service.config().dashboard.as_deref() else {
        return;
    };
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-_.~".contains(c))
    {
        // Braces or a star would be route patterns to actix-web.
        tracing::error!(%path, "server.dashboard: letters, digits and / - _ . ~ only; not mounted");
        return;
    }
    // "" for the root, else "/name" (no slash at the end).
    let base = match path.trim_matches('/') {
        "" => String::new(),
        name => format!("/{name}"),
    };
    let html = HTML.replace("{{base}}", &escape_attribute(&base));
    let page = Asset::new(Bytes::from(html), "text/html; charset=utf-8");
    let script = Bytes::from_static(SCRIPT.as_bytes());
    let style = Bytes::from_static(STYLE.as_bytes());
    let board = Board::of(service);
    let mut routes = vec![
        (
            format!("{base}/app.js"),
            Asset::new(script, "text/javascript; charset=utf-8"),
        ),
        (
            format!("{base}/app.css"),
            Asset::new(style, "text/css; charset=utf-8"),
        ),
        (format!("{base}/"), page.clone()),
    ];
    if !base.is_empty() {
        routes.push((base.clone(), page));
    }
    for (route, asset) in routes {
        cfg.route(
            &route,
            web::get().to(move |req: HttpRequest, service: web::Data<HubService>| {
                let asset = asset.clone();
                async move { serve_asset(&req, &service, &asset) }
            }),
        );
    }
    cfg.route(
        &format!("{base}/state"),
        web::get().to(move |req: HttpRequest, service: web::Data<HubService>| {
            let board = board.clone();
            async move { state(&req, &service, &board) }
        }),
    );
    tracing::debug!(%base, "dashboard mounted");
}

fn serve_asset(req: &HttpRequest, service: &HubService, asset: &Asset) -> HttpResponse {
    if let Err(refusal) = headers_fit(req.headers(), service) {
        return refused(refusal);
    }
    let unchanged = seen_tag(req).is_some_and(|tags| matches(tags, &asset.etag));
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, asset.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY));
    if unchanged {
        return response.finish();
    }
    response
        .content_type(asset.content_type)
        .body(asset.body.clone())
}

/// `GET <path>/state`: the current snapshot, behind the admin token.
fn state(req: &HttpRequest, service: &HubService, board: &Board) -> HttpResponse {
    if let Err(refusal) = headers_fit(req.headers(), service) {
        return refused(refusal);
    }
    if !service.admits_admin(req) {
        return super::routes::unauthorized();
    }
    let no_store = (header::CACHE_CONTROL, "no-store");
    match board.answer(service, seen_tag(req)) {
        Answer::Body { etag, body } => HttpResponse::Ok()
            .insert_header((header::ETAG, etag))
            .insert_header(no_store)
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .content_type("application/json")
            .body(body),
        Answer::NotModified { etag } => HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header(no_store)
            .finish(),
        Answer::Busy => HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")))
            .insert_header(no_store)
            .json(serde_json::json!({ "reason": "dashboard busy: too many viewers this second" })),
    }
}

/// The `If-None-Match` header, when it is text.
fn seen_tag(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
}

/// Whether `tags` (an `If-None-Match` list) names `etag`.
pub(super) fn matches(tags: &str, etag: &str) -> bool {
    tags.split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// `text` safe inside a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// FNV-1a, 64 bits: the embedded files' tags.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
