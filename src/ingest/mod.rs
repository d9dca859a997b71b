//! The ingest pipeline: a bounded, backpressured queue in front of a sink.

pub mod dedup;
pub mod ingest_queue;
pub mod queue;

pub use dedup::{Admission, Dedup, DedupKey, DedupStats, DedupTicket};
pub use ingest_queue::{
    Backpressure, Drain, DrainReport, Ingest, IngestOutcome, IngestQueue, IngestStats, Nack,
    QueueConfig, QueueStatus, Status, Upstream,
};
pub use queue::{OnFull, Signal};
