//! PHX-S19. The long-poll transport, as phoenix.js's `LongPoll` speaks it:
//! a session opened by a GET, fed by POSTs of newline-separated frames,
//! drained by GETs, a full hub member that a WebSocket member hears and
//! is heard by; unknown tokens answer 410, refused credentials 403.

mod support;

use serde_json::{json, Value};
use support::peers::{node_ready, PhoenixPeer};
use support::*;
use switchboard::server::RunningHub;

struct LongPoll {
    base: String,
    token: String,
}

async fn get(url: &str) -> Value {
    let mut response = awc::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("JSON")
}

impl LongPoll {
    async fn open(hub: &RunningHub) -> LongPoll {
        let base = format!("http://{}/socket/longpoll?vsn=2.0.0", hub.addr());
        let opened = get(&base).await;
        assert_eq!(opened["status"], 410, "{opened}");
        let token = opened["token"].as_str().expect("a token").to_owned();
        LongPoll { base, token }
    }

    async fn post(&self, frames: &[Value]) -> Value {
        let body: Vec<String> = frames.iter().map(Value::to_string).collect();
        let mut response = awc::Client::new()
            .post(format!("{}&token={}", self.base, self.token))
            .insert_header(("content-type", "application/x-ndjson"))
            .send_body(body.join("\n"))
            .await
            .expect("answered");
        response.json().await.expect("JSON")
    }

    /// Polls until a frame `wanted` accepts arrives (at most 10 polls).
    async fn until(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..10 {
            let polled = get(&format!("{}&token={}", self.base, self.token)).await;
            for message in polled["messages"].as_array().cloned().unwrap_or_default() {
                let frame: Value =
                    serde_json::from_str(message.as_str().expect("text")).expect("a frame");
                if wanted(&frame) {
                    return frame;
                }
            }
        }
        panic!("not polled in time");
    }
}

#[actix_web::test]
async fn phx_s19_a_long_poll_session_is_a_full_member() {
    let hub = start_hub(&test_config());
    let poll = LongPoll::open(&hub).await;
    assert_eq!(hub.service().connections(), 1, "it holds a connection slot");
    let posted = poll
        .post(&[json!(["1", "1", "room:lp", "phx_join", {}])])
        .await;
    assert_eq!(posted["status"], 200, "{posted}");
    let reply = poll.until(|frame: &Value| frame[3] == "phx_reply").await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");

    // A WebSocket member hears the long-poll member, and the other way.
    let mut ws = Client::to(&hub).await;
    ws.join("room:lp", "9").await;
    poll.post(&[json!(["1", "2", "room:lp", "shout", {"from": "longpoll"}])])
        .await;
    let heard = loop {
        let frame = ws.recv().await;
        if frame[3] == "shout" {
            break frame;
        }
    };
    assert_eq!(heard[4], json!({"from": "longpoll"}));
    ws.send(
        Some("9"),
        Some("3"),
        "room:lp",
        "shout",
        json!({"from": "ws"}),
    )
    .await;
    let shout = poll
        .until(|frame: &Value| frame[3] == "shout" && frame[4]["from"] == "ws")
        .await;
    assert_eq!(shout[4], json!({"from": "ws"}));

    // An unknown token is a session gone.
    let gone = get(&format!("{}&token=nope", poll.base)).await;
    assert_eq!(gone["status"], 410);
}

#[actix_web::test]
async fn phx_s19_long_poll_admission_is_the_websocket_endpoints() {
    let hub = start_hub_with_credentials(&test_config(), bearer("tok"));
    let base = format!("http://{}/socket/longpoll?vsn=2.0.0", hub.addr());
    assert_eq!(get(&base).await["status"], 403, "no credentials");
    let mut response = awc::Client::new()
        .get(&base)
        .insert_header(("x-phoenix-authtoken", "tok"))
        .send()
        .await
        .expect("answered");
    let opened: Value = response.json().await.expect("JSON");
    assert_eq!(opened["status"], 410, "{opened}");
    let wrong_version = format!("http://{}/socket/longpoll?vsn=1.0.0", hub.addr());
    assert_eq!(get(&wrong_version).await["status"], 403);
    // CORS for an allowed origin, nothing for another.
    let preflight = awc::Client::new()
        .request(actix_web::http::Method::OPTIONS, &base)
        .insert_header(("origin", format!("http://{}", hub.addr())))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some(format!("http://{}", hub.addr()))
    );
    let elsewhere = awc::Client::new()
        .request(actix_web::http::Method::OPTIONS, &base)
        .insert_header(("origin", "http://elsewhere.example"))
        .send()
        .await
        .expect("answered");
    assert!(elsewhere
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[actix_web::test]
async fn phx_s19_phoenix_js_long_poll_and_websocket_clients_hear_each_other() {
    if !node_ready("phx_s19_phoenix_js_long_poll_and_websocket_clients_hear_each_other") {
        return;
    }
    let hub = start_hub(&test_config());
    let result = PhoenixPeer::longpoll("chat", &hub.socket_url())
        .result()
        .await;
    assert_eq!(result["lp"]["from"], "ws", "{result}");
    assert_eq!(result["ws"]["from"], "longpoll", "{result}");
}

#[actix_web::test]
async fn phx_s19_phoenix_js_with_long_poll_fallback_rejoins_after_a_hub_restart() {
    if !node_ready("phx_s19_phoenix_js_with_long_poll_fallback_rejoins_after_a_hub_restart") {
        return;
    }
    let first = start_hub(&test_config());
    let addr = first.addr();
    let mut peer = PhoenixPeer::longpoll("fallback", &first.socket_url());
    assert_eq!(peer.next_line().await["event"], "joined");
    first.shutdown().await;
    // Down long enough for phoenix.js to fall back to long-poll.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let mut config = test_config();
    config.server.listen = addr.to_string();
    let second = start_hub(&config);
    let result = peer.result().await;
    assert_eq!(result["ok"], true, "{result}");
    eprintln!("rejoined over {}", result["transport"]);
    second.shutdown().await;
}

#[actix_web::test]
async fn phx_s19_a_session_without_polls_expires_and_health_answers_cors() {
    let mut config = test_config();
    config.server.longpoll_window = std::time::Duration::from_millis(300);
    let hub = start_hub(&config);
    let poll = LongPoll::open(&hub).await;
    assert_eq!(hub.service().connections(), 1);
    // No poll within the window: the session goes, and its slot with it.
    assert!(
        eventually(|| hub.service().connections() == 0).await,
        "the idle session was closed"
    );
    let gone = get(&format!("{}&token={}", poll.base, poll.token)).await;
    assert_eq!(gone["status"], 410);

    let own = format!("http://{}", hub.addr());
    let health = awc::Client::new()
        .get(format!("{own}/health"))
        .insert_header(("origin", own.as_str()))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        health
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(own.as_str())
    );
}
