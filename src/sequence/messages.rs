//! The messages the [`Snapshotter`](super::Snapshotter) answers, and its
//! flush policy.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::Message;

use super::snapshot::ChannelPosition;
use super::store::StoreError;

/// How far [`Stamp`] extends an exhausted reservation under
/// [`FlushPolicy::Interval`]: a crash skips at most this many sequences.
pub const RESERVE_BLOCK: u64 = 1024;

/// Shortest period of [`FlushPolicy::Interval`]; shorter ones are raised to it.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The period of [`Snapshotter::in_memory`].
pub(crate) const IN_MEMORY_INTERVAL: Duration = Duration::from_secs(1);

/// When the snapshot is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every change is written as soon as the previous write completed;
    /// [`Advance`] and [`AdvanceProducer`] answer once they are durable, and
    /// [`Stamp`] reserves one sequence per write.
    Every,
    /// Changes are written together, at most one period after the first
    /// of them (and at stop);
    /// [`Advance`] and [`AdvanceProducer`] answer at once, so a crash may
    /// lose up to one period of them. [`Stamp`] reserves
    /// [`RESERVE_BLOCK`] sequences per write, and [`Flush`] writes at once.
    Interval(Duration),
}

impl FlushPolicy {
    /// How many sequences [`Stamp`] reserves when the reservation runs out.
    pub fn reserve_block(self) -> u64 {
        match self {
            FlushPolicy::Every => 1,
            FlushPolicy::Interval(_) => RESERVE_BLOCK,
        }
    }
}

/// Hands out the next published sequence of a channel (the first is 1).
///
/// A sequence is handed out only once a snapshot whose `published` covers it
/// is durable, so none is ever reused across a crash or restart. Stamps of
/// one channel are answered in the order they arrived.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<u64, StoreError>")]
pub struct Stamp {
    /// The channel.
    pub channel: String,
}

/// Records the receiver position of a channel: the last sequence delivered
/// to the application.
///
/// Within one epoch the position never moves backwards (a lower value is
/// ignored and counted); a different epoch (`None` counts as one of its
/// own) replaces it, even with a lower value. Under [`FlushPolicy::Every`] the answer comes once a snapshot
/// holding the position (or a later one) is durable; under
/// [`FlushPolicy::Interval`] at once.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Advance {
    /// The channel.
    pub channel: String,
    /// The last sequence delivered.
    pub delivered: u64,
    /// The epoch `delivered` belongs to, when the hub reported one.
    pub epoch: Option<String>,
}

/// Reads the state of a channel as held in memory (`published` may be a
/// reservation whose write is still in flight); `None` when the channel has
/// none.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Option<ChannelPosition>")]
pub struct Position {
    /// The channel.
    pub channel: String,
}

/// Records an ingest high-water mark: the highest sequence of `producer` the
/// sink accepted. The mark only rises (`max`); answers like [`Advance`].
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct AdvanceProducer {
    /// The producer.
    pub producer: String,
    /// A sequence the sink accepted.
    pub sequence: u64,
}

/// Forgets a producer's ingest mark (the hub stopped tracking it), so the
/// snapshot does not grow with every producer ever seen.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ForgetProducer {
    /// The producer.
    pub producer: String,
}

/// Reads every ingest high-water mark (the hub loads them at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "BTreeMap<String, u64>")]
pub struct ProducerMarks;

/// Writes now when something changed since the last write, and answers once
/// everything recorded before it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Flush;

/// Reads the snapshotter's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "SnapshotterStatus")]
pub struct GetSnapshotterStatus;

/// The figures of a snapshotter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotterStatus {
    /// Successful writes (`switchboard_snapshot_writes_total`).
    pub writes: u64,
    /// Failed writes (`switchboard_snapshot_write_errors_total`).
    pub write_errors: u64,
    /// Advances and producer marks ignored because they were lower than the
    /// stored value (`switchboard_snapshot_stale_updates_total`).
    pub stale_updates: u64,
    /// Whether the memory holds changes no completed write covers.
    pub dirty: bool,
    /// Whether a write is in flight.
    pub writing: bool,
    /// Requests waiting for a write.
    pub waiting: usize,
    /// Channels known.
    pub channels: usize,
    /// Producers known.
    pub producers: usize,
}
