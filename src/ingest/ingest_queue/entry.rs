//! What the queue holds per item, the batch a socket hands over in one
//! message, and the answers grouped per origin so that a batch's outcomes
//! go back in one message.

use actix::{Message, Recipient};
use tokio::sync::OwnedSemaphorePermit;

use super::Ingest;
use crate::ingest::dedup::DedupTicket;
use crate::ingest::outcome::{IngestOutcome, Nack};
use crate::sink::SinkItem;

/// Several items from one origin, handed over as one message (what one
/// read of a socket produced). Each is admitted as an [`Ingest`] would be.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct IngestBatch {
    /// The items, in arrival order.
    pub(crate) entries: Vec<Batched>,
    /// Who hears their outcomes, grouped into [`IngestOutcomes`].
    pub(crate) origin: Option<Recipient<IngestOutcomes>>,
}

/// One item of an [`IngestBatch`].
pub(crate) struct Batched {
    /// The item.
    pub(crate) item: SinkItem,
    /// Under `block`, the admission permit it holds while queued.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    /// For a sequenced message: its claim on the duplicate filter.
    pub(crate) dedup: Option<DedupTicket>,
}

/// The outcomes of several items of one origin, in the order they settled.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct IngestOutcomes(pub(crate) Vec<IngestOutcome>);

/// Where an item's outcome goes.
#[derive(Clone)]
pub(super) enum Origin {
    /// One message per outcome (an [`Ingest`]).
    Single(Recipient<IngestOutcome>),
    /// Outcomes grouped (an [`IngestBatch`]).
    Batch(Recipient<IngestOutcomes>),
}

/// One queued item.
pub(super) struct Entry {
    pub(super) item: SinkItem,
    pub(super) origin: Option<Origin>,
    /// Under `block`, the slot it holds until settled (freed on drop).
    #[allow(dead_code)]
    pub(super) permit: Option<OwnedSemaphorePermit>,
    pub(super) dedup: Option<DedupTicket>,
}

impl From<Ingest> for Entry {
    fn from(ingest: Ingest) -> Entry {
        Entry {
            item: ingest.item,
            origin: ingest.origin.map(Origin::Single),
            permit: ingest.permit,
            dedup: ingest.dedup,
        }
    }
}

impl Entry {
    pub(super) fn batched(batched: Batched, origin: &Option<Recipient<IngestOutcomes>>) -> Entry {
        Entry {
            item: batched.item,
            origin: origin.clone().map(Origin::Batch),
            permit: batched.permit,
            dedup: batched.dedup,
        }
    }

    /// Settles the item's claim and answers its origin (through `replies`).
    pub(super) fn answer(mut self, result: Result<(), Nack>, replies: &mut Replies) {
        if let Some(ticket) = self.dedup.take() {
            ticket.settle(&result);
        }
        let Some(origin) = self.origin.take() else {
            return;
        };
        let outcome = IngestOutcome {
            id: std::mem::take(&mut self.item.id),
            result,
        };
        match origin {
            Origin::Single(recipient) => recipient.do_send(outcome),
            Origin::Batch(recipient) => replies.add(recipient, outcome),
        }
    }
}

/// Outcomes gathered during one step of the queue, one message per origin
/// when sent. Holds at most the items of that step.
#[derive(Default)]
pub(super) struct Replies {
    groups: Vec<(Recipient<IngestOutcomes>, Vec<IngestOutcome>)>,
}

impl Replies {
    fn add(&mut self, recipient: Recipient<IngestOutcomes>, outcome: IngestOutcome) {
        // Few origins per step, and usually the last one again.
        match self.groups.iter_mut().rev().find(|(r, _)| *r == recipient) {
            Some((_, outcomes)) => outcomes.push(outcome),
            None => self.groups.push((recipient, vec![outcome])),
        }
    }

    /// Sends each origin its outcomes, in one message.
    pub(super) fn send(self) {
        for (recipient, outcomes) in self.groups {
            recipient.do_send(IngestOutcomes(outcomes));
        }
    }
}
