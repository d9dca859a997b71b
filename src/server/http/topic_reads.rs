//! What an HTTP client may read of one topic, under the same credentials
//! as a socket and the same join authorization as the topic's channel
//! (asked with an empty join payload and the query's other parameters as
//! the socket's params):
//! - `GET /history/{topic}?since=&until=&limit=`: a page of a recoverable
//!   topic's history;
//! - `GET /presence/{topic}`: who is on it.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::protocol::history::{HistoryQuery, NOT_RECOVERABLE};
use crate::protocol::{ChannelErrorCode, Payload};
use crate::server::channel::SocketInfo;
use crate::server::http::admission::{headers_fit, refused};
use crate::server::service::HubService;
use crate::server::stats::Refusal;

/// Query parameters that are the history's, not the join's.
const RANGE_KEYS: [&str; 3] = ["since", "until", "limit"];

pub(crate) async fn history(
    req: HttpRequest,
    topic: web::Path<String>,
    service: web::Data<HubService>,
) -> HttpResponse {
    let topic = topic.into_inner();
    let params = match authorized(&req, &topic, &service) {
        Ok(params) => params,
        Err(denied) => return denied.response(),
    };
    let query = match range(&params) {
        Ok(query) => query,
        Err(why) => return HttpResponse::BadRequest().json(json!({ "reason": why })),
    };
    let registry = service.registry();
    let page = match registry.cluster() {
        // A cluster node that does not follow the topic reads the stream.
        Some(cluster)
            if registry.history_for(&topic).is_some() && cluster.live_copy(&topic).is_none() =>
        {
            match cluster.read_history(&topic, CLUSTER_READ).await {
                Ok(log) => registry.page_of(&topic, &log, &query),
                Err(error) => {
                    tracing::warn!(%error, %topic, "history not read from the cluster");
                    let reason = json!({ "reason": error.to_string() });
                    return HttpResponse::ServiceUnavailable().json(reason);
                }
            }
        }
        _ => registry.history_page(&topic, &query),
    };
    match page {
        Some(page) => HttpResponse::Ok().json(page),
        None => HttpResponse::NotFound().json(json!({ "reason": NOT_RECOVERABLE })),
    }
}

/// How long a history read from the cluster's stream may take.
const CLUSTER_READ: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn presence(
    req: HttpRequest,
    topic: web::Path<String>,
    service: web::Data<HubService>,
) -> HttpResponse {
    let topic = topic.into_inner();
    match authorized(&req, &topic, &service) {
        Ok(_) => HttpResponse::Ok().json(service.presence(&topic)),
        Err(denied) => denied.response(),
    }
}

/// Why a request may not read a topic.
enum Denied {
    /// Refused before the channel was asked (sizes, credentials).
    Refused(Refusal),
    /// No channel is routed for the topic.
    Unrouted,
    /// The channel refused the join, with this reason.
    Join(ChannelErrorCode),
    /// The channel's join panicked.
    Crashed,
}

impl Denied {
    fn response(self) -> HttpResponse {
        let reason = |code: &ChannelErrorCode| json!({ "reason": code.as_str() });
        match self {
            Denied::Refused(refusal) => refused(refusal),
            Denied::Unrouted => {
                HttpResponse::NotFound().json(reason(&ChannelErrorCode::UnmatchedTopic))
            }
            Denied::Join(code) => HttpResponse::Forbidden().json(reason(&code)),
            Denied::Crashed => {
                HttpResponse::InternalServerError().json(json!({ "reason": "join failed" }))
            }
        }
    }
}

/// The query's parameters once the request may read `topic`: its headers
/// and query fit, its credentials admit it (401), a channel is routed for
/// the topic (404) and accepts a join (403 with its reason).
fn authorized(
    req: &HttpRequest,
    topic: &str,
    service: &HubService,
) -> Result<HashMap<String, String>, Denied> {
    headers_fit(req.headers(), service).map_err(Denied::Refused)?;
    if req.query_string().len() > service.config().max_query_bytes {
        service.stats().refused(Refusal::QueryTooLong);
        return Err(Denied::Refused(Refusal::QueryTooLong));
    }
    let params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let token = params.get("token").map(String::as_str);
    let Some(principal) = service.credentials().principal(req.headers(), token) else {
        service.stats().refused(Refusal::Unauthorized);
        return Err(Denied::Refused(Refusal::Unauthorized));
    };
    let channel = service.router().find(topic).ok_or(Denied::Unrouted)?;
    let mut join_params = params.clone();
    join_params.retain(|key, _| !RANGE_KEYS.contains(&key.as_str()) && key != "token");
    let info = SocketInfo {
        session_id: 0,
        params: join_params,
        principal,
    };
    match catch_unwind(AssertUnwindSafe(|| {
        channel.join(topic, &Payload::empty_object(), &info)
    })) {
        Ok(Ok(_)) => Ok(params),
        Ok(Err(code)) => Err(Denied::Join(code)),
        Err(_) => Err(Denied::Crashed),
    }
}

/// The range asked for: each of `since`, `until`, `limit` a whole number.
fn range(params: &HashMap<String, String>) -> Result<HistoryQuery, &'static str> {
    let number = |key: &str| -> Result<Option<u64>, &'static str> {
        params
            .get(key)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| "since, until and limit are whole numbers")
            })
            .transpose()
    };
    Ok(HistoryQuery {
        limit: number("limit")?,
        since: number("since")?,
        until: number("until")?,
    })
}
