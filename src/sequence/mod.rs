//! Per-channel sequence state for the content envelope, kept durable across
//! restarts by the [`Snapshotter`] actor.
//!
//! A *channel* here is what the content envelope's `channel` names: the
//! series one sequence counts within (a hub topic, or `producer:<name>` for
//! the single series of an envelope producer). It is not a Phoenix channel.
//!
//! - Publishers [`Stamp`] each envelope with the next sequence of its
//!   channel; a sequence is never reused, even after a crash (SEQ-1).
//! - Receivers [`Advance`] the position of each channel to the last sequence
//!   delivered to the application, so a reconnect or a restart resumes from
//!   it with its epoch (SEQ-2, SEQ-3).
//! - The ingest side records each producer's high-water mark
//!   ([`AdvanceProducer`]), the highest sequence the sink accepted, so
//!   resends after a reconnect are recognised as duplicates (SEQ-9).
//!
//! The state is a plain [`Snapshot`] saved to a [`SnapshotStore`]: a
//! crash-safe JSON file ([`FileStore`]) or memory ([`MemoryStore`]). The
//! [`FlushPolicy`] trades durability for writes.
//!
//! ```no_run
//! use switchboard::sequence::{Advance, FileStore, FlushPolicy, Snapshotter, Stamp};
//!
//! #[actix::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let snapshotter = Snapshotter::start(
//!         Box::new(FileStore::new("sequences.json")),
//!         FlushPolicy::Every,
//!     )?;
//!     let sequence = snapshotter.send(Stamp { channel: "rooms:lobby".into() }).await??;
//!     snapshotter
//!         .send(Advance { channel: "rooms:lobby".into(), delivered: sequence, epoch: None })
//!         .await??;
//!     Ok(())
//! }
//! ```

mod ledger;
pub(crate) mod messages;
pub(crate) mod snapshot;
pub(crate) mod snapshotter;
pub(crate) mod store;

pub use messages::{
    Advance, AdvanceProducer, Flush, FlushPolicy, ForgetProducer, GetSnapshotterStatus, Position,
    ProducerMarks, SnapshotterStatus, Stamp, RESERVE_BLOCK,
};
pub use snapshot::{ChannelPosition, Snapshot};
pub use snapshotter::Snapshotter;
pub use store::{FileStore, MemoryStore, SnapshotStore, StoreError};
