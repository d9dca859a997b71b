//! PHX-S1..PHX-S13 of docs/conformance.md against a real hub on 127.0.0.1:0.

mod support;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use support::*;
use switchboard::protocol::{ChannelErrorCode, Payload};
use switchboard::server::{
    Broadcast, Channel, ChannelContext, ChannelFailure, ChannelRouter, CloseCause, FrameProblem,
    Outcome, RoomChannel, SocketInfo,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A channel that refuses joins, fails, panics and pushes, for the edge cases.
struct Awkward;

impl Channel for Awkward {
    fn join(&self, topic: &str, _: &Payload, _: &SocketInfo) -> Result<Value, ChannelErrorCode> {
        match topic {
            "awkward:locked" => Err(ChannelErrorCode::Forbidden),
            "awkward:crash" => panic!("join panics on purpose"),
            _ => Ok(json!({"welcome": topic})),
        }
    }

    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        match event {
            "boom" => Err(ChannelFailure("boom requested".to_owned())),
            "panic" => panic!("handler panics on purpose"),
            "whoami" => {
                ctx.push("you_are", &json!({"id": ctx.socket().session_id}).into());
                Ok(Outcome::NoReply)
            }
            _ => Ok(Outcome::Ok(payload.clone())),
        }
    }
}

/// Joins room:a as "1", then again as "2" (reading the close and the reply).
async fn join_twice(client: &mut Client) {
    client.join("room:a", "1").await;
    client.join("room:a", "2").await; // phx_close of "1"
    client.recv().await; // reply to "2"
}

fn awkward_router() -> ChannelRouter {
    ChannelRouter::rooms().route("awkward:*", Awkward)
}

#[actix_web::test]
async fn phx_s1_vsn_is_required() {
    let hub = start_hub(&test_config());
    assert_eq!(refused_status(hub.socket_url()).await, 403);
    assert_eq!(
        refused_status(format!("{}?vsn=1.0.0", hub.socket_url())).await,
        403
    );
    Client::to(&hub).await;
}

#[actix_web::test]
async fn phx_s1_token_in_subprotocol_selects_phoenix() {
    let hub = start_hub_with_credentials(&test_config(), bearer("tok-s1"));
    let with_token = |token: &str| {
        let mut request = v2_url(&hub).into_client_request().unwrap();
        let protocols = format!(
            "phoenix, base64url.bearer.phx.{}",
            URL_SAFE_NO_PAD.encode(token)
        );
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocols.parse().unwrap());
        request
    };
    let (_, response) = tokio_tungstenite::connect_async(with_token("tok-s1"))
        .await
        .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "phoenix");
    assert_eq!(refused_status(with_token("wrong")).await, 401);
    assert_eq!(refused_status(v2_url(&hub)).await, 401);
}

#[actix_web::test]
async fn phx_s2_trailing_elements_ignored_and_invalid_frames_kept_alive() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client
        .send_text(r#"["1","1","room:a","phx_join",{},"extra",42]"#)
        .await;
    assert_eq!(
        client.recv().await,
        json!(["1", "1", "room:a", "phx_reply", ok(json!({}))])
    );
    client.send_text(r#"["1","2","room:a"]"#).await;
    client.send_text("not json").await;
    client
        .send(None, Some("3"), "phoenix", "heartbeat", json!({}))
        .await;
    assert_eq!(
        client.recv().await[1],
        "3",
        "the socket lives on after invalid frames"
    );
    let stats = hub.service().stats();
    assert_eq!(stats.problems(FrameProblem::Malformed), 1);
    assert_eq!(stats.problems(FrameProblem::InvalidJson), 1);
}

#[actix_web::test]
async fn phx_s3_heartbeat_reply() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client
        .send_text(r#"[null,"7","phoenix","heartbeat",{}]"#)
        .await;
    assert_eq!(
        client.recv().await,
        json!([null, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}])
    );
}

#[actix_web::test]
async fn phx_s4_idle_timeout_closes_and_heartbeats_reset_it() {
    let mut config = test_config();
    config.server.idle_timeout = Duration::from_millis(400);
    let hub = start_hub(&config);
    let mut client = Client::to(&hub).await;
    let opened = Instant::now();
    for n in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.heartbeat(&n.to_string()).await;
        assert_eq!(client.recv().await[3], "phx_reply");
    }
    assert!(
        opened.elapsed() > Duration::from_millis(800),
        "outlived one idle timeout"
    );
    let quiet = Instant::now();
    assert_eq!(client.expect_close().await, Some(1001));
    assert!(
        quiet.elapsed() >= Duration::from_millis(300),
        "closed only after going quiet"
    );
    assert_eq!(hub.service().stats().closes(CloseCause::Idle), 1);
}

#[actix_web::test]
async fn phx_s5_join_replies_echo_join_ref() {
    let hub = start_hub_with(&test_config(), awkward_router());
    let mut client = Client::to(&hub).await;
    client
        .send(Some("5"), Some("6"), "awkward:1", "phx_join", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!([
            "5",
            "6",
            "awkward:1",
            "phx_reply",
            ok(json!({"welcome": "awkward:1"}))
        ])
    );
    client
        .send(
            Some("8"),
            Some("9"),
            "awkward:locked",
            "phx_join",
            json!({}),
        )
        .await;
    assert_eq!(
        client.recv().await,
        json!(["8", "9", "awkward:locked", "phx_reply", error("forbidden")])
    );
}

#[actix_web::test]
async fn phx_s6_unmatched_topic() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client
        .send(Some("1"), Some("1"), "nope:1", "phx_join", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!([null, "1", "nope:1", "phx_reply", error("unmatched topic")])
    );
    client
        .send(Some("2"), Some("2"), "room:unjoined", "shout", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!([
            null,
            "2",
            "room:unjoined",
            "phx_reply",
            error("unmatched topic")
        ])
    );
}

#[actix_web::test]
async fn phx_s7_second_join_replaces_first() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client.join("room:a", "1").await;
    client
        .send(Some("3"), Some("3"), "room:a", "phx_join", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!(["1", "1", "room:a", "phx_close", {}])
    );
    assert_eq!(
        client.recv().await,
        json!(["3", "3", "room:a", "phx_reply", ok(json!({}))])
    );
    assert_eq!(hub.service().member_count("room:a"), 1);
}

#[actix_web::test]
async fn phx_s8_stale_join_ref_is_ignored() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    join_twice(&mut client).await;
    client
        .send(Some("1"), Some("5"), "room:a", "ping", json!({}))
        .await;
    client
        .send(None, Some("6"), "phoenix", "heartbeat", json!({}))
        .await;
    let next = client.recv().await;
    assert_eq!(next[1], "6", "nothing answered the stale message: {next}");
    assert_eq!(
        hub.service().stats().problems(FrameProblem::StaleJoinRef),
        1
    );
}

#[actix_web::test]
async fn phx_s9_leave_then_close_and_leave_of_unjoined() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client.join("room:a", "1").await;
    client
        .send(Some("1"), Some("2"), "room:a", "phx_leave", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!(["1", "2", "room:a", "phx_reply", ok(json!({}))])
    );
    assert_eq!(
        client.recv().await,
        json!(["1", "1", "room:a", "phx_close", {}])
    );
    assert_eq!(hub.service().member_count("room:a"), 0);
    client
        .send(Some("4"), Some("4"), "room:b", "phx_leave", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!(["4", "4", "room:b", "phx_reply", ok(json!({}))])
    );
}

#[actix_web::test]
async fn phx_s10_failing_handler_errors_its_topic_only() {
    let hub = start_hub_with(&test_config(), awkward_router());
    let mut client = Client::to(&hub).await;
    client.join("room:a", "1").await;
    client.join("awkward:1", "2").await;
    client.join("awkward:2", "3").await;
    client
        .send(Some("2"), Some("4"), "awkward:1", "boom", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!(["2", "2", "awkward:1", "phx_error", {"reason": "boom requested"}])
    );
    client
        .send(Some("3"), Some("5"), "awkward:2", "panic", json!({}))
        .await;
    assert_eq!(client.recv().await[3], "phx_error");
    client
        .send(Some("1"), Some("6"), "room:a", "ping", json!({"n": 1}))
        .await;
    assert_eq!(
        client.recv().await,
        json!(["1", "6", "room:a", "phx_reply", ok(json!({"n": 1}))])
    );
    client
        .send(Some("2"), Some("7"), "awkward:1", "echo", json!({}))
        .await;
    assert_eq!(
        client.recv().await[4],
        error("unmatched topic"),
        "the failed topic was left"
    );
    assert_eq!(
        hub.service().stats().problems(FrameProblem::HandlerFailed),
        2
    );
}

#[actix_web::test]
async fn phx_s11_channel_cap() {
    let mut config = test_config();
    config.server.max_channels_per_socket = 2;
    let hub = start_hub(&config);
    let mut client = Client::to(&hub).await;
    client.join("room:1", "1").await;
    client.join("room:2", "2").await;
    assert_eq!(
        client.join("room:3", "3").await,
        json!([
            "3",
            "3",
            "room:3",
            "phx_reply",
            error("too many channels joined")
        ])
    );
}

#[actix_web::test]
async fn phx_s12_push_carries_join_ref_broadcast_does_not() {
    let hub = start_hub_with(&test_config(), awkward_router());
    let mut alice = Client::to(&hub).await;
    let mut bob = Client::to(&hub).await;
    alice.join("awkward:x", "11").await;
    bob.join("awkward:x", "21").await;
    alice
        .send(Some("11"), Some("12"), "awkward:x", "whoami", json!({}))
        .await;
    let push = alice.recv().await;
    assert_eq!(
        (push[0].clone(), push[1].clone(), push[3].clone()),
        (json!("11"), Value::Null, json!("you_are"))
    );
    let delivered = hub
        .service()
        .hub()
        .send(Broadcast {
            topic: "awkward:x".into(),
            event: "news".into(),
            payload: json!({"n": 1}),
        })
        .await
        .unwrap();
    assert_eq!(delivered, 2);
    let expected = json!([null, null, "awkward:x", "news", {"n": 1}]);
    assert_eq!(alice.recv().await, expected);
    assert_eq!(bob.recv().await, expected);
}

#[actix_web::test]
async fn phx_s12_room_events_broadcast_to_sender_too() {
    let hub = start_hub_with(
        &test_config(),
        ChannelRouter::new().route("room:*", RoomChannel),
    );
    let mut alice = Client::to(&hub).await;
    let mut bob = Client::to(&hub).await;
    alice.join("room:x", "1").await;
    bob.join("room:x", "1").await;
    alice
        .send(
            Some("1"),
            Some("2"),
            "room:x",
            "shout",
            json!({"body": "hi"}),
        )
        .await;
    let push = json!([null, null, "room:x", "shout", {"body": "hi"}]);
    let mut alice_frames = vec![alice.recv().await, alice.recv().await];
    alice_frames.sort_by_key(|frame| frame[3].as_str().map(str::to_owned));
    assert_eq!(
        alice_frames,
        vec![
            json!(["1", "2", "room:x", "phx_reply", ok(json!({}))]),
            push.clone()
        ]
    );
    assert_eq!(bob.recv().await, push);
}

#[actix_web::test]
async fn phx_s13_shutdown_closes_with_1012_in_batches() {
    let mut config = test_config();
    config.server.shutdown_batch = 2;
    config.server.shutdown_batch_interval = Duration::from_millis(100);
    let hub = start_hub(&config);
    let mut waiters = Vec::new();
    for _ in 0..6 {
        let mut client = Client::to(&hub).await;
        client.join("room:a", "1").await;
        waiters.push(actix_web::rt::spawn(async move {
            let code = client.expect_close().await;
            (code, Instant::now())
        }));
    }
    hub.shutdown().await;
    let mut arrivals = Vec::new();
    for waiter in waiters {
        let (code, at) = waiter.await.unwrap();
        assert_eq!(code, Some(1012), "restart, never 1000");
        arrivals.push(at);
    }
    arrivals.sort();
    // Three batches, 100 ms apart: the last close comes well after the first.
    let spread = arrivals[5] - arrivals[0];
    assert!(
        spread >= Duration::from_millis(150),
        "closes came within {spread:?}"
    );
}

#[actix_web::test]
async fn phx_s5_join_that_panics_answers_join_crashed() {
    let hub = start_hub_with(&test_config(), awkward_router());
    let mut client = Client::to(&hub).await;
    assert_eq!(
        client.join("awkward:crash", "1").await,
        json!([
            "1",
            "1",
            "awkward:crash",
            "phx_reply",
            error("join crashed")
        ])
    );
    assert_eq!(client.join("room:a", "2").await[4], ok(json!({})));
}

#[actix_web::test]
async fn phx_s8_stale_leave_is_ignored() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    join_twice(&mut client).await;
    client
        .send(Some("1"), Some("3"), "room:a", "phx_leave", json!({}))
        .await;
    client
        .send(
            Some("2"),
            Some("4"),
            "room:a",
            "ping",
            json!({"still": "joined"}),
        )
        .await;
    assert_eq!(
        client.recv().await,
        json!([
            "2",
            "4",
            "room:a",
            "phx_reply",
            ok(json!({"still": "joined"}))
        ])
    );
}

#[actix_web::test]
async fn health_reports_draining_with_503() {
    let hub = start_hub(&test_config());
    let url = format!("http://{}/health", hub.addr());
    let serving = awc::Client::new().get(&url).send().await.unwrap();
    assert_eq!(serving.status().as_u16(), 200);
    hub.service().refuse_new_sockets();
    let mut draining = awc::Client::new().get(&url).send().await.unwrap();
    assert_eq!(draining.status().as_u16(), 503);
    let report: Value = draining.json().await.unwrap();
    assert_eq!(report["status"], "draining");
    assert_eq!(refused_status(v2_url(&hub)).await, 503);
}

#[actix_web::test]
async fn metrics_endpoint_exports_prometheus_text() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client.send_text("not json").await;
    client
        .send(None, Some("1"), "phoenix", "heartbeat", json!({}))
        .await;
    client.recv().await;
    let url = format!("http://{}/metrics", hub.addr());
    let mut response = awc::Client::new().get(&url).send().await.unwrap();
    let body = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    assert!(
        body.contains("switchboard_frames_rejected_total{reason=\"invalid_json\"}"),
        "{body}"
    );
}

#[actix_web::test]
async fn phx_s14_a_member_cannot_send_a_reserved_event_and_no_one_receives_it() {
    let hub = start_hub(&test_config());
    let mut attacker = Client::to(&hub).await;
    let mut victim = Client::to(&hub).await;
    attacker.join("room:a", "1").await;
    victim.join("room:a", "1").await;
    let reserved = [
        "phx_close",
        "phx_error",
        "phx_reply",
        "presence_diff",
        "chan_reply_2",
    ];
    for (n, event) in reserved.iter().enumerate() {
        let msg_ref = (n + 2).to_string();
        attacker
            .send(Some("1"), Some(&msg_ref), "room:a", event, json!({}))
            .await;
        assert_eq!(
            attacker.recv().await,
            json!(["1", msg_ref, "room:a", "phx_reply", error("reserved event")]),
            "{event} is refused"
        );
    }
    // The next thing the victim hears is an ordinary broadcast.
    attacker
        .send(Some("1"), Some("9"), "room:a", "shout", json!({"n": 1}))
        .await;
    let heard = victim.recv().await;
    assert_eq!(heard, json!([null, null, "room:a", "shout", {"n": 1}]));
    assert_eq!(
        hub.service().stats().problems(FrameProblem::ReservedEvent),
        5
    );
}

#[actix_web::test]
async fn phx_s14_no_broadcast_carries_a_reserved_event() {
    let hub = start_hub(&test_config());
    let mut member = Client::to(&hub).await;
    member.join("room:a", "1").await;
    let service = hub.service();
    assert_eq!(service.broadcast("room:a", "phx_close", &json!({})), 0);
    assert_eq!(service.broadcast("room:a", "presence_state", &json!({})), 0);
    let delivered = service
        .hub()
        .send(Broadcast {
            topic: "room:a".into(),
            event: "phx_error".into(),
            payload: json!({}),
        })
        .await
        .unwrap();
    assert_eq!(delivered, 0, "the hub actor refuses it too");
    assert_eq!(service.broadcast("room:a", "news", &json!({"n": 1})), 1);
    assert_eq!(
        member.recv().await,
        json!([null, null, "room:a", "news", {"n": 1}]),
        "only the ordinary broadcast arrived"
    );
}

#[actix_web::test]
async fn sec_5_health_and_metrics_can_require_an_admin_token() {
    switchboard::install_prometheus_recorder();
    let hub = switchboard::server::HubService::builder(&test_config())
        .admin_token("ops-secret")
        .start()
        .expect("hub starts");
    for route in ["health", "metrics"] {
        let url = format!("http://{}/{route}", hub.addr());
        let anonymous = awc::Client::new().get(&url).send().await.unwrap();
        assert_eq!(
            anonymous.status().as_u16(),
            401,
            "{route} without the token"
        );
        let wrong = awc::Client::new()
            .get(&url)
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{route} with a wrong token");
        let admin = awc::Client::new()
            .get(&url)
            .bearer_auth("ops-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status().as_u16(), 200, "{route} with the token");
    }
    // The sockets themselves are not behind it.
    let _client = Client::to(&hub).await;
}
