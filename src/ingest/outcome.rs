//! What becomes of one ingested item: the answer its origin gets.

use actix::Message;

/// Why an item was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// Stable reason: `queue_full`, `rejected`, `shutdown`.
    pub reason: &'static str,
    /// Details.
    pub error: String,
}

/// The outcome of one item, sent to its origin.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct IngestOutcome {
    /// The item's id.
    pub id: String,
    /// `Ok` once the sink accepted it.
    pub result: Result<(), Nack>,
}
