//! The bookkeeping of a [`Snapshotter`](super::Snapshotter), with no I/O:
//! the state, which version of it is durable, the sequences handed out per
//! channel, and the requests waiting for a write. The actor around it runs
//! the writes and the timers and tells the ledger how each write ended.

use std::collections::{BTreeMap, HashMap, VecDeque};

use tokio::sync::oneshot;

use super::snapshot::{ChannelPosition, Snapshot};
use super::store::StoreError;

/// Where a request waiting for a write gets its answer.
pub(super) type Reply<T> = oneshot::Receiver<Result<T, StoreError>>;

/// The publisher side of one channel.
#[derive(Debug, Default)]
struct Issuer {
    /// The last sequence handed out.
    issued: u64,
    /// `published` in the last durable snapshot.
    durable: u64,
    /// Stamps waiting for a reservation to become durable.
    pending: u64,
}

/// A request waiting for a write.
enum Waiter {
    /// Answered once a write of state version `since` (or later) completed.
    Durable {
        since: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Answered with the next sequence of `channel` once its durable
    /// reservation covers one; failed by a write of version `since` or later.
    Stamp {
        channel: String,
        since: u64,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// What a [`Ledger::stamp`] answers.
pub(super) enum Stamped {
    /// A durable sequence was free: this one.
    Now(u64),
    /// The reservation must be written first; the sequence comes here.
    AfterWrite(Reply<u64>),
}

/// What a change did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// The state changed (a new version).
    Changed,
    /// Nothing changed.
    Same,
    /// A lower value than the stored one was ignored.
    Stale,
}

/// The state of a snapshotter and what waits on its writes.
pub(super) struct Ledger {
    state: Snapshot,
    issuers: HashMap<String, Issuer>,
    /// Bumped by every change of `state`.
    version: u64,
    /// The version of the last completed write.
    written: u64,
    /// The version of the write in flight.
    writing: Option<u64>,
    /// In arrival order.
    waiters: VecDeque<Waiter>,
}

impl Ledger {
    /// A ledger whose state starts as `loaded`: every sequence up to a
    /// loaded `published` counts as handed out.
    pub(super) fn new(loaded: Snapshot) -> Ledger {
        let issuers = loaded
            .channels
            .iter()
            .filter(|(_, position)| position.published > 0)
            .map(|(channel, position)| {
                let issuer = Issuer {
                    issued: position.published,
                    durable: position.published,
                    pending: 0,
                };
                (channel.clone(), issuer)
            })
            .collect();
        Ledger {
            state: loaded,
            issuers,
            version: 0,
            written: 0,
            writing: None,
            waiters: VecDeque::new(),
        }
    }

    /// The memory holds changes no completed write covers.
    pub(super) fn dirty(&self) -> bool {
        self.version > self.written
    }

    /// A write is in flight.
    pub(super) fn writing(&self) -> bool {
        self.writing.is_some()
    }

    /// Requests waiting for a write.
    pub(super) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Channels and producers known.
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.state.channels.len(), self.state.producers.len())
    }

    /// The next sequence of `channel`: at once when the durable reservation
    /// covers one and no earlier stamp waits; otherwise the reservation is
    /// extended by `block` and the sequence comes once that is written.
    pub(super) fn stamp(&mut self, channel: String, block: u64) -> Stamped {
        let issuer = self.issuers.entry(channel.clone()).or_default();
        if issuer.pending == 0 && issuer.issued < issuer.durable {
            issuer.issued += 1;
            return Stamped::Now(issuer.issued);
        }
        issuer.pending += 1;
        let needed = issuer.issued + issuer.pending;
        let position = self.state.channels.entry(channel.clone()).or_default();
        if position.published < needed {
            position.published = needed + (block.max(1) - 1);
            self.version += 1;
        }
        let (reply, answer) = oneshot::channel();
        self.waiters.push_back(Waiter::Stamp {
            channel,
            since: self.version,
            reply,
        });
        Stamped::AfterWrite(answer)
    }

    /// Records the receiver position of `channel`: it never moves back within
    /// an epoch; another epoch replaces it.
    pub(super) fn advance(
        &mut self,
        channel: String,
        delivered: u64,
        epoch: Option<String>,
    ) -> Change {
        let new = !self.state.channels.contains_key(&channel);
        let position = self.state.channels.entry(channel).or_default();
        let change = if position.epoch != epoch {
            position.delivered = delivered;
            position.epoch = epoch;
            Change::Changed
        } else if delivered > position.delivered {
            position.delivered = delivered;
            Change::Changed
        } else if delivered < position.delivered {
            Change::Stale
        } else if new {
            Change::Changed
        } else {
            Change::Same
        };
        if change == Change::Changed {
            self.version += 1;
        }
        change
    }

    /// Records an ingest high-water mark; it only rises.
    pub(super) fn advance_producer(&mut self, producer: String, sequence: u64) -> Change {
        let change = match self.state.producers.get_mut(&producer) {
            Some(mark) if sequence > *mark => {
                *mark = sequence;
                Change::Changed
            }
            Some(mark) if sequence < *mark => Change::Stale,
            Some(_) => Change::Same,
            None => {
                self.state.producers.insert(producer, sequence);
                Change::Changed
            }
        };
        if change == Change::Changed {
            self.version += 1;
        }
        change
    }

    /// Forgets a producer's mark.
    pub(super) fn forget_producer(&mut self, producer: &str) -> Change {
        if self.state.producers.remove(producer).is_none() {
            return Change::Same;
        }
        self.version += 1;
        Change::Changed
    }

    /// The stored position of `channel`.
    pub(super) fn position(&self, channel: &str) -> Option<ChannelPosition> {
        self.state.channels.get(channel).cloned()
    }

    /// Every ingest mark.
    pub(super) fn producer_marks(&self) -> BTreeMap<String, u64> {
        self.state.producers.clone()
    }

    /// `None` when everything changed so far is durable; otherwise where the
    /// answer comes once it is.
    pub(super) fn when_durable(&mut self) -> Option<Reply<()>> {
        if !self.dirty() {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        self.waiters.push_back(Waiter::Durable {
            since: self.version,
            reply,
        });
        Some(answer)
    }

    /// Whether a write should start now: none in flight, something to
    /// write, and either `eager` (every change is written) or a request
    /// waiting for one.
    pub(super) fn wants_write(&self, eager: bool) -> bool {
        self.writing.is_none() && self.dirty() && (eager || !self.waiters.is_empty())
    }

    /// A write starts: the version and a copy of the state to save.
    pub(super) fn begin_write(&mut self) -> (u64, Snapshot) {
        self.writing = Some(self.version);
        (self.version, self.state.clone())
    }

    /// `snapshot`, the state at `version`, is durable: answers whoever it
    /// covers.
    pub(super) fn wrote(&mut self, version: u64, snapshot: &Snapshot) {
        self.writing = None;
        self.written = self.written.max(version);
        for (channel, issuer) in &mut self.issuers {
            issuer.durable = issuer.durable.max(snapshot.published(channel));
        }
        let mut kept = VecDeque::new();
        for waiter in std::mem::take(&mut self.waiters) {
            match waiter {
                Waiter::Durable { since, reply } if since <= self.written => {
                    let _ = reply.send(Ok(()));
                }
                Waiter::Stamp {
                    channel,
                    since,
                    reply,
                } => match self.issuers.get_mut(&channel) {
                    Some(issuer) if issuer.issued < issuer.durable => {
                        issuer.pending = issuer.pending.saturating_sub(1);
                        issuer.issued += 1;
                        if reply.send(Ok(issuer.issued)).is_err() {
                            // Nobody received it: the next stamp takes it.
                            issuer.issued -= 1;
                        }
                    }
                    _ => kept.push_back(Waiter::Stamp {
                        channel,
                        since,
                        reply,
                    }),
                },
                waiter => kept.push_back(waiter),
            }
        }
        self.waiters = kept;
    }

    /// The write of `version` failed: fails whoever it would have covered.
    pub(super) fn write_failed(&mut self, version: u64, error: &StoreError) {
        self.writing = None;
        let mut kept = VecDeque::new();
        for waiter in std::mem::take(&mut self.waiters) {
            match waiter {
                Waiter::Durable { since, reply } if since <= version => {
                    let _ = reply.send(Err(error.replicate()));
                }
                Waiter::Stamp {
                    channel,
                    since,
                    reply,
                } if since <= version => {
                    if let Some(issuer) = self.issuers.get_mut(&channel) {
                        issuer.pending = issuer.pending.saturating_sub(1);
                    }
                    let _ = reply.send(Err(error.replicate()));
                }
                waiter => kept.push_back(waiter),
            }
        }
        self.waiters = kept;
    }

    /// The snapshotter stops: whoever still waits gets `error()`.
    pub(super) fn fail_all(&mut self, error: impl Fn() -> StoreError) {
        for waiter in std::mem::take(&mut self.waiters) {
            match waiter {
                Waiter::Durable { reply, .. } => {
                    let _ = reply.send(Err(error()));
                }
                Waiter::Stamp { reply, .. } => {
                    let _ = reply.send(Err(error()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> StoreError {
        StoreError::Io {
            path: "test".into(),
            source: std::io::Error::other("disk full"),
        }
    }

    fn answered<T: std::fmt::Debug>(reply: &mut Reply<T>) -> Option<Result<T, StoreError>> {
        reply.try_recv().ok()
    }

    #[test]
    fn a_sequence_is_handed_out_only_once_its_reservation_is_durable() {
        let mut ledger = Ledger::new(Snapshot::default());
        let Stamped::AfterWrite(mut first) = ledger.stamp("c".into(), 3) else {
            panic!("nothing is durable yet");
        };
        assert!(answered(&mut first).is_none());
        assert!(ledger.wants_write(false), "a stamp waits for a write");
        let (version, snapshot) = ledger.begin_write();
        assert_eq!(snapshot.published("c"), 3, "a block of 3 reserved");
        ledger.wrote(version, &snapshot);
        assert_eq!(answered(&mut first).map(Result::ok), Some(Some(1)));
        // The rest of the block is handed out at once, then a new write.
        assert!(matches!(ledger.stamp("c".into(), 3), Stamped::Now(2)));
        assert!(matches!(ledger.stamp("c".into(), 3), Stamped::Now(3)));
        assert!(matches!(
            ledger.stamp("c".into(), 3),
            Stamped::AfterWrite(_)
        ));
    }

    #[test]
    fn a_loaded_reservation_is_never_handed_out_again() {
        let mut loaded = Snapshot::default();
        loaded.channels.insert(
            "c".into(),
            ChannelPosition {
                published: 5,
                ..ChannelPosition::default()
            },
        );
        let mut ledger = Ledger::new(loaded);
        let Stamped::AfterWrite(mut next) = ledger.stamp("c".into(), 1) else {
            panic!("5 was already handed out before the restart");
        };
        let (version, snapshot) = ledger.begin_write();
        ledger.wrote(version, &snapshot);
        assert_eq!(answered(&mut next).map(Result::ok), Some(Some(6)));
    }

    #[test]
    fn a_failed_write_fails_what_it_covered_and_keeps_later_requests() {
        let mut ledger = Ledger::new(Snapshot::default());
        assert_eq!(ledger.advance("c".into(), 1, None), Change::Changed);
        let mut covered = ledger.when_durable().expect("dirty");
        let (version, _) = ledger.begin_write();
        assert_eq!(ledger.advance("c".into(), 2, None), Change::Changed);
        let mut later = ledger.when_durable().expect("dirty");
        ledger.write_failed(version, &failure());
        assert!(matches!(answered(&mut covered), Some(Err(_))));
        assert!(
            answered(&mut later).is_none(),
            "a later change waits for its own write"
        );
        assert!(ledger.wants_write(false));
        let (version, snapshot) = ledger.begin_write();
        ledger.wrote(version, &snapshot);
        assert!(matches!(answered(&mut later), Some(Ok(()))));
        assert!(!ledger.dirty());
    }

    #[test]
    fn positions_never_move_back_within_an_epoch_and_marks_only_rise() {
        let mut ledger = Ledger::new(Snapshot::default());
        assert_eq!(
            ledger.advance("c".into(), 5, Some("e".into())),
            Change::Changed
        );
        assert_eq!(
            ledger.advance("c".into(), 3, Some("e".into())),
            Change::Stale
        );
        assert_eq!(
            ledger.advance("c".into(), 5, Some("e".into())),
            Change::Same
        );
        assert_eq!(
            ledger.advance("c".into(), 1, Some("f".into())),
            Change::Changed
        );
        assert_eq!(ledger.position("c").map(|p| p.delivered), Some(1));
        assert_eq!(ledger.advance_producer("p".into(), 4), Change::Changed);
        assert_eq!(ledger.advance_producer("p".into(), 2), Change::Stale);
        assert_eq!(ledger.producer_marks().get("p"), Some(&4));
        assert_eq!(ledger.forget_producer("p"), Change::Changed);
        assert_eq!(ledger.forget_producer("p"), Change::Same);
    }
}
