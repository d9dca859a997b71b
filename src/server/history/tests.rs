//! Tests of the topic logs and the hub's histories.

use super::*;

fn log_with(size: usize, messages: u64) -> TopicLog {
    let mut log = TopicLog::new("e".into(), size, usize::MAX);
    for n in 0..messages {
        log.append("t", "ev", &json!({ "n": n }));
    }
    log
}

fn resume(sequence: u64, epoch: &str) -> ResumeRequest {
    ResumeRequest {
        sequence,
        epoch: epoch.into(),
        strict: false,
    }
}

fn sequences(recovery: &Recovery) -> Vec<u64> {
    recovery
        .replay
        .iter()
        .map(|frame| {
            let value: Value = serde_json::from_str(frame).expect("json");
            value[4]["sequence"].as_u64().expect("sequence")
        })
        .collect()
}

#[test]
fn sequences_rise_by_one_and_plain_payloads_are_wrapped() {
    let log = log_with(8, 3);
    let recovery = log.recover(Some(&resume(0, "e")), usize::MAX);
    assert_eq!(sequences(&recovery), vec![1, 2, 3]);
    let frame: Value = serde_json::from_str(&recovery.replay[0]).expect("json");
    assert_eq!(frame[4]["payload"], json!({"n": 0}));
    assert_eq!(frame[4]["producer"], json!(HUB_PRODUCER));
    assert_eq!(frame[4]["epoch"], json!("e"));
}

#[test]
fn a_partial_envelope_is_completed_and_restamped_not_wrapped() {
    let mut log = TopicLog::new("e".into(), 4, usize::MAX);
    let partial = json!({"aspect": "reading", "payload": {"celsius": 21}});
    let frame = log.append("t", "reading", &partial);
    let value: Value = serde_json::from_str(&frame).expect("json");
    let envelope = &value[4];
    assert_eq!(envelope["payload"], json!({"celsius": 21}), "not wrapped");
    assert_eq!(envelope["producer"], json!(HUB_PRODUCER));
    assert!(envelope["produced_at"].as_u64().is_some());
    assert_eq!(envelope["channel"], json!("t"));
    assert_eq!(envelope["sequence"], json!(1));
    assert!(
        crate::protocol::content::EnvelopeKey::of(envelope).is_some(),
        "complete now"
    );
}

#[test]
fn an_envelope_keeps_its_fields_and_gets_the_topic_position() {
    let mut log = TopicLog::new("e".into(), 4, usize::MAX);
    let envelope = json!({"channel": "t", "aspect": "a", "producer": "p", "sequence": 99,
                          "produced_at": 1, "payload": 5, "schema_ref": "s/1"});
    let frame = log.append("t", "a", &envelope);
    let value: Value = serde_json::from_str(&frame).expect("json");
    assert_eq!(value[4]["sequence"], json!(1));
    assert_eq!(value[4]["producer"], json!("p"));
    assert_eq!(value[4]["schema_ref"], json!("s/1"));
}

#[test]
fn contiguous_history_recovers() {
    let log = log_with(8, 6);
    let recovery = log.recover(Some(&resume(3, "e")), usize::MAX);
    assert!(recovery.reply.recovered);
    assert_eq!(sequences(&recovery), vec![4, 5, 6]);
    assert_eq!(recovery.reply.sequence, 6);
    let at_top = log.recover(Some(&resume(6, "e")), usize::MAX);
    assert!(at_top.reply.recovered && at_top.replay.is_empty());
}

#[test]
fn idle_histories_without_members_expire() {
    let config = HistoryConfig {
        topics: vec!["feed:*".into()],
        idle_ttl: Duration::from_secs(60),
        ..HistoryConfig::default()
    };
    let history = History::new(&config);
    let nobody = |_: &str| false;
    history.log("feed:empty", nobody);
    history.log("feed:busy", nobody);
    let now = Instant::now();
    assert_eq!(history.expire_idle(now, nobody), 0, "not idle long enough");
    let later = now + Duration::from_secs(61);
    let members = |topic: &str| topic == "feed:busy";
    assert_eq!(history.expire_idle(later, members), 1);
    assert_eq!(
        history.topic_count(),
        1,
        "the topic with members keeps its history"
    );
}

#[test]
fn a_replay_is_capped_to_the_newest_and_then_not_recovered() {
    let log = log_with(100, 50);
    let capped = log.recover(Some(&resume(0, "e")), 10);
    assert!(!capped.reply.recovered, "too far behind to be recovered");
    assert_eq!(sequences(&capped), (41..=50).collect::<Vec<_>>());
    let within = log.recover(Some(&resume(40, "e")), 10);
    assert!(within.reply.recovered, "exactly the cap is recovered");
    assert_eq!(sequences(&within).len(), 10);
}

#[test]
fn truncated_history_does_not_recover_but_replays_what_it_has() {
    let log = log_with(3, 10);
    let recovery = log.recover(Some(&resume(2, "e")), usize::MAX);
    assert!(!recovery.reply.recovered);
    assert_eq!(sequences(&recovery), vec![8, 9, 10]);
    // Exactly at the edge it still recovers.
    assert!(
        log.recover(Some(&resume(7, "e")), usize::MAX)
            .reply
            .recovered
    );
}

#[test]
fn another_epoch_or_a_future_position_does_not_recover() {
    let log = log_with(8, 4);
    let other = log.recover(Some(&resume(2, "old")), usize::MAX);
    assert!(!other.reply.recovered && other.replay.is_empty());
    assert!(
        !log.recover(Some(&resume(9, "e")), usize::MAX)
            .reply
            .recovered
    );
}

#[test]
fn eviction_prefers_topics_without_members_and_gives_a_new_epoch() {
    let config = HistoryConfig {
        topics: vec!["feed:*".into(), "exact".into()],
        size: 4,
        max_bytes: usize::MAX,
        max_topics: 2,
        max_replay: 300,
        idle_ttl: Duration::from_secs(300),
        ..HistoryConfig::default()
    };
    let history = History::new(&config);
    assert!(history.covers("feed:1") && history.covers("exact"));
    assert!(!history.covers("room:1") && !history.covers("exact:2"));
    let followed = |topic: &str| topic == "feed:1";
    let first = lock(&history.log("feed:1", followed)).epoch().to_owned();
    lock(&history.log("feed:1", followed)).append("feed:1", "e", &json!({}));
    history.log("feed:2", followed);
    // feed:1 was published to more recently than feed:2 was created, but
    // feed:2 has no members: it goes first.
    history.log("feed:3", followed);
    assert_eq!(history.topic_count(), 2);
    assert_eq!(lock(&history.log("feed:1", followed)).epoch(), first);
    assert_eq!(lock(&history.log("feed:1", followed)).top(), 1);
    let again = lock(&history.log("feed:2", followed)).epoch().to_owned();
    assert_ne!(again, first, "a recreated log starts a new epoch");
}

#[test]
fn the_ring_is_bounded_in_bytes_too() {
    let mut log = TopicLog::new("e".into(), 100, 300);
    for n in 0..20 {
        log.append("t", "ev", &json!({ "n": n }));
    }
    let kept: usize = log.ring.iter().map(|(_, frame)| frame.len()).sum();
    assert!(kept <= 300, "{kept} bytes kept");
    assert_eq!(log.ring.back().map(|(sequence, _)| *sequence), Some(20));
    assert!(
        !log.recover(Some(&resume(0, "e")), usize::MAX)
            .reply
            .recovered
    );
}
