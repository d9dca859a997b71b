//! The IngestQueue with a paused sink: each overflow policy, the slow/resume
//! signal, bounded memory under a flood, and a drain.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Handler};
use bytes::Bytes;
use switchboard::ingest::{
    Backpressure, DrainQueue, GetQueueStatus, Ingest, IngestOutcome, IngestQueue, OnFull,
    QueueConfig, Signal, Upstream,
};
use switchboard::sink::CountingSink;
use switchboard::sink::{ItemKind, SinkItem};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// Forwards what it hears into a channel the test reads.
struct Collector<T: Send + 'static>(mpsc::UnboundedSender<T>);

impl<T: Send + 'static> Actor for Collector<T> {
    type Context = Context<Self>;
}

impl Handler<IngestOutcome> for Collector<IngestOutcome> {
    type Result = ();
    fn handle(&mut self, msg: IngestOutcome, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

impl Handler<Backpressure> for Collector<Backpressure> {
    type Result = ();
    fn handle(&mut self, msg: Backpressure, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

fn item(n: usize) -> SinkItem {
    SinkItem {
        store_id: None,
        id: n.to_string(),
        kind: ItemKind::Data,
        payload: Bytes::from(format!("{{\"seq\":{n}}}")),
    }
}

struct Rig {
    queue: Addr<IngestQueue>,
    sink: Arc<CountingSink>,
    outcomes: mpsc::UnboundedReceiver<IngestOutcome>,
    origin: actix::Recipient<IngestOutcome>,
    signals: mpsc::UnboundedReceiver<Backpressure>,
    stats: Arc<switchboard::ingest::IngestStats>,
    admission: Option<Arc<tokio::sync::Semaphore>>,
}

fn rig(queue_size: usize, on_full: OnFull) -> Rig {
    let sink = CountingSink::new();
    sink.pause();
    let actor = IngestQueue::new(
        QueueConfig {
            queue_size,
            on_full,
        },
        Arc::new(sink.clone()),
    );
    let stats = actor.stats();
    let admission = actor.admission();
    let queue = actor.start();
    let (tx, outcomes) = mpsc::unbounded_channel();
    let origin = Collector(tx).start().recipient();
    let (tx, signals) = mpsc::unbounded_channel();
    queue.do_send(Upstream {
        id: 1,
        recipient: Some(Collector(tx).start().recipient()),
    });
    Rig {
        queue,
        sink,
        outcomes,
        origin,
        signals,
        stats,
        admission,
    }
}

impl Rig {
    async fn offer(&self, n: usize) {
        let permit = match &self.admission {
            Some(admission) => Some(admission.clone().acquire_owned().await.unwrap()),
            None => None,
        };
        self.queue
            .send(Ingest {
                item: item(n),
                origin: Some(self.origin.clone()),
                permit,
                dedup: None,
            })
            .await
            .unwrap();
    }

    async fn outcomes(&mut self, count: usize) -> Vec<IngestOutcome> {
        let mut all = Vec::new();
        while all.len() < count {
            let next = tokio::time::timeout(WAIT, self.outcomes.recv())
                .await
                .expect("outcome in time");
            all.push(next.unwrap());
        }
        all
    }
}

fn ids(outcomes: &[IngestOutcome], acked: bool) -> Vec<usize> {
    let mut ids: Vec<usize> = outcomes
        .iter()
        .filter(|o| o.result.is_ok() == acked)
        .map(|o| o.id.parse().unwrap())
        .collect();
    ids.sort();
    ids
}

#[actix_web::test]
async fn drop_oldest_evicts_the_oldest_and_nacks_them() {
    let mut rig = rig(10, OnFull::DropOldest);
    for n in 0..100 {
        rig.offer(n).await;
    }
    let nacked = rig.outcomes(89).await;
    assert!(nacked
        .iter()
        .all(|o| o.result.as_ref().unwrap_err().reason == "queue_full"));
    // Item 0 is with the paused sink; 1..=89 were evicted; 90..=99 wait.
    assert_eq!(ids(&nacked, false), (1..=89).collect::<Vec<_>>());
    rig.sink.resume();
    let acked = rig.outcomes(11).await;
    let mut expected = vec![0];
    expected.extend(90..100);
    assert_eq!(ids(&acked, true), expected);
    assert_eq!(rig.stats.dropped_oldest.load(Ordering::Relaxed), 89);
}

#[actix_web::test]
async fn drop_newest_refuses_arrivals_and_nacks_them() {
    let mut rig = rig(10, OnFull::DropNewest);
    for n in 0..100 {
        rig.offer(n).await;
    }
    let nacked = rig.outcomes(89).await;
    assert_eq!(ids(&nacked, false), (11..100).collect::<Vec<_>>());
    rig.sink.resume();
    let acked = rig.outcomes(11).await;
    assert_eq!(ids(&acked, true), (0..11).collect::<Vec<_>>());
    assert_eq!(rig.stats.dropped_newest.load(Ordering::Relaxed), 89);
}

#[actix_web::test]
async fn block_holds_senders_until_there_is_room_and_drops_nothing() {
    let mut rig = rig(10, OnFull::Block);
    let admission = rig
        .admission
        .clone()
        .expect("block has an admission semaphore");
    for n in 0..10 {
        rig.offer(n).await;
    }
    assert!(
        admission.clone().try_acquire_owned().is_err(),
        "the 11th sender must wait"
    );
    let queue = rig.queue.clone();
    let origin = rig.origin.clone();
    let blocked = actix_web::rt::spawn(async move {
        for n in 10..30 {
            let permit = admission.clone().acquire_owned().await.unwrap();
            queue
                .send(Ingest {
                    item: item(n),
                    origin: Some(origin.clone()),
                    permit: Some(permit),
                    dedup: None,
                })
                .await
                .unwrap();
        }
    });
    rig.sink.resume();
    tokio::time::timeout(WAIT, blocked).await.unwrap().unwrap();
    let all = rig.outcomes(30).await;
    assert_eq!(
        ids(&all, true),
        (0..30).collect::<Vec<_>>(),
        "nothing dropped"
    );
    assert_eq!(rig.stats.dropped(), 0);
}

#[actix_web::test]
async fn slow_once_at_80_percent_resume_once_at_50() {
    let mut rig = rig(10, OnFull::DropOldest);
    for n in 0..100 {
        rig.offer(n).await;
    }
    let slow = tokio::time::timeout(WAIT, rig.signals.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(slow.0, Signal::Slow(level) if level.depth == 8 && level.capacity == 10),
        "{slow:?}"
    );
    rig.sink.resume();
    rig.outcomes(100).await;
    let resumed = tokio::time::timeout(WAIT, rig.signals.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(resumed.0, Signal::Resumed(level) if level.depth == 5),
        "{resumed:?}"
    );
    assert!(
        rig.signals.try_recv().is_err(),
        "one slow and one resume per episode"
    );
}

#[actix_web::test]
async fn memory_stays_bounded_under_a_flood() {
    let mut rig = rig(1_000, OnFull::DropOldest);
    let mut deepest = 0;
    for n in 0..100_000 {
        rig.offer(n).await;
        if n.is_multiple_of(1_000) {
            let status = rig.queue.send(GetQueueStatus).await.unwrap();
            deepest = deepest.max(status.queue_depth);
        }
    }
    let status = rig.queue.send(GetQueueStatus).await.unwrap();
    assert_eq!(status.queue_depth, 1_000);
    assert!(deepest <= 1_000);
    assert_eq!(
        rig.stats.dropped_oldest.load(Ordering::Relaxed),
        100_000 - 1_001
    );
    rig.sink.resume();
    let outcomes = rig.outcomes(100_000).await;
    assert_eq!(
        ids(&outcomes, true).len(),
        1_001,
        "every outcome accounted for"
    );
}

#[actix_web::test]
async fn drain_delivers_what_it_can_and_reports_the_rest() {
    let mut rig = rig(10, OnFull::DropOldest);
    for n in 0..5 {
        rig.offer(n).await;
    }
    let report = rig
        .queue
        .send(DrainQueue {
            timeout: Duration::from_millis(100),
        })
        .await
        .unwrap();
    assert_eq!(report.delivered, 0);
    assert_eq!(
        report.undelivered, 5,
        "one held by the paused sink, four queued"
    );
    let nacked = rig.outcomes(4).await;
    assert!(nacked
        .iter()
        .all(|o| o.result.as_ref().unwrap_err().reason == "shutdown"));
    rig.offer(99).await;
    let late = rig.outcomes(1).await;
    assert_eq!(
        late[0].result.as_ref().unwrap_err().reason,
        "shutdown",
        "no intake after a drain"
    );
}
