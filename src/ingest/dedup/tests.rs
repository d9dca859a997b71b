//! Tests of the duplicate filter.

use super::*;
use crate::protocol::content::ContentEnvelope;
use actix::{Actor, Context, Handler};
use serde_json::json;
use tokio::sync::mpsc;

struct Origin(mpsc::UnboundedSender<IngestOutcome>);

impl Actor for Origin {
    type Context = Context<Self>;
}

impl Handler<IngestOutcome> for Origin {
    type Result = ();
    fn handle(&mut self, outcome: IngestOutcome, _: &mut Context<Self>) {
        let _ = self.0.send(outcome);
    }
}

const DAY: Duration = Duration::from_secs(86_400);

fn admission(dedup: &Arc<Dedup>, sequence: u64, origin: &Recipient<IngestOutcome>) -> Admission {
    let id = format!("p:{sequence}");
    dedup.admit(&key(sequence), &id, origin).0
}

/// The test producer, scoped as the ingest socket scopes it.
fn producer() -> String {
    scoped("t", "p")
}

fn key(sequence: u64) -> EnvelopeKey {
    EnvelopeKey {
        producer: producer(),
        sequence,
    }
}

#[actix_rt::test]
async fn seq_9_resends_are_recognised_before_and_after_acceptance() {
    let (sender, mut outcomes) = mpsc::unbounded_channel();
    let origin = Origin(sender).start().recipient();
    let dedup = Dedup::new(BTreeMap::from([(producer(), 3)]), None, None, DAY);
    assert_eq!(admission(&dedup, 2, &origin), Admission::Duplicate);
    let (admitted, ticket) = dedup.admit(&key(4), "p:4", &origin);
    assert_eq!(admitted, Admission::New);
    // Resent after a reconnect while the original is in flight.
    assert_eq!(admission(&dedup, 4, &origin), Admission::InFlight);
    ticket.expect("a ticket").settle(&Ok(()));
    let acked = outcomes.recv().await.expect("the resend is acked");
    assert_eq!(acked.id, "p:4");
    assert_eq!(acked.result, Ok(()));
    assert_eq!(dedup.mark(&producer()), 4);
    assert_eq!(admission(&dedup, 4, &origin), Admission::Duplicate);
    let stats = dedup.stats();
    assert_eq!(
        (stats.admitted, stats.duplicates, stats.joined_in_flight),
        (1, 2, 1)
    );
}

#[actix_rt::test]
async fn a_failed_message_can_be_sent_again() {
    let (sender, _outcomes) = mpsc::unbounded_channel();
    let origin = Origin(sender).start().recipient();
    let dedup = Dedup::new(BTreeMap::new(), None, None, DAY);
    let (_, ticket) = dedup.admit(&key(1), "p:1", &origin);
    let nack = Nack {
        reason: "queue_full",
        error: "full".into(),
    };
    ticket.expect("a ticket").settle(&Err(nack));
    assert_eq!(dedup.mark(&producer()), 0);
    assert_eq!(admission(&dedup, 1, &origin), Admission::New);
}

#[actix_rt::test]
async fn an_acceptance_out_of_order_neither_hides_nor_doubles_the_earlier_one() {
    let (sender, _outcomes) = mpsc::unbounded_channel();
    let origin = Origin(sender).start().recipient();
    let dedup = Dedup::new(BTreeMap::from([(producer(), 4)]), None, None, DAY);
    let (_, five) = dedup.admit(&key(5), "p:5", &origin);
    let (_, six) = dedup.admit(&key(6), "p:6", &origin);
    // 5 fails and is retried; 6 is accepted first.
    six.expect("ticket").settle(&Ok(()));
    assert_eq!(dedup.mark(&producer()), 4, "the floor waits for 5");
    assert_eq!(admission(&dedup, 6, &origin), Admission::Duplicate);
    assert_eq!(admission(&dedup, 5, &origin), Admission::InFlight);
    let nack = Nack {
        reason: "shutdown",
        error: "draining".into(),
    };
    five.expect("ticket").settle(&Err(nack));
    // Given up on, 5 is admitted again when resent: not lost.
    let (again, five) = dedup.admit(&key(5), "p:5", &origin);
    assert_eq!(again, Admission::New);
    five.expect("ticket").settle(&Ok(()));
    assert_eq!(dedup.mark(&producer()), 6);
}

#[actix_rt::test]
async fn a_dropped_ticket_settles_as_abandoned() {
    let (sender, mut outcomes) = mpsc::unbounded_channel();
    let origin = Origin(sender).start().recipient();
    let dedup = Dedup::new(BTreeMap::new(), None, None, DAY);
    let (_, ticket) = dedup.admit(&key(1), "p:1", &origin);
    assert_eq!(admission(&dedup, 1, &origin), Admission::InFlight);
    drop(ticket);
    let outcome = outcomes
        .recv()
        .await
        .expect("the waiting resend is answered");
    assert!(matches!(
        outcome.result,
        Err(Nack {
            reason: "abandoned",
            ..
        })
    ));
    assert_eq!(admission(&dedup, 1, &origin), Admission::New);
}

#[actix_rt::test]
async fn a_principal_at_its_cap_forgets_its_idle_producers_and_never_locks_out() {
    let (sender, _outcomes) = mpsc::unbounded_channel();
    let origin = Origin(sender).start().recipient();
    let dedup = Dedup::new(BTreeMap::new(), None, None, DAY);
    let mut busy = Vec::new();
    for n in 0..MAX_PRODUCERS_PER_PRINCIPAL {
        let key = EnvelopeKey {
            producer: scoped("alice", &format!("p{n}")),
            sequence: 1,
        };
        let (admission, ticket) = dedup.admit(&key, "m", &origin);
        assert_eq!(admission, Admission::New);
        busy.push(ticket);
    }
    let one_more = EnvelopeKey {
        producer: scoped("alice", "extra"),
        sequence: 1,
    };
    assert_eq!(
        dedup.admit(&one_more, "m", &origin).0,
        Admission::TooManyProducers,
        "every one of alice's producers has a message on its way"
    );
    let bob = EnvelopeKey {
        producer: scoped("bob", "extra"),
        sequence: 1,
    };
    assert_eq!(
        dedup.admit(&bob, "m", &origin).0,
        Admission::New,
        "bob has a cap of his own"
    );
    // Once alice's messages settle, her idle producers make room.
    for ticket in busy.into_iter().flatten() {
        ticket.settle(&Ok(()));
    }
    assert_eq!(dedup.admit(&one_more, "m", &origin).0, Admission::New);
    assert_eq!(dedup.stats().too_many_producers, 1);
    assert_eq!(dedup.stats().evicted, 1);
}

#[test]
fn floors_an_older_hub_stored_unscoped_move_to_the_single_principal() {
    let marks = BTreeMap::from([("probe/1".to_owned(), 7), (scoped("bearer", "x"), 3)]);
    let dedup = Dedup::new(marks.clone(), None, Some("bearer"), DAY);
    assert_eq!(dedup.mark(&scoped("bearer", "probe/1")), 7, "moved");
    assert_eq!(dedup.mark(&scoped("bearer", "x")), 3, "kept");
    let several = Dedup::new(marks, None, None, DAY);
    assert_eq!(
        several.mark(&scoped("bearer", "probe/1")),
        0,
        "not attributable"
    );
    assert_eq!(principal_of(&scoped("alice", "name/with/slashes")), "alice");
    assert_eq!(principal_of("unscoped/name"), "");
}

#[test]
fn only_content_envelopes_have_a_key() {
    let envelope = ContentEnvelope::stamped("c", "a", 9, "probe", json!({})).to_value();
    assert_eq!(
        EnvelopeKey::of(&envelope),
        Some(EnvelopeKey {
            producer: "probe".into(),
            sequence: 9
        })
    );
    assert_eq!(
        EnvelopeKey::of(&json!({"producer": "p", "sequence": 1})),
        None
    );
    assert_eq!(EnvelopeKey::of(&json!({"n": 1})), None);
}

#[actix_rt::test]
async fn idle_producers_expire_after_the_retention_unless_in_flight() {
    let (sender, _outcomes) = mpsc::unbounded_channel();
    let origin = Origin(sender).start().recipient();
    let start = Instant::now();
    let dedup = Dedup::new(BTreeMap::from([(producer(), 3)]), None, None, DAY);
    let busy = EnvelopeKey {
        producer: scoped("t", "busy"),
        sequence: 1,
    };
    let (_, on_its_way) = dedup.admit_at(&busy, "b:1", &origin, start);
    let seen = start + DAY / 2;
    assert_eq!(
        dedup.admit_at(&key(3), "p:3", &origin, seen).0,
        Admission::Duplicate
    );
    // A retention after its last message the producer is forgotten: its
    // sequences are new again. The one with a message on its way stays.
    let later = seen + DAY;
    assert_eq!(
        dedup.admit_at(&key(3), "p:3", &origin, later).0,
        Admission::New
    );
    assert_eq!(dedup.stats().expired, 1);
    assert_eq!(
        dedup.admit_at(&busy, "b:1", &origin, later).0,
        Admission::InFlight
    );
    drop(on_its_way);
}

#[actix_rt::test]
async fn a_zero_retention_keeps_producers() {
    let (sender, _outcomes) = mpsc::unbounded_channel();
    let origin = Origin(sender).start().recipient();
    let dedup = Dedup::new(
        BTreeMap::from([(producer(), 3)]),
        None,
        None,
        Duration::ZERO,
    );
    let much_later = Instant::now() + 1000 * DAY;
    assert_eq!(
        dedup.admit_at(&key(3), "p:3", &origin, much_later).0,
        Admission::Duplicate
    );
    assert_eq!(dedup.stats().expired, 0);
}
