//! TLS (NET-11): a hub serving `wss://` from `[server.tls]`, the supervised
//! client over `wss://` with a CA of the test's own, and an untrusted
//! certificate as a terminal error. Certificates are made here, per run.

mod support;

use std::path::PathBuf;

use serde_json::json;
use support::client::*;
use support::fault_proxy::{Cut, FaultProxy};
use support::peers::{node_ready, PhoenixPeer};
use support::*;
use switchboard::client::{ConnectEvent, ConnectionStatus, DialErrorKind, Open, OpenError};
use switchboard::config::{Config, ServerTlsConfig};
use switchboard::protocol::phoenix::ReplyStatus;
use switchboard::server::{BuildError, HubService, RunningHub};

/// A CA, and a certificate for 127.0.0.1 and localhost signed by it, as
/// PEM files in a temporary directory.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn new() -> Certificates {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "switchboard test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("server key");
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let server = rcgen::CertificateParams::new(names).expect("server params");
        let cert = server
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("server certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("hub.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("hub.key"), key.serialize_pem()).unwrap();
        // A client certificate from the same CA, for mutual TLS.
        let client_key = rcgen::KeyPair::generate().expect("client key");
        let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        client
            .distinguished_name
            .push(rcgen::DnType::CommonName, "switchboard test client");
        let client = client
            .signed_by(&client_key, &ca_cert, &ca_key)
            .expect("client certificate");
        std::fs::write(dir.path().join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig {
            cert_file: self.path("hub.pem"),
            key_file: self.path("hub.key"),
            client_ca_file: None,
        }
    }
}

fn tls_hub(certs: &Certificates) -> RunningHub {
    let mut config = test_config();
    config.server.tls = Some(certs.server());
    start_hub(&config)
}

#[actix_web::test]
async fn net_11_the_client_joins_pushes_and_rejoins_after_a_cut_over_wss() {
    let certs = Certificates::new();
    let hub = tls_hub(&certs);
    assert!(
        hub.socket_url().starts_with("wss://"),
        "{}",
        hub.socket_url()
    );
    let proxy = FaultProxy::start(hub.addr());
    let board = switchboard();
    let mut config = fast_config(&format!("wss://{}/socket/websocket", proxy.addr()));
    config.tls.ca_file = Some(certs.path("ca.pem"));
    let handle = open(&board, config).await;
    let mut events = handle.events();
    wait_connected(&handle).await;
    handle.join("room:lobby", json!({})).await.expect("joined");
    let reply = handle
        .push("room:lobby", "shout", json!({"body": "over tls"}))
        .await
        .expect("a reply");
    assert_eq!(reply.status, ReplyStatus::Ok, "{reply:?}");
    proxy.cut_all(Cut::Reset);
    let rejoined = wait_for(&mut events, |event| match event {
        ConnectEvent::Rejoined { topic, .. } => Some(topic.clone()),
        _ => None,
    })
    .await;
    assert_eq!(rejoined, "room:lobby");
    let reply = handle
        .push("room:lobby", "shout", json!({"body": "again"}))
        .await
        .expect("a reply after the rejoin");
    assert_eq!(reply.status, ReplyStatus::Ok);
    assert!(proxy.accepted() >= 2, "it dialled again through the proxy");
}

#[actix_web::test]
async fn net_11_an_untrusted_certificate_is_a_terminal_typed_error_after_one_dial() {
    let certs = Certificates::new();
    let hub = tls_hub(&certs);
    let proxy = FaultProxy::start(hub.addr());
    let url = format!("wss://{}/socket/websocket", proxy.addr());
    let board = switchboard();
    // With fail_first_connect the error reaches the caller, typed.
    let mut config = fast_config(&url);
    config.fail_first_connect = true;
    let outcome = board.send(Open(config)).await.expect("switchboard alive");
    match outcome {
        Err(OpenError::FirstConnect(error)) => {
            assert!(
                matches!(error.kind(), DialErrorKind::Tls { .. }),
                "{error:?}"
            );
            assert!(error.to_string().starts_with("TLS failed"), "{error}");
        }
        other => panic!("expected a TLS error, got {:?}", other.err()),
    }
    // Without it, the connection closes for good after that one dial.
    let handle = open(&board, fast_config(&url)).await;
    let mut events = handle.events();
    let reason = wait_for(&mut events, |event| match event {
        ConnectEvent::Closed { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("TLS failed"), "{reason}");
    assert_eq!(handle.status(), ConnectionStatus::Closed);
    assert_eq!(proxy.accepted(), 2, "one dial each, never a second");
}

#[actix_web::test]
async fn net_11_bad_tls_files_stop_the_start_naming_the_key() {
    let certs = Certificates::new();
    let mut config: Config = test_config();
    config.server.tls = Some(ServerTlsConfig {
        key_file: certs.path("missing.key"),
        ..certs.server()
    });
    let error = HubService::builder(&config).check().unwrap_err();
    assert!(matches!(error, BuildError::Tls(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("server.tls.key_file"),
        "{error}"
    );
    config.server.tls = Some(ServerTlsConfig {
        cert_file: certs.path("hub.key"),
        ..certs.server()
    });
    let error = HubService::builder(&config).check().unwrap_err();
    assert!(
        error.to_string().starts_with("server.tls.cert_file"),
        "{error}"
    );
}

#[actix_web::test]
async fn net_11_phoenix_js_joins_and_pushes_over_wss_with_the_test_ca() {
    if !node_ready("net_11_phoenix_js_joins_and_pushes_over_wss_with_the_test_ca") {
        return;
    }
    let certs = Certificates::new();
    let hub = tls_hub(&certs);
    let ca = certs.path("ca.pem");
    let env = [("NODE_EXTRA_CA_CERTS", ca.as_os_str())];
    for scenario in ["join", "ping"] {
        let peer = PhoenixPeer::start_with_env(scenario, &hub.socket_url(), &[], &env);
        let result = peer.result().await;
        eprintln!("phoenix.js {scenario} over wss: {result}");
    }
    hub.shutdown().await;
}

#[actix_web::test]
async fn net_11_with_a_client_ca_only_clients_with_a_certificate_get_through() {
    let certs = Certificates::new();
    let mut config = test_config();
    config.server.tls = Some(ServerTlsConfig {
        client_ca_file: Some(certs.path("ca.pem")),
        ..certs.server()
    });
    let hub = start_hub(&config);
    let url = format!("wss://127.0.0.1:{}/socket/websocket", hub.addr().port());
    let board = switchboard();

    // No client certificate: no socket.
    let mut anonymous = fast_config(&url);
    anonymous.tls.ca_file = Some(certs.path("ca.pem"));
    anonymous.fail_first_connect = true;
    let refused = board
        .send(Open(anonymous))
        .await
        .expect("switchboard alive");
    assert!(
        matches!(refused, Err(OpenError::FirstConnect(_))),
        "{:?}",
        refused.err()
    );
    assert_eq!(hub.service().connections(), 0);

    // With one signed by the client CA: joins and pushes.
    let mut config = fast_config(&url);
    config.tls.ca_file = Some(certs.path("ca.pem"));
    config.tls.cert_file = Some(certs.path("client.pem"));
    config.tls.key_file = Some(certs.path("client.key"));
    let handle = open(&board, config).await;
    handle.join("room:mtls", json!({})).await.expect("joins");
    let reply = handle
        .push("room:mtls", "ping", json!({"n": 1}))
        .await
        .expect("a reply");
    assert_eq!(reply.status, ReplyStatus::Ok);
    assert_eq!(reply.response, json!({"n": 1}));
}
