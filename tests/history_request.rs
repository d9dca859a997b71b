//! SEQ-10. History on request: ranges of a recoverable topic's ring by
//! `since`, `until` and `limit`, in order and capped, over the socket and
//! over HTTP, and the refusals (not recoverable, not joined, a bad query,
//! credentials, the channel's own join authorization).

mod support;

use serde_json::{json, Value};
use support::client::*;
use support::*;
use switchboard::client::HistoryError;
use switchboard::config::Config;
use switchboard::protocol::history::{HistoryPage, HistoryQuery};
use switchboard::protocol::{ChannelErrorCode, Payload};
use switchboard::server::{
    Channel, ChannelContext, ChannelFailure, ChannelRouter, HubService, Outcome, RoomChannel,
    RunningHub, SocketInfo,
};

const FEED: &str = "room:feed:1";

/// Joins only with `key=k` among the socket's params.
struct Locked;

impl Channel for Locked {
    fn join(&self, _: &str, _: &Payload, socket: &SocketInfo) -> Result<Value, ChannelErrorCode> {
        match socket.params.get("key").map(String::as_str) {
            Some("k") => Ok(json!({})),
            _ => Err(ChannelErrorCode::Forbidden),
        }
    }

    fn handle_in(
        &self,
        _: &str,
        _: &Payload,
        _: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        Ok(Outcome::NoReply)
    }
}

fn hub() -> RunningHub {
    let mut config: Config = test_config();
    config.history.topics = vec!["room:feed:*".to_owned(), "locked:*".to_owned()];
    config.history.size = 10;
    config.history.max_request = 5;
    HubService::builder(&config)
        .router(
            ChannelRouter::new()
                .route("room:*", RoomChannel)
                .route("locked:*", Locked),
        )
        .credentials(bearer("tok"))
        .start()
        .expect("hub starts")
}

fn sequences(page: &HistoryPage) -> Vec<u64> {
    page.publications
        .iter()
        .map(|publication| publication["sequence"].as_u64().expect("sequenced"))
        .collect()
}

fn query(limit: Option<u64>, since: Option<u64>, until: Option<u64>) -> HistoryQuery {
    HistoryQuery {
        limit,
        since,
        until,
    }
}

#[actix_web::test]
async fn seq_10_history_ranges_are_in_order_bounded_and_refused_where_they_must_be() {
    let hub = hub();
    let board = switchboard();
    let mut config = fast_config(&hub.socket_url());
    config.auth = switchboard::client::ClientAuth::Bearer(
        switchboard::client::TokenSource::Static("tok".to_owned()),
    );
    let handle = open(&board, config).await;
    handle.join(FEED, json!({})).await.expect("joins the feed");
    handle
        .join("room:lobby", json!({}))
        .await
        .expect("joins the lobby");
    for n in 1..=20 {
        hub.service().broadcast(FEED, "item", &json!({ "n": n }));
    }
    // The ring keeps 10: 11..=20.
    let page = handle
        .history(FEED, query(Some(3), Some(12), None))
        .await
        .expect("a page");
    assert_eq!(sequences(&page), [13, 14, 15]);
    assert!(page.truncated);
    assert_eq!((page.top, page.oldest), (20, Some(11)));
    assert!(!page.epoch.is_empty());
    assert_eq!(page.publications[0]["payload"], json!({"n": 13}));
    let latest = handle
        .history(FEED, query(Some(3), None, None))
        .await
        .expect("a page");
    assert_eq!(sequences(&latest), [18, 19, 20]);
    let bounded = handle
        .history(FEED, query(None, Some(13), Some(16)))
        .await
        .expect("a page");
    assert_eq!(sequences(&bounded), [14, 15, 16]);
    assert!(!bounded.truncated);
    let capped = handle
        .history(FEED, query(Some(100), None, None))
        .await
        .expect("a page");
    assert_eq!(
        sequences(&capped),
        [16, 17, 18, 19, 20],
        "history.max_request = 5"
    );
    let forward = handle
        .history(FEED, query(None, Some(2), None))
        .await
        .expect("a page");
    assert_eq!(
        sequences(&forward),
        [11, 12, 13, 14, 15],
        "what the ring still holds"
    );

    // Refusals.
    let refused = |reason: &str| HistoryError::Refused {
        reason: reason.to_owned(),
    };
    assert_eq!(
        handle.history("room:lobby", HistoryQuery::default()).await,
        Err(refused("not_recoverable"))
    );
    assert!(
        matches!(
            handle.history("room:feed:2", HistoryQuery::default()).await,
            Err(HistoryError::Push(_))
        ),
        "a topic not joined: the push itself is refused"
    );
    let bad = handle
        .push(FEED, "switchboard:history", json!({"since": "yesterday"}))
        .await
        .expect("a reply");
    assert_eq!(bad.response["reason"], "invalid", "{:?}", bad.response);

    // Over HTTP, with the same credentials and the channel's authorization.
    let base = format!("http://{}/history", hub.addr());
    let client = awc::Client::new();
    let get = |path: String| {
        let request = client.get(path).bearer_auth("tok");
        async move {
            let mut response = request.send().await.expect("answered");
            let body: Value = response.json().await.expect("JSON");
            (response.status().as_u16(), body)
        }
    };
    let (status, body) = get(format!("{base}/{FEED}?since=12&limit=3")).await;
    assert_eq!(status, 200, "{body}");
    let page: HistoryPage = serde_json::from_value(body).expect("a page");
    assert_eq!(sequences(&page), [13, 14, 15]);
    assert_eq!(get(format!("{base}/room:lobby")).await.0, 404);
    assert_eq!(get(format!("{base}/nowhere:1")).await.0, 404);
    assert_eq!(get(format!("{base}/{FEED}?since=soon")).await.0, 400);
    let (status, body) = get(format!("{base}/locked:1")).await;
    assert_eq!((status, body["reason"].as_str()), (403, Some("forbidden")));
    assert_eq!(get(format!("{base}/locked:1?key=k")).await.0, 200);
    let anonymous = client
        .get(format!("{base}/{FEED}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status().as_u16(), 401);
}
