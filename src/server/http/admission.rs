//! Checks made before any socket opens, shared by every endpoint of the hub
//! and by in-memory sockets: header and query size (431, 414), protocol
//! version (403), origin (403), credentials (401), capacity (503). Nothing
//! opens unless all pass; each refusal is counted.

use std::collections::HashMap;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::protocol::phoenix;
use crate::server::origin::{origin_allowed, HubOrigin};
use crate::server::registry::ConnectionSlot;
use crate::server::service::HubService;
use crate::server::stats::Refusal;

/// What the checks read of a request asking for a socket.
pub(crate) struct Asking<'a> {
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its query string, without the `?`.
    pub query: &'a str,
    /// What the hub is, for the same-origin check.
    pub hub: HubOrigin,
}

impl<'a> Asking<'a> {
    /// An HTTP request to the hub's server.
    pub(crate) fn http(req: &'a HttpRequest, service: &HubService) -> Asking<'a> {
        let hub = match service.public_origin() {
            Some(public) => HubOrigin::Public(public.clone()),
            None => HubOrigin::Bound(req.app_config().local_addr()),
        };
        Asking {
            headers: req.headers(),
            query: req.query_string(),
            hub,
        }
    }
}

/// A socket that passed every check.
pub(crate) struct Admitted {
    /// Its place under `server.max_connections`, held while it is open.
    pub slot: ConnectionSlot,
    /// Its query parameters.
    pub params: HashMap<String, String>,
    /// Who its credentials name.
    pub principal: String,
}

/// The checks of the Phoenix endpoint: sizes, `vsn=2.0.0`, then
/// [`admit`]'s.
pub(crate) fn admit_phoenix(asking: &Asking, service: &HubService) -> Result<Admitted, Refusal> {
    let params = query_params(asking, service)?;
    if params.get("vsn").map(String::as_str) != Some(phoenix::VSN) {
        service.stats().refused(Refusal::BadVersion);
        return Err(Refusal::BadVersion);
    }
    admit(asking, service, params)
}

/// The checks of the ingest endpoint: sizes, then [`admit`]'s.
pub(crate) fn admit_ingest(asking: &Asking, service: &HubService) -> Result<Admitted, Refusal> {
    let params = query_params(asking, service)?;
    admit(asking, service, params)
}

/// Refuses (431, counted) a request whose headers add up to more than
/// `server.max_header_bytes`: names, values, and 4 bytes of separators each.
pub(crate) fn headers_fit(headers: &HeaderMap, service: &HubService) -> Result<(), Refusal> {
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > service.config().max_header_bytes {
        service.stats().refused(Refusal::HeadersTooLarge);
        return Err(Refusal::HeadersTooLarge);
    }
    Ok(())
}

/// The query parameters, once the headers fit `server.max_header_bytes`
/// and the query string fits `server.max_query_bytes` (checked first: the
/// parameters are kept per socket). A query that does not parse is empty.
fn query_params(asking: &Asking, service: &HubService) -> Result<HashMap<String, String>, Refusal> {
    headers_fit(asking.headers, service)?;
    if asking.query.len() > service.config().max_query_bytes {
        service.stats().refused(Refusal::QueryTooLong);
        return Err(Refusal::QueryTooLong);
    }
    Ok(
        web::Query::<HashMap<String, String>>::from_query(asking.query)
            .map(web::Query::into_inner)
            .unwrap_or_default(),
    )
}

/// Origin, credentials (the `token` parameter among them) and capacity.
fn admit(
    asking: &Asking,
    service: &HubService,
    params: HashMap<String, String>,
) -> Result<Admitted, Refusal> {
    let origin = asking
        .headers
        .get(header::ORIGIN)
        .map(|origin| origin.to_str());
    let listed = &service.config().allowed_origins;
    let allowed = match origin {
        None => true,
        Some(Ok(origin)) => {
            let allowed = origin_allowed(Some(origin), &asking.hub, listed);
            if !allowed {
                service
                    .origin_warnings()
                    .refused(origin, &asking.hub, listed);
            }
            allowed
        }
        Some(Err(_)) => false,
    };
    let token = params.get("token").map(String::as_str);
    let principal = service.credentials().principal(asking.headers, token);
    let refusal = match (allowed, principal) {
        (false, _) => Refusal::Origin,
        (true, None) => Refusal::Unauthorized,
        (true, Some(principal)) => match service.registry().try_admit() {
            Some(slot) => {
                return Ok(Admitted {
                    slot,
                    params,
                    principal,
                })
            }
            None => Refusal::Capacity,
        },
    };
    service.stats().refused(refusal);
    Err(refusal)
}

/// The HTTP answer to a refused request.
pub(crate) fn refused(refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::BadVersion => HttpResponse::Forbidden().body(
            "unsupported protocol version: this endpoint speaks Phoenix Channels V2; \
             connect with vsn=2.0.0 (phoenix.js sends it)",
        ),
        Refusal::Origin => HttpResponse::Forbidden().body(
            "origin not allowed: the page's origin is not the hub's own and is not listed in \
             server.allowed_origins (matched exactly: scheme, host and port, so \
             http://localhost:8080 and http://127.0.0.1:8080 are different origins)",
        ),
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
