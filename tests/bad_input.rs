//! Bad input never takes the hub down nor touches sibling sockets: each case
//! is counted and answered as Phoenix would, or closed with the right code.

mod support;

use serde_json::json;
use support::*;
use switchboard::server::{CloseCause, FrameProblem, RunningHub};
use tokio_tungstenite::tungstenite::Message;

/// A sibling socket, joined before the abuse, still answers afterwards.
async fn sibling(hub: &RunningHub) -> Client {
    let mut client = Client::to(hub).await;
    client.join("room:sibling", "1").await;
    client
}

async fn assert_alive(client: &mut Client, tag: &str) {
    client
        .send(None, Some(tag), "phoenix", "heartbeat", json!({}))
        .await;
    assert_eq!(client.recv().await[1], tag, "socket still answers");
}

#[actix_web::test]
async fn malformed_json_is_counted_and_dropped() {
    let hub = start_hub(&test_config());
    let mut other = sibling(&hub).await;
    let mut client = Client::to(&hub).await;
    for text in ["{", "[1,2", "", "\u{0}", "nul"] {
        client.send_text(text).await;
    }
    assert_alive(&mut client, "a").await;
    assert_alive(&mut other, "b").await;
    assert_eq!(hub.service().stats().problems(FrameProblem::InvalidJson), 5);
}

#[actix_web::test]
async fn wrong_arity_and_wrong_types_are_counted() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    for text in [
        "[]",
        r#"["1"]"#,
        r#"[null,"1","room:a","phx_join"]"#,
        r#"[null,"1",7,"phx_join",{}]"#,
        r#"[null,"1","room:a",false,{}]"#,
        r#"[1,"1","room:a","phx_join",{}]"#,
        r#"{"topic":"room:a"}"#,
        "42",
    ] {
        client.send_text(text).await;
    }
    assert_alive(&mut client, "a").await;
    assert_eq!(hub.service().stats().problems(FrameProblem::Malformed), 8);
}

#[actix_web::test]
async fn non_object_payload_is_answered_invalid() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client
        .send(Some("1"), Some("1"), "room:a", "phx_join", json!([1, 2]))
        .await;
    assert_eq!(
        client.recv().await,
        json!(["1", "1", "room:a", "phx_reply", error("invalid")])
    );
    client.join("room:a", "2").await;
    client
        .send(Some("2"), Some("3"), "room:a", "ping", json!("text"))
        .await;
    assert_eq!(
        client.recv().await,
        json!(["2", "3", "room:a", "phx_reply", error("invalid")])
    );
    assert_eq!(
        hub.service().stats().problems(FrameProblem::InvalidPayload),
        2
    );
}

#[actix_web::test]
async fn oversized_frame_closes_with_1009_only_that_socket() {
    let mut config = test_config();
    config.server.max_frame_bytes = 1024;
    let hub = start_hub(&config);
    let mut other = sibling(&hub).await;
    let mut client = Client::to(&hub).await;
    let huge = json!([null, "1", "room:a", "ping", {"blob": "x".repeat(4096)}]).to_string();
    client.send_text(huge).await;
    assert_eq!(client.expect_close().await, Some(1009));
    assert_alive(&mut other, "b").await;
    assert_eq!(hub.service().stats().closes(CloseCause::FrameTooLarge), 1);
}

#[actix_web::test]
async fn binary_frame_closes_with_1003() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client.send_message(Message::Binary(vec![1, 2, 3])).await;
    assert_eq!(client.expect_close().await, Some(1003));
    assert_eq!(hub.service().stats().closes(CloseCause::BinaryFrame), 1);
}

#[actix_web::test]
async fn unknown_event_on_unjoined_topic_is_unmatched() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    client
        .send(None, Some("9"), "room:never", "whatever", json!({}))
        .await;
    assert_eq!(
        client.recv().await,
        json!([
            null,
            "9",
            "room:never",
            "phx_reply",
            error("unmatched topic")
        ])
    );
    assert_eq!(
        hub.service().stats().problems(FrameProblem::UnmatchedTopic),
        1
    );
}

#[actix_web::test]
async fn flood_of_joins_is_capped_and_answered() {
    let hub = start_hub(&test_config());
    let mut other = sibling(&hub).await;
    let mut client = Client::to(&hub).await;
    let joins = 1_000;
    for n in 0..joins {
        let r = n.to_string();
        client
            .send(
                Some(&r),
                Some(&r),
                &format!("room:{n}"),
                "phx_join",
                json!({}),
            )
            .await;
    }
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..joins {
        match client.recv().await[4]["status"].as_str() {
            Some("ok") => accepted += 1,
            _ => refused += 1,
        }
    }
    assert_eq!((accepted, refused), (100, 900));
    assert_alive(&mut client, "a").await;
    assert_alive(&mut other, "b").await;
    assert_eq!(
        hub.service()
            .stats()
            .problems(FrameProblem::TooManyChannels),
        900
    );
}

#[actix_web::test]
async fn refused_upgrades_answer_401_403_503() {
    let mut config = test_config();
    config.server.max_connections = 1;
    let hub = start_hub_with_credentials(&config, bearer("right"));
    let url = |token: &str| format!("{}&token={token}", v2_url(&hub));
    assert_eq!(refused_status(url("wrong")).await, 401);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url(
            "right",
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    assert_eq!(refused_status(request).await, 403);
    let _first = Client::connect(url("right")).await;
    assert_eq!(refused_status(url("right")).await, 503);
}

#[actix_web::test]
async fn abrupt_disconnect_frees_the_slot_and_the_membership() {
    let hub = start_hub(&test_config());
    let service = hub.service().clone();
    let mut client = Client::to(&hub).await;
    client.join("room:gone", "1").await;
    assert_eq!(service.connections(), 1);
    drop(client); // TCP dropped, no close frame
    assert!(
        eventually(|| service.connections() == 0).await,
        "slot freed"
    );
    assert_eq!(service.member_count("room:gone"), 0);
    assert_eq!(hub.service().stats().closes(CloseCause::ProtocolError), 0);
}

#[actix_web::test]
async fn basic_auth_checked_before_upgrade() {
    use base64::Engine;
    let credentials = switchboard::server::Credentials::Basic {
        username: b"ann".to_vec(),
        password: b"pw".to_vec(),
    };
    let hub = start_hub_with_credentials(&test_config(), credentials);
    let with = |pair: &str| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(v2_url(
                &hub,
            ))
            .unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        let value = format!("Basic {encoded}").parse().unwrap();
        request.headers_mut().insert("authorization", value);
        request
    };
    let mut client = Client::connect(with("ann:pw")).await;
    assert_alive(&mut client, "a").await;
    assert_eq!(refused_status(with("ann:nope")).await, 401);
    assert_eq!(refused_status(v2_url(&hub)).await, 401);
}

#[actix_web::test]
async fn invalid_utf8_text_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    let frame = Frame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
    client.send_message(Message::Frame(frame)).await;
    assert_eq!(client.expect_close().await, Some(1007));
    assert_eq!(hub.service().stats().closes(CloseCause::InvalidText), 1);
}

#[actix_web::test]
async fn oversized_fragmented_message_closes_with_1009() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let mut config = test_config();
    config.server.max_frame_bytes = 1024;
    let hub = start_hub(&config);
    let mut client = Client::to(&hub).await;
    let part = vec![b'x'; 800];
    let first = Frame::message(part.clone(), OpCode::Data(Data::Text), false);
    let last = Frame::message(part, OpCode::Data(Data::Continue), true);
    client.send_message(Message::Frame(first)).await;
    client.send_message(Message::Frame(last)).await;
    assert_eq!(client.expect_close().await, Some(1009));
    assert_eq!(hub.service().stats().closes(CloseCause::FrameTooLarge), 1);
}

#[actix_web::test]
async fn pings_are_answered_with_pongs() {
    use futures_util::{SinkExt, StreamExt};
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    let ws = client.inner();
    ws.send(Message::Ping(b"are you there".to_vec()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer, Message::Pong(b"are you there".to_vec()));
}

#[actix_web::test]
async fn oversized_topic_event_or_ref_is_dropped() {
    let hub = start_hub(&test_config());
    let mut client = Client::to(&hub).await;
    let long = "x".repeat(300);
    client
        .send(
            Some("1"),
            Some("1"),
            &format!("room:{long}"),
            "phx_join",
            json!({}),
        )
        .await;
    client
        .send(Some("1"), Some("2"), "room:a", &long, json!({}))
        .await;
    client
        .send(Some(&long), Some("3"), "room:a", "phx_join", json!({}))
        .await;
    assert_alive(&mut client, "a").await;
    assert_eq!(hub.service().stats().problems(FrameProblem::Malformed), 3);
    assert_eq!(hub.service().topic_count(), 0);
}

/// The status of an upgrade request to `hub` carrying `origin` and `host`.
async fn upgrade_status(hub: &RunningHub, origin: &str, host: &str) -> u16 {
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(v2_url(hub))
            .unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", origin.parse().unwrap());
    headers.insert("host", host.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected: {other}"),
    }
}

#[actix_web::test]
async fn sec_3_same_origin_is_the_bound_address_not_the_host_header() {
    let hub = start_hub(&test_config());
    let port = hub.addr().port();
    // The DNS-rebinding pattern: Origin and Host agree, and both lie.
    let evil = format!("evil.example:{port}");
    assert_eq!(
        upgrade_status(&hub, &format!("http://{evil}"), &evil).await,
        403
    );
    let loopback = format!("127.0.0.1:{port}");
    for scheme in ["ftp", "chrome-extension"] {
        let origin = format!("{scheme}://{loopback}");
        assert_eq!(
            upgrade_status(&hub, &origin, &loopback).await,
            403,
            "{origin}"
        );
    }
    // The hub's own origin, by any loopback name, is the same origin.
    for name in ["127.0.0.1", "localhost", "[::1]"] {
        let origin = format!("http://{name}:{port}");
        assert_eq!(
            upgrade_status(&hub, &origin, &loopback).await,
            101,
            "{origin}"
        );
    }
    assert_eq!(
        hub.service()
            .stats()
            .refusals(switchboard::server::Refusal::Origin),
        3
    );
}

#[actix_web::test]
async fn sec_5_a_query_string_past_the_cap_is_refused_with_414_before_it_is_kept() {
    let hub = start_hub(&test_config());
    let long = "x".repeat(60 * 1024);
    let phoenix = format!("{}&pad={long}", v2_url(&hub));
    assert_eq!(refused_status(phoenix).await, 414);
    let ingest = format!("ws://{}/ingest?pad={long}", hub.addr());
    assert_eq!(refused_status(ingest).await, 414);
    assert_eq!(
        hub.service()
            .stats()
            .refusals(switchboard::server::Refusal::QueryTooLong),
        2
    );
    // A query within the cap still connects.
    let _fine = Client::connect(format!("{}&pad={}", v2_url(&hub), "x".repeat(1000))).await;
}
