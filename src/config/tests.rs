//! Parsing, defaults and validation of the whole config.

use super::*;

#[test]
fn defaults_are_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn toml_durations_and_keys() {
    let config = Config::from_toml(
        "[server]\nidle_timeout = \"5s\"\nallowed_origins = [\"*\"]\n[auth]\ntype = \"bearer\"\n",
    )
    .unwrap();
    assert_eq!(config.server.idle_timeout, Duration::from_secs(5));
    assert_eq!(config.auth.kind, AuthType::Bearer);
    config.validate().unwrap();
}

#[test]
fn backpressure_keys() {
    let config =
        Config::from_toml("[backpressure]\nqueue_size = 10\non_full = \"block\"\n").unwrap();
    assert_eq!(config.backpressure.on_full, OnFull::Block);
    let zero = Config::from_toml("[backpressure]\nqueue_size = 0\n").unwrap();
    assert_eq!(
        zero.validate().unwrap_err().to_string(),
        "backpressure.queue_size must be > 0"
    );
    assert!(Config::from_toml("[backpressure]\non_full = \"explode\"\n").is_err());
}

#[test]
fn sink_section() {
    let config = Config::from_toml(
        "[sink]\ntype = \"jetstream\"\nurl = \"nats://127.0.0.1:4333\"\n[sink.subjects]\ndata = \"d\"\n",
    )
    .unwrap();
    assert_eq!(config.sink.kind, SinkType::Jetstream);
    assert_eq!(config.sink.subjects.data, "d");
    assert_eq!(config.sink.subjects.control, "federated.control");
    let log = Config::from_toml("[sink]\ntype = \"log\"\n").unwrap();
    assert_eq!(log.sink.kind, SinkType::InProcess);
}

#[test]
fn cluster_section() {
    let config = Config::from_toml("[cluster]\nnats_url = \"nats://127.0.0.1:4333\"\n")
        .unwrap()
        .validated()
        .unwrap();
    let cluster = config.cluster.unwrap();
    assert_eq!(cluster.nats_url, "nats://127.0.0.1:4333");
    assert_eq!(cluster.down_after, Duration::from_secs(3));
    assert!(Config::default().cluster.is_none());
    let bad = Config::from_toml("[cluster]\nnode_id = \"a.b\"\n").unwrap();
    let message = bad.validate().unwrap_err().to_string();
    assert!(message.starts_with("cluster.node_id "), "{message}");
    let bad = Config::from_toml("[cluster]\nsubject_prefix = \"sb.>\"\n").unwrap();
    let message = bad.validate().unwrap_err().to_string();
    assert!(message.starts_with("cluster.subject_prefix "), "{message}");
    let bad = Config::from_toml("[cluster]\ndown_after = \"1s\"\n").unwrap();
    let message = bad.validate().unwrap_err().to_string();
    assert!(message.starts_with("cluster.down_after "), "{message}");
}

#[test]
fn json_is_accepted() {
    let config = Config::from_json(r#"{"server":{"max_connections":3}}"#).unwrap();
    assert_eq!(config.server.max_connections, 3);
}

#[test]
fn validation_names_the_key() {
    let config = Config::from_toml("[server]\nmax_connections = 0\n").unwrap();
    let message = config.validate().unwrap_err().to_string();
    assert_eq!(message, "server.max_connections must be > 0");
}

#[test]
fn unknown_keys_are_refused() {
    let message = Config::from_toml("[server]\nmax_conections = 5\n").unwrap_err();
    assert!(message.contains("max_conections"), "{message}");
}

#[test]
fn parse_errors_name_the_key() {
    let message = Config::from_json(r#"{"server":{"idle_timeout":"soon"}}"#).unwrap_err();
    assert!(message.starts_with("server.idle_timeout: "), "{message}");
    let message = Config::from_toml("[server]\nidle_timeout = 5\n").unwrap_err();
    assert!(message.starts_with("server.idle_timeout: "), "{message}");
}

#[test]
fn an_inbound_byte_rate_below_one_frame_is_refused() {
    let text = "[server.inbound_rate]\nbytes_per_second = 1000\n";
    let message = Config::from_toml(text).unwrap().validate().unwrap_err();
    assert!(
        message
            .to_string()
            .starts_with("server.inbound_rate.bytes_per_second "),
        "{message}"
    );
    let text = "[server.inbound_rate]\nbytes_per_second = 2000000\non_exceed = \"close\"\n";
    let config = Config::from_toml(text).unwrap().validated().unwrap();
    assert_eq!(config.server.inbound_rate.on_exceed, OnExceed::Close);
}
