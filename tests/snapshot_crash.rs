//! The SIGKILL snapshot test: 200 kills, the file always parses, never ahead
//! of delivery, never more than one flush behind.
//!
//! The test re-executes its own binary as a child (selected by
//! [`CHILD_ENV`]). The child runs a [`Snapshotter`] over a [`FileStore`] with
//! [`FlushPolicy::Every`] and loops: it "delivers" `i` by printing
//! `delivered <i>`, then records `Advance(i)` and waits until it is durable.
//! The parent kills it with SIGKILL a few milliseconds after its first line,
//! so kills land in the middle of writes, then checks the file: it parses,
//! and its position `P` against the last delivered line `L` satisfies
//! `L - 1 <= P <= L`, and `P` never goes backwards from one round to the
//! next (the next child resumes from `P + 1`).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use switchboard::sequence::{
    Advance, FileStore, FlushPolicy, Position, SnapshotStore, Snapshotter,
};

/// Set in the child's environment to the directory of the snapshot.
const CHILD_ENV: &str = "SNAPSHOT_CRASH_CHILD";
/// Optional: the seed of the kill delays, to replay a run.
const SEED_ENV: &str = "SNAPSHOT_CRASH_SEED";
/// This test's name, for `--exact`.
const TEST_NAME: &str = "sigkill_snapshot_200_rounds";
const ROUNDS: u32 = 200;
const ROUND_DEADLINE: Duration = Duration::from_secs(5);
/// The kill lands this long after the child's first line.
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 2..=25;
const FILE: &str = "snap.json";
const CHANNEL: &str = "c";
const EPOCH: &str = "e";

#[test]
fn sigkill_snapshot_200_rounds() {
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => child(Path::new(&dir)),
        None => parent(),
    }
}

/// The child role: deliver, then make the position durable, forever.
fn child(dir: &Path) {
    let system = actix::System::new();
    system.block_on(async {
        let store = FileStore::new(dir.join(FILE));
        let snapshotter =
            Snapshotter::start(Box::new(store), FlushPolicy::Every).expect("child: load snapshot");
        let position = Position {
            channel: CHANNEL.to_owned(),
        };
        let resumed = snapshotter
            .send(position)
            .await
            .expect("child: snapshotter alive")
            .map_or(0, |position| position.delivered);
        let mut stdout = std::io::stdout();
        for i in resumed + 1.. {
            writeln!(stdout, "delivered {i}")
                .and_then(|()| stdout.flush())
                .expect("child: stdout");
            let advance = Advance {
                channel: CHANNEL.to_owned(),
                delivered: i,
                epoch: Some(EPOCH.to_owned()),
            };
            snapshotter
                .send(advance)
                .await
                .expect("child: snapshotter alive")
                .expect("child: durable advance");
        }
    });
}

/// Kills the child when a check fails half-way through a round.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one round saw.
struct Round {
    /// The first `delivered` line.
    first: u64,
    /// The last `delivered` line before the kill.
    last: u64,
    /// The durable position after the kill.
    position: u64,
    /// Whether the kill left a temp file behind.
    leftover: bool,
}

fn parent() {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    fastrand::seed(seed);
    let exe = std::env::current_exe().expect("the test binary");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();

    let mut previous = 0;
    let mut lags = [0u32; 2];
    let mut leftovers = 0;
    let mut deliveries = 0;
    for round in 1..=ROUNDS {
        let seen = run_round(&exe, dir.path(), round);
        let Round {
            first,
            last,
            position,
            leftover,
        } = seen;
        let context = format!(
            "round {round} (seed {seed}): resumed at {first}, last delivered {last}, durable {position}, previous durable {previous}"
        );
        assert_eq!(
            first,
            previous + 1,
            "the child did not resume after the durable position: {context}"
        );
        assert!(position <= last, "the file is ahead of delivery: {context}");
        assert!(
            position + 1 >= last,
            "the file is more than one flush behind: {context}"
        );
        assert!(
            position >= previous,
            "the durable position went backwards: {context}"
        );
        lags[(last - position) as usize] += 1;
        leftovers += u32::from(leftover);
        deliveries += last + 1 - first;
        previous = position;
    }

    let elapsed = started.elapsed();
    let min_lag = if lags[0] > 0 { 0 } else { 1 };
    let max_lag = if lags[1] > 0 { 1 } else { 0 };
    println!(
        "sigkill snapshot: {ROUNDS} rounds in {elapsed:.2?} (seed {seed}); final position {previous}; \
         {deliveries} deliveries; lag min {min_lag} max {max_lag} (lag 0: {} rounds, lag 1: {} rounds); \
         kills that left a temp file: {leftovers}",
        lags[0], lags[1]
    );
}

/// Starts a child, kills it a few milliseconds after its first line, and
/// reads back what it delivered and what the file holds.
fn run_round(exe: &Path, dir: &Path, round: u32) -> Round {
    let deadline = Instant::now() + ROUND_DEADLINE;
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut child = Killed(child);

    let (lines, delivered) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print `test <name> ... ` on the same line first.
            if let Some((_, i)) = line.rsplit_once("delivered ") {
                let i: u64 = i.trim().parse().expect("a delivered sequence");
                if lines.send(i).is_err() {
                    break;
                }
            }
        }
    });
    let remaining = |what: &str| {
        deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("round {round}: {what} not within {ROUND_DEADLINE:?}"))
    };

    let first = match delivered.recv_timeout(remaining("first line")) {
        Ok(first) => first,
        Err(RecvTimeoutError::Timeout) => {
            panic!("round {round}: the child printed no line within {ROUND_DEADLINE:?}")
        }
        Err(RecvTimeoutError::Disconnected) => {
            panic!("round {round}: the child exited before delivering (see its stderr above)")
        }
    };
    thread::sleep(Duration::from_millis(fastrand::u64(KILL_AFTER_MS)));
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().expect("reap the child");

    // Everything it printed before the kill is in the pipe.
    let mut last = first;
    loop {
        match delivered.recv_timeout(remaining("end of output")) {
            Ok(i) => {
                assert_eq!(i, last + 1, "round {round}: deliveries not consecutive");
                last = i;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                panic!("round {round}: the child's output did not end within {ROUND_DEADLINE:?}")
            }
        }
    }
    reader.join().expect("reader thread");

    let file = dir.join(FILE);
    let temp = FileStore::new(&file).temp_path().to_path_buf();
    let leftover = temp.exists();
    Round {
        first,
        last,
        position: durable_position(&file, round),
        leftover,
    }
}

/// The position in the file, loaded through a copy so that a leftover temp
/// file stays for the next child to deal with.
fn durable_position(file: &Path, round: u32) -> u64 {
    let check_dir = file.with_file_name("check");
    fs::create_dir_all(&check_dir).expect("check directory");
    let copy: PathBuf = check_dir.join(FILE);
    match fs::copy(file, &copy) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let _ = fs::remove_file(&copy);
        }
        Err(e) => panic!("round {round}: copy {}: {e}", file.display()),
    }
    let loaded = FileStore::new(&copy).load().unwrap_or_else(|e| {
        panic!(
            "round {round}: {} does not parse (loaded through a copy): {e}",
            file.display()
        )
    });
    let Some(snapshot) = loaded else { return 0 };
    let position = snapshot.channels.get(CHANNEL).cloned().unwrap_or_default();
    if position.delivered > 0 {
        assert_eq!(
            position.epoch.as_deref(),
            Some(EPOCH),
            "round {round}: epoch"
        );
    }
    position.delivered
}
