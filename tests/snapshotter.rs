//! The Snapshotter through its messages: sequences never reused across
//! restarts, receiver positions that never move backwards within an epoch,
//! producer marks, flushing, corrupt files, failing writes, and coalescing.

use std::collections::BTreeSet;
use std::fs;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use futures_util::future::join_all;
use switchboard::sequence::{
    Advance, AdvanceProducer, FileStore, Flush, FlushPolicy, GetSnapshotterStatus, MemoryStore,
    Position, ProducerMarks, Snapshot, SnapshotStore, Snapshotter, Stamp, StoreError,
};

const WAIT: Duration = Duration::from_secs(10);
const HOUR: FlushPolicy = FlushPolicy::Interval(Duration::from_secs(3600));

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {WAIT:?}"))
}

async fn stamp(snapshotter: &Addr<Snapshotter>, channel: &str) -> u64 {
    let stamp = Stamp {
        channel: channel.to_owned(),
    };
    within("stamp", snapshotter.send(stamp))
        .await
        .expect("snapshotter alive")
        .expect("stamp")
}

async fn advance(
    snapshotter: &Addr<Snapshotter>,
    channel: &str,
    delivered: u64,
    epoch: &str,
) -> Result<(), StoreError> {
    let advance = Advance {
        channel: channel.to_owned(),
        delivered,
        epoch: Some(epoch.to_owned()),
    };
    within("advance", snapshotter.send(advance))
        .await
        .expect("snapshotter alive")
}

fn file_store(dir: &Path) -> Box<FileStore> {
    Box::new(FileStore::new(dir.join("snap.json")))
}

fn on_disk(dir: &Path) -> Option<Snapshot> {
    FileStore::new(dir.join("snap.json"))
        .load()
        .expect("the file parses")
}

/// A copy of the file as it is now: what a process killed at this instant
/// would restart from.
fn crash_copy(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    fs::copy(dir.join("snap.json"), &copy).expect("copy the snapshot");
    copy
}

#[actix_rt::test]
async fn stamp_starts_at_one_and_increases_per_channel() {
    let snapshotter = Snapshotter::in_memory();
    for expected in 1..=5 {
        assert_eq!(stamp(&snapshotter, "a").await, expected);
    }
    assert_eq!(stamp(&snapshotter, "b").await, 1);
    assert_eq!(stamp(&snapshotter, "a").await, 6);
}

#[actix_rt::test]
async fn concurrent_stamps_are_answered_in_order_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshotter =
        Snapshotter::start(file_store(dir.path()), FlushPolicy::Every).expect("start");
    // Within the mailbox capacity every send is queued at once, in order.
    let first: Vec<u64> = join_all((0..10).map(|_| stamp(&snapshotter, "c"))).await;
    assert_eq!(first, (1..=10).collect::<Vec<_>>());
    let more: BTreeSet<u64> = join_all((0..100).map(|_| stamp(&snapshotter, "c")))
        .await
        .into_iter()
        .collect();
    assert_eq!(more, (11..=110).collect::<BTreeSet<_>>());
    let stored = on_disk(dir.path()).expect("saved");
    assert!(stored.published("c") >= 110, "{stored:?}");
}

#[actix_rt::test]
async fn restart_never_reuses_a_sequence_under_every() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Snapshotter::start(file_store(dir.path()), FlushPolicy::Every).expect("start");
    for expected in 1..=3 {
        assert_eq!(stamp(&first, "c").await, expected);
    }
    // Under Every each stamp is its own reservation: the file holds exactly 3.
    assert_eq!(on_disk(dir.path()).expect("saved").published("c"), 3);
    let copy = crash_copy(dir.path(), "crashed.json");
    let crashed =
        Snapshotter::start(Box::new(FileStore::new(copy)), FlushPolicy::Every).expect("restart");
    assert_eq!(stamp(&crashed, "c").await, 4);
    assert_eq!(stamp(&crashed, "other").await, 1);

    // A clean restart over the same file.
    drop(first);
    let restarted =
        Snapshotter::start(file_store(dir.path()), FlushPolicy::Every).expect("restart");
    assert_eq!(stamp(&restarted, "c").await, 4);
    assert_eq!(on_disk(dir.path()).expect("saved").published("c"), 4);
}

#[actix_rt::test]
async fn restart_never_reuses_a_sequence_under_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Snapshotter::start(file_store(dir.path()), HOUR).expect("start");
    let mut last = 0;
    for expected in 1..=10 {
        last = stamp(&first, "c").await;
        assert_eq!(last, expected);
    }
    // One reservation covers a block; the stamps after the first one wrote
    // nothing, and a crash now must not hand 2..=10 out again.
    let stored = on_disk(dir.path()).expect("the reservation is durable");
    assert!(stored.published("c") >= last, "{stored:?}");
    let status = within("status", first.send(GetSnapshotterStatus))
        .await
        .expect("alive");
    assert_eq!(status.writes, 1, "{status:?}");

    let copy = crash_copy(dir.path(), "crashed.json");
    let second = Snapshotter::start(Box::new(FileStore::new(&copy)), HOUR).expect("restart");
    let resumed = stamp(&second, "c").await;
    assert!(resumed > last, "{resumed} was handed out before the crash");
    assert_eq!(resumed, stored.published("c") + 1);

    // A clean restart over the same file resumes after the reservation too.
    drop(first);
    let restarted = Snapshotter::start(file_store(dir.path()), HOUR).expect("restart");
    assert_eq!(stamp(&restarted, "c").await, stored.published("c") + 1);
    drop(restarted);

    // Exhausting a reservation extends it durably before answering.
    let copy2 = crash_copy(dir.path(), "crashed2.json");
    let third = Snapshotter::start(Box::new(FileStore::new(&copy2)), HOUR).expect("restart");
    let mut handed = BTreeSet::new();
    for _ in 0..(switchboard::sequence::RESERVE_BLOCK + 5) {
        handed.insert(stamp(&third, "c").await);
    }
    let top = *handed.last().expect("stamps");
    let reloaded = FileStore::new(&copy2)
        .load()
        .expect("parses")
        .expect("saved");
    assert!(reloaded.published("c") >= top, "{top} > {reloaded:?}");
}

#[actix_rt::test]
async fn stopping_writes_what_is_dirty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshotter = Snapshotter::start(file_store(dir.path()), HOUR).expect("start");
    advance(&snapshotter, "c", 7, "e").await.expect("advance");
    assert_eq!(on_disk(dir.path()), None, "nothing written before the tick");
    drop(snapshotter);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(saved) = on_disk(dir.path()) {
            assert_eq!(saved.delivered("c"), 7);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no final save at stop"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_rt::test]
async fn advance_never_moves_backwards_within_an_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshotter =
        Snapshotter::start(file_store(dir.path()), FlushPolicy::Every).expect("start");
    advance(&snapshotter, "c", 5, "e1").await.expect("advance");
    advance(&snapshotter, "c", 3, "e1")
        .await
        .expect("stale advance");
    let position = within(
        "position",
        snapshotter.send(Position {
            channel: "c".into(),
        }),
    )
    .await
    .expect("alive")
    .expect("known");
    assert_eq!(
        (position.delivered, position.epoch.as_deref()),
        (5, Some("e1"))
    );
    let status = within("status", snapshotter.send(GetSnapshotterStatus))
        .await
        .expect("alive");
    assert_eq!(status.stale_updates, 1);

    // Another epoch replaces the position, even with a lower sequence.
    advance(&snapshotter, "c", 2, "e2")
        .await
        .expect("new epoch");
    let position = within(
        "position",
        snapshotter.send(Position {
            channel: "c".into(),
        }),
    )
    .await
    .expect("alive")
    .expect("known");
    assert_eq!(
        (position.delivered, position.epoch.as_deref()),
        (2, Some("e2"))
    );

    // Under Every the answer came once the file held it.
    let stored = on_disk(dir.path()).expect("saved");
    assert_eq!(stored.channels["c"], position);
    assert_eq!(
        within(
            "position",
            snapshotter.send(Position {
                channel: "none".into()
            })
        )
        .await
        .expect("alive"),
        None
    );
}

#[actix_rt::test]
async fn producer_marks_only_rise() {
    let store = MemoryStore::new();
    let snapshotter =
        Snapshotter::start(Box::new(store.clone()), FlushPolicy::Every).expect("start");
    for (producer, sequence) in [("p", 4), ("p", 9), ("p", 2), ("q", 1)] {
        let mark = AdvanceProducer {
            producer: producer.into(),
            sequence,
        };
        within("mark", snapshotter.send(mark))
            .await
            .expect("alive")
            .expect("durable");
    }
    let marks = within("marks", snapshotter.send(ProducerMarks))
        .await
        .expect("alive");
    assert_eq!(
        marks.into_iter().collect::<Vec<_>>(),
        [("p".into(), 9), ("q".into(), 1)]
    );
    let saved = store.snapshot().expect("saved");
    assert_eq!(saved.producers["p"], 9);

    // A restart loads them.
    let restarted = Snapshotter::start(Box::new(store), FlushPolicy::Every).expect("restart");
    let marks = within("marks", restarted.send(ProducerMarks))
        .await
        .expect("alive");
    assert_eq!(marks["p"], 9);
}

#[actix_rt::test]
async fn flush_writes_now() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshotter = Snapshotter::start(file_store(dir.path()), HOUR).expect("start");
    advance(&snapshotter, "c", 11, "e").await.expect("advance");
    assert_eq!(on_disk(dir.path()), None);
    within("flush", snapshotter.send(Flush))
        .await
        .expect("alive")
        .expect("flushed");
    assert_eq!(on_disk(dir.path()).expect("saved").delivered("c"), 11);
    // Nothing dirty: no second write.
    within("flush", snapshotter.send(Flush))
        .await
        .expect("alive")
        .expect("flushed");
    let status = within("status", snapshotter.send(GetSnapshotterStatus))
        .await
        .expect("alive");
    assert_eq!((status.writes, status.dirty), (1, false));
}

#[actix_rt::test]
async fn a_corrupt_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.json");
    for garbage in ["{\"channels\": {\"c\": ", "", "[1, 2]"] {
        fs::write(&path, garbage).expect("write garbage");
        let error = Snapshotter::start(file_store(dir.path()), FlushPolicy::Every)
            .expect_err("corrupt file refused");
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
        assert_eq!(error.path(), path);
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        // Never silently reset.
        assert_eq!(fs::read_to_string(&path).expect("still there"), garbage);
    }
}

#[actix_rt::test]
async fn a_leftover_temp_file_is_ignored_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::new(dir.path().join("snap.json"));
    fs::write(store.temp_path(), "{\"chan").expect("half-written temp file");
    assert_eq!(store.load().expect("no file yet"), None);
    assert!(!store.temp_path().exists());

    let snapshotter =
        Snapshotter::start(Box::new(store.clone()), FlushPolicy::Every).expect("start");
    advance(&snapshotter, "c", 3, "e").await.expect("advance");
    fs::write(store.temp_path(), "garbage").expect("another leftover");
    assert_eq!(
        store.load().expect("parses").expect("saved").delivered("c"),
        3
    );
    assert!(!store.temp_path().exists());
}

#[actix_rt::test]
async fn memory_store_clones_share_one_slot() {
    let store = MemoryStore::new();
    let kept = store.clone();
    assert_eq!(kept.snapshot(), None);
    let snapshotter = Snapshotter::start(Box::new(store), FlushPolicy::Every).expect("start");
    advance(&snapshotter, "c", 42, "e").await.expect("advance");
    assert_eq!(kept.snapshot().expect("saved").delivered("c"), 42);
}

#[actix_rt::test]
async fn advances_during_a_write_are_coalesced() {
    const N: u64 = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshotter =
        Snapshotter::start(file_store(dir.path()), FlushPolicy::Every).expect("start");
    let answers = join_all((1..=N).map(|i| advance(&snapshotter, "c", i, "e"))).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let status = within("status", snapshotter.send(GetSnapshotterStatus))
        .await
        .expect("alive");
    assert!(
        status.writes < N / 2,
        "{N} advances took {} writes",
        status.writes
    );
    assert!(
        !status.dirty && !status.writing && status.waiting == 0,
        "{status:?}"
    );
    assert_eq!(on_disk(dir.path()).expect("saved").delivered("c"), N);
}

/// A FileStore whose saves fail while `failing` is set.
struct FlakyStore {
    inner: FileStore,
    failing: Arc<AtomicBool>,
}

impl SnapshotStore for FlakyStore {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load()
    }

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                path: self.inner.path().to_path_buf(),
                source: io::Error::new(io::ErrorKind::StorageFull, "injected: disk full"),
            });
        }
        self.inner.save(snapshot)
    }

    fn location(&self) -> Option<&Path> {
        Some(self.inner.path())
    }
}

#[actix_rt::test]
async fn a_failing_write_is_answered_as_an_error_and_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.json");
    let failing = Arc::new(AtomicBool::new(true));
    let store = FlakyStore {
        inner: FileStore::new(&path),
        failing: failing.clone(),
    };
    let snapshotter = Snapshotter::start(Box::new(store), FlushPolicy::Every).expect("start");

    let error = advance(&snapshotter, "c", 1, "e")
        .await
        .expect_err("write fails");
    assert_eq!(error.path(), path);
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("injected: disk full"),
        "the cause is the source: {error}"
    );
    let stamped = within(
        "stamp",
        snapshotter.send(Stamp {
            channel: "c".into(),
        }),
    )
    .await
    .expect("the actor survives");
    assert!(matches!(stamped, Err(StoreError::Io { .. })), "{stamped:?}");
    let status = within("status", snapshotter.send(GetSnapshotterStatus))
        .await
        .expect("alive");
    assert!(status.write_errors >= 2 && status.dirty, "{status:?}");
    assert_eq!(on_disk(dir.path()), None);

    failing.store(false, Ordering::SeqCst);
    advance(&snapshotter, "c", 2, "e").await.expect("retried");
    // The failed stamp consumed nothing.
    assert_eq!(stamp(&snapshotter, "c").await, 1);
    let stored = on_disk(dir.path()).expect("saved");
    assert_eq!((stored.delivered("c"), stored.published("c")), (2, 1));
}

#[actix_rt::test]
async fn under_the_every_change_policy_a_failed_write_is_retried_without_a_new_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.json");
    let failing = Arc::new(AtomicBool::new(true));
    let store = FlakyStore {
        inner: FileStore::new(&path),
        failing: failing.clone(),
    };
    let snapshotter = Snapshotter::start(Box::new(store), FlushPolicy::Every).expect("start");
    advance(&snapshotter, "c", 7, "e")
        .await
        .expect_err("the write fails");
    failing.store(false, Ordering::SeqCst);
    // No further change: the snapshotter tries again by itself.
    let saved = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            // Read as it is (load() would clear a write's temp file).
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let stored = serde_json::from_str::<Snapshot>(&text).ok();
            if stored.is_some_and(|stored| stored.delivered("c") == 7) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(saved.is_ok(), "position 7 was never written");
}
