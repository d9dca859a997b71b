//! The content envelope end to end: publishing stamps it, typed aspect
//! handlers receive it deserialized once, a derived publish names its
//! cause, and a payload that does not fit is reported, never dropped silently.

mod support;

use serde::Deserialize;
use serde_json::json;
use support::client::*;
use support::*;
use switchboard::client::ConnectEvent;
use switchboard::client::SchemaCheck;
use switchboard::protocol::content::{Causation, ContentEnvelope};
use tokio::sync::mpsc;

const TOPIC: &str = "room:sensors";

#[derive(Debug, Deserialize, PartialEq)]
struct Reading {
    celsius: f64,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Alert {
    too_hot: bool,
}

#[actix_rt::test]
async fn publish_stamps_typed_handlers_decode_and_derived_publishes_name_their_cause() {
    let hub = start_hub(&test_config());
    let board = switchboard();
    let url = hub.socket_url();
    let mut publisher_config = fast_config(&url);
    publisher_config.producer = "probe-1".to_owned();
    let publisher = open(&board, publisher_config).await;
    let watcher = open(&board, fast_config(&url)).await;
    publisher.join(TOPIC, json!({})).await.expect("joined");
    watcher.join(TOPIC, json!({})).await.expect("joined");

    // The watcher derives an alert from every reading it handles.
    let (readings_tx, mut readings) = mpsc::unbounded_channel();
    let deriver = watcher.clone();
    watcher.on_aspect::<Reading, _>(TOPIC, "reading", move |reading, envelope| {
        let _ = readings_tx.send((reading, envelope.clone()));
        let deriver = deriver.clone();
        actix::spawn(async move {
            let alert = json!({ "too_hot": true });
            let _ = deriver.publish_derived(&envelope, "alert", alert).await;
        });
    });
    let (alerts_tx, mut alerts) = mpsc::unbounded_channel();
    publisher.on_aspect::<Alert, _>(TOPIC, "alert", move |alert, envelope| {
        let _ = alerts_tx.send((alert, envelope));
    });

    for celsius in [20.5, 31.0] {
        let reply = publisher
            .publish(TOPIC, "reading", json!({ "celsius": celsius }))
            .await
            .expect("published");
        assert_eq!(
            reply.status,
            switchboard::protocol::phoenix::ReplyStatus::Ok
        );
    }
    for (expected_sequence, celsius) in [(1, 20.5), (2, 31.0)] {
        let (reading, envelope) = tokio::time::timeout(WAIT, readings.recv())
            .await
            .expect("in time")
            .expect("open");
        assert_eq!(reading, Reading { celsius });
        assert_eq!(envelope.sequence, expected_sequence, "per channel, from 1");
        assert_eq!(envelope.producer, "probe-1");
        assert_eq!(envelope.channel, TOPIC);
        assert!(envelope.produced_at > 0);
        assert_eq!(envelope.causation, None);
    }
    for cause_sequence in [1, 2] {
        let (alert, envelope) = tokio::time::timeout(WAIT, alerts.recv())
            .await
            .expect("in time")
            .expect("open");
        assert_eq!(alert, Alert { too_hot: true });
        assert_eq!(
            envelope.causation,
            Some(Causation {
                channel: TOPIC.to_owned(),
                producer: "probe-1".to_owned(),
                sequence: cause_sequence,
            })
        );
    }
}

#[actix_rt::test]
async fn a_payload_that_does_not_fit_or_fails_the_schema_check_is_reported() {
    let hub = start_hub(&test_config());
    let board = switchboard();
    let url = hub.socket_url();
    let publisher = open(&board, fast_config(&url)).await;
    let watcher = open(&board, fast_config(&url)).await;
    publisher.join(TOPIC, json!({})).await.expect("joined");
    watcher.join(TOPIC, json!({})).await.expect("joined");
    let mut events = watcher.events();
    let (good_tx, mut good) = mpsc::unbounded_channel();
    let check: SchemaCheck = Box::new(|envelope: &ContentEnvelope| {
        match envelope
            .payload
            .get("celsius")
            .and_then(|value| value.as_f64())
        {
            Some(celsius) if celsius > -273.15 => Ok(()),
            _ => Err("celsius must be above absolute zero".to_owned()),
        }
    });
    watcher.on_aspect_checked::<Reading, _>(TOPIC, "reading", Some(check), move |reading, _| {
        let _ = good_tx.send(reading);
    });

    publisher
        .publish(TOPIC, "reading", json!({ "celsius": "warm" }))
        .await
        .expect("published");
    let reason = wait_for(&mut events, |event| match event {
        ConnectEvent::InvalidPayload { aspect, reason, .. } if aspect == "reading" => {
            Some(reason.clone())
        }
        _ => None,
    })
    .await;
    assert!(reason.contains("schema check failed"), "{reason}");

    publisher
        .publish(TOPIC, "reading", json!({ "celsius": 40, "unit": ["C"] }))
        .await
        .expect("published");
    let reading = tokio::time::timeout(WAIT, good.recv())
        .await
        .expect("in time");
    assert_eq!(reading, Some(Reading { celsius: 40.0 }));

    // A plain push on the topic is not an envelope: reported as such.
    publisher
        .push(TOPIC, "reading", json!({ "celsius": 1 }))
        .await
        .expect("pushed");
    let reason = wait_for(&mut events, |event| match event {
        ConnectEvent::InvalidPayload { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("not a content envelope"), "{reason}");
}
