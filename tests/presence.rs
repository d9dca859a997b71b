//! PHX-S17. Presence: channels track sockets; joiners get `presence_state`,
//! members get `presence_diff`; phoenix.js's `Presence` sees the same list
//! as the Rust client's, across leaves, updates, bounds and a hub restart.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::client::*;
use support::peers::{node_ready, PhoenixPeer};
use support::*;
use switchboard::client::{PhoenixHandle, PresenceChange, TopicPresence};
use switchboard::config::Config;
use switchboard::protocol::{ChannelErrorCode, Payload};
use switchboard::server::{
    Channel, ChannelContext, ChannelFailure, ChannelRouter, HubService, Outcome, PresenceRoom,
    RunningHub, SocketInfo,
};

/// Tracks each joiner under its `user`; `status` updates its meta.
struct Desk;

impl Channel for Desk {
    fn join(&self, _: &str, _: &Payload, _: &SocketInfo) -> Result<Value, ChannelErrorCode> {
        Ok(json!({}))
    }

    fn presence(&self, _: &str, payload: &Payload, _: &SocketInfo) -> Option<(String, Value)> {
        let payload = payload.to_value();
        let user = payload["user"].as_str()?;
        Some((user.to_owned(), json!({ "status": "here" })))
    }

    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        if event != "status" {
            return Ok(Outcome::Error(ChannelErrorCode::NotFound));
        }
        let payload = payload.to_value();
        let user = payload["user"].as_str().unwrap_or_default();
        match ctx.update(user, &json!({ "status": payload["status"] })) {
            Ok(()) => Ok(Outcome::Ok(Payload::empty_object())),
            Err(_) => Ok(Outcome::Error(ChannelErrorCode::Forbidden)),
        }
    }
}

fn hub_with(config: &Config) -> RunningHub {
    HubService::builder(config)
        .router(
            ChannelRouter::new()
                .route("room:*", PresenceRoom)
                .route("desk:*", Desk),
        )
        .start()
        .expect("hub starts")
}

/// `{key: [metas]}` of a Rust presence list.
fn as_map(presence: &TopicPresence) -> BTreeMap<String, Vec<Value>> {
    presence.list().keys().clone()
}

/// Waits until `presence`'s list satisfies `done`.
async fn until(presence: &mut TopicPresence, done: impl Fn(&BTreeMap<String, Vec<Value>>) -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        while !done(&as_map(presence)) {
            assert!(presence.changed().await, "the connection closed");
        }
    })
    .await;
    assert!(reached.is_ok(), "presence now: {:?}", as_map(presence));
}

async fn joined(
    board: &actix::Addr<switchboard::client::Switchboard>,
    hub: &RunningHub,
    topic: &str,
    user: &str,
) -> PhoenixHandle {
    let handle = open(board, fast_config(&hub.socket_url())).await;
    handle
        .join(topic, json!({ "user": user }))
        .await
        .expect("joins");
    handle
}

/// `GET /presence/{topic}`, as JSON.
async fn listed_over_http(url: &str) -> Value {
    let mut response = awc::Client::new().get(url).send().await.expect("GET");
    response.json().await.expect("JSON")
}

fn counts(list: &BTreeMap<String, Vec<Value>>) -> BTreeMap<&str, usize> {
    list.iter()
        .map(|(key, metas)| (key.as_str(), metas.len()))
        .collect()
}

#[actix_web::test]
async fn phx_s17_presence_follows_joins_updates_leaves_within_its_bounds() {
    let mut config = test_config();
    config.presence.max_metas_per_key = 2;
    let hub = hub_with(&config);
    let board = switchboard();
    let observer = open(&board, fast_config(&hub.socket_url())).await;
    let mut presence = observer.presence("desk:1");
    observer
        .join("desk:1", json!({"user": "obs"}))
        .await
        .expect("joins");
    let _ann = joined(&board, &hub, "desk:1", "ann").await;
    let _ann_again = joined(&board, &hub, "desk:1", "ann").await;
    let bob = joined(&board, &hub, "desk:1", "bob").await;
    until(&mut presence, |list| {
        counts(list) == BTreeMap::from([("ann", 2), ("bob", 1), ("obs", 1)])
    })
    .await;

    // A third socket of ann is past max_metas_per_key: joined, not tracked.
    let _ann_third = joined(&board, &hub, "desk:1", "ann").await;
    let http = format!("http://{}/presence/desk:1", hub.addr());
    let listed = listed_over_http(&http).await;
    assert_eq!(
        listed["ann"]["metas"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );

    // An update replaces one meta, with phx_ref_prev.
    bob.push("desk:1", "status", json!({"user": "bob", "status": "away"}))
        .await
        .expect("updated");
    until(&mut presence, |list| list["bob"][0]["status"] == "away").await;
    assert!(as_map(&presence)["bob"][0]["phx_ref_prev"].is_string());

    // A leave is one diff: bob is gone from the next change.
    let mut changes = presence.changes();
    bob.leave("desk:1").await.expect("left");
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("a change")
        .expect("open");
    assert!(
        matches!(&change, PresenceChange::Left { key, gone: true, .. } if key == "bob"),
        "{change:?}"
    );
    assert_eq!(
        counts(&as_map(&presence)),
        BTreeMap::from([("ann", 2), ("obs", 1)])
    );

    // Over HTTP, the same list.
    let listed = listed_over_http(&http).await;
    let over_http: BTreeMap<String, Vec<Value>> = listed
        .as_object()
        .expect("an object")
        .iter()
        .map(|(key, presence)| {
            (
                key.clone(),
                presence["metas"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(over_http, as_map(&presence));
}

#[actix_web::test]
async fn phx_s17_phoenix_js_sees_the_same_presence_as_the_rust_client() {
    if !node_ready("phx_s17_phoenix_js_sees_the_same_presence_as_the_rust_client") {
        return;
    }
    let hub = hub_with(&test_config());
    let url = hub.socket_url();
    // Two phoenix.js clients see each other; a leave reaches the other in one diff.
    let pair = PhoenixPeer::presence("pair", &url, &[]).result().await;
    assert_eq!(pair["diffsSinceLeave"], 1, "{pair}");

    // A phoenix.js observer and a Rust one, then joins, an update and leaves.
    let mut js = PhoenixPeer::presence("observe", &url, &["--topic", "desk:cmp", "--user", "js"]);
    let board = switchboard();
    let observer = open(&board, fast_config(&url)).await;
    let mut rust = observer.presence("desk:cmp");
    observer
        .join("desk:cmp", json!({"user": "rust"}))
        .await
        .expect("joins");
    let ann = joined(&board, &hub, "desk:cmp", "ann").await;
    let ann_again = joined(&board, &hub, "desk:cmp", "ann").await;
    let bob = joined(&board, &hub, "desk:cmp", "bob").await;
    ann.push(
        "desk:cmp",
        "status",
        json!({"user": "ann", "status": "busy"}),
    )
    .await
    .expect("updated");
    ann_again.leave("desk:cmp").await.expect("left");
    bob.leave("desk:cmp").await.expect("left");
    until(&mut rust, |list| {
        counts(list) == BTreeMap::from([("ann", 1), ("js", 1), ("rust", 1)])
            && list["ann"][0]["status"] == "busy"
    })
    .await;
    let expected = as_map(&rust);
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = js.next_line().await;
            let list: BTreeMap<String, Vec<Value>> =
                serde_json::from_value(line["list"].clone()).expect("a list");
            if list == expected {
                return list;
            }
        }
    })
    .await
    .expect("phoenix.js reaches the Rust client's list");
    assert_eq!(seen, expected);
    js.close_stdin();
    js.result().await;
}

#[actix_web::test]
async fn phx_s17_phoenix_js_resyncs_presence_without_duplicates_after_a_hub_restart() {
    if !node_ready("phx_s17_phoenix_js_resyncs_presence_without_duplicates_after_a_hub_restart") {
        return;
    }
    let first = hub_with(&test_config());
    let addr = first.addr();
    let mut peer = PhoenixPeer::presence("rejoin", &first.socket_url(), &["--user", "ann"]);
    assert_eq!(peer.next_line().await["event"], "joined");
    first.shutdown().await;
    let mut config = test_config();
    config.server.listen = addr.to_string();
    let second = hub_with(&config);
    let result = peer.result().await;
    assert_eq!(result["rejoined"], true, "{result}");
    assert_eq!(
        result["list"]["ann"].as_array().map(Vec::len),
        Some(1),
        "{result}"
    );
    second.shutdown().await;
}
