//! The official phoenix.js client (npm `phoenix` over `ws`) against the hub.

mod support;

use support::peers::{node_ready, run_scenario, PhoenixPeer};
use support::*;

async fn scenario_against_default_hub(test: &str, scenario: &str, extra: &[&str]) {
    if !node_ready(test) {
        return;
    }
    let hub = start_hub(&test_config());
    let result = run_scenario(scenario, &hub.socket_url(), extra).await;
    eprintln!("{test}: {result}");
    hub.shutdown().await;
}

#[actix_web::test]
async fn phoenix_js_join() {
    scenario_against_default_hub("phoenix_js_join", "join", &[]).await;
}

#[actix_web::test]
async fn phoenix_js_push_reply_round_trip() {
    scenario_against_default_hub("phoenix_js_push_reply_round_trip", "ping", &[]).await;
}

#[actix_web::test]
async fn phoenix_js_broadcast_to_several_members() {
    scenario_against_default_hub(
        "phoenix_js_broadcast_to_several_members",
        "broadcast",
        &["--count", "5"],
    )
    .await;
}

#[actix_web::test]
async fn phoenix_js_unmatched_topic() {
    scenario_against_default_hub("phoenix_js_unmatched_topic", "unmatched", &[]).await;
}

#[actix_web::test]
async fn phoenix_js_duplicate_join() {
    scenario_against_default_hub("phoenix_js_duplicate_join", "duplicate_join", &[]).await;
}

#[actix_web::test]
async fn phoenix_js_leave() {
    scenario_against_default_hub("phoenix_js_leave", "leave", &[]).await;
}

#[actix_web::test]
async fn phoenix_js_heartbeat() {
    scenario_against_default_hub("phoenix_js_heartbeat", "heartbeat", &[]).await;
}

#[actix_web::test]
async fn phoenix_js_rtt_1000_sequential_pushes() {
    scenario_against_default_hub(
        "phoenix_js_rtt_1000_sequential_pushes",
        "rtt",
        &["--count", "1000"],
    )
    .await;
}

#[actix_web::test]
async fn phoenix_js_token_accepted() {
    if !node_ready("phoenix_js_token_accepted") {
        return;
    }
    // `~` encodes to `+` in standard base64, which phoenix.js uses.
    let token = "tok~~~with/odd+chars";
    let hub = start_hub_with_credentials(&test_config(), bearer(token));
    run_scenario("auth_ok", &hub.socket_url(), &["--token", token]).await;
    run_scenario("auth_ok", &hub.socket_url(), &["--token-param", token]).await;
    hub.shutdown().await;
}

#[actix_web::test]
async fn phoenix_js_token_refused() {
    if !node_ready("phoenix_js_token_refused") {
        return;
    }
    let hub = start_hub_with_credentials(&test_config(), bearer("right"));
    let result = run_scenario("auth_refused", &hub.socket_url(), &["--token", "wrong"]).await;
    assert_eq!(result["http_status"], 401, "{result}");
    hub.shutdown().await;
}

#[actix_web::test]
async fn phoenix_js_rejoins_after_hub_restart_on_same_port() {
    if !node_ready("phoenix_js_rejoins_after_hub_restart_on_same_port") {
        return;
    }
    let first = start_hub(&test_config());
    let addr = first.addr();
    let mut peer = PhoenixPeer::start("rejoin", &first.socket_url(), &[]);
    assert_eq!(peer.next_line().await["event"], "joined");
    first.shutdown().await;
    let mut config = test_config();
    config.server.listen = addr.to_string();
    let second = start_hub(&config);
    let result = peer.result().await;
    assert_eq!(result["rejoined"], true, "{result}");
    second.shutdown().await;
}
