//! `GET /history/{topic}?since=&until=&limit=`: a recoverable topic's
//! history over HTTP, under the same credentials as a socket and the same
//! join authorization as the topic's channel (asked with an empty join
//! payload and the query's other parameters as the socket's params).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::protocol::history::{HistoryQuery, NOT_RECOVERABLE};
use crate::protocol::ChannelErrorCode;
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
    if let Err(refusal) = headers_fit(req.headers(), &service) {
        return refused(refusal);
    }
    if req.query_string().len() > service.config().max_query_bytes {
        service.stats().refused(Refusal::QueryTooLong);
        return refused(Refusal::QueryTooLong);
    }
    let mut params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let token = params.get("token").cloned();
    if service
        .credentials()
        .principal(req.headers(), token.as_deref())
        .is_none()
    {
        service.stats().refused(Refusal::Unauthorized);
        return refused(Refusal::Unauthorized);
    }
    let query = match range(&params) {
        Ok(query) => query,
        Err(why) => return HttpResponse::BadRequest().json(json!({ "reason": why })),
    };
    params.retain(|key, _| !RANGE_KEYS.contains(&key.as_str()) && key != "token");
    let topic = topic.into_inner();
    let Some(channel) = service.router().find(&topic) else {
        let reason = ChannelErrorCode::UnmatchedTopic;
        return HttpResponse::NotFound().json(json!({ "reason": reason.as_str() }));
    };
    let info = SocketInfo {
        session_id: 0,
        params,
    };
    let joined = catch_unwind(AssertUnwindSafe(|| channel.join(&topic, &json!({}), &info)));
    match joined {
        Ok(Ok(_)) => {}
        Ok(Err(code)) => return HttpResponse::Forbidden().json(json!({ "reason": code.as_str() })),
        Err(_) => {
            return HttpResponse::InternalServerError().json(json!({ "reason": "join failed" }))
        }
    }
    match service.registry().history_page(&topic, &query) {
        Some(page) => HttpResponse::Ok().json(page),
        None => HttpResponse::NotFound().json(json!({ "reason": NOT_RECOVERABLE })),
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
