//! The ingest pipeline: a bounded, backpressured queue in front of a sink.

pub(crate) mod dedup;
pub(crate) mod ingest_queue;
pub(crate) mod outcome;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod status;

pub use crate::config::OnFull;
pub use dedup::DedupStats;
pub(crate) use dedup::{Admission, Dedup};
pub use ingest_queue::{
    Backpressure, DrainQueue, DrainReport, GetQueueStatus, Ingest, IngestQueue, IngestStats,
    QueueConfig, Upstream,
};
pub(crate) use ingest_queue::{Batched, IngestBatch, IngestOutcomes};
pub use outcome::{IngestOutcome, Nack};
pub use queue::Signal;
pub(crate) use status::QueueGauge;
pub use status::QueueStatus;
