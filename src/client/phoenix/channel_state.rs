//! The lifecycle of one client channel (PHX-C5, PHX-C9, PHX-C10).
//!
//! [`ChannelLifecycle::on`] is a pure transition function: it takes an
//! event and the current time and returns what the caller must do
//! ([`Action`]s) — send a join or leave, arm a rejoin timer, flush and
//! announce. It does no I/O and reads no clock; jitter comes from an
//! injectable function so tests are deterministic.
//!
//! ```text
//! Closed ──Join──▶ Joining ──JoinOk(current ref)──▶ Joined
//!                    │  ▲                             │
//!   JoinError /      │  │ RejoinTimerFired            │ PhxError /
//!   JoinTimeout /    ▼  │ (transport up) /            │ TransportLost
//!   PhxError /     Errored  TransportUp  ◀────────────┘
//!   TransportLost
//! Joining | Joined ──Leave──▶ Leaving ──LeaveReplied──▶ Closed
//! Joining | Joined ──PhxClose(current ref)──▶ Closed (no rejoin)
//! Errored ──Leave──▶ Closed
//! ```

use std::time::Instant;

use crate::client::backoff::RejoinBackoff;

/// Where one channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChannelState {
    /// Not joined and not trying to be.
    Closed,
    /// A `phx_join` with `join_ref` was sent at `since`; no reply yet.
    Joining {
        /// Ref of the join in flight; also the channel's join_ref.
        join_ref: String,
        /// When the join was sent (start of its timeout).
        since: Instant,
    },
    /// The server accepted the join made with `join_ref`.
    Joined {
        /// The current join_ref.
        join_ref: String,
    },
    /// The last join failed or the channel was lost; a rejoin is due at
    /// `retry_at` (or as soon as the transport is up again).
    Errored {
        /// Earliest time the rejoin timer may rejoin.
        retry_at: Instant,
        /// Failed joins in a row (join errors, join timeouts, `phx_error`).
        tries: u32,
    },
    /// A `phx_leave` for `join_ref` was sent; waiting for its reply.
    Leaving {
        /// The join_ref being left.
        join_ref: String,
    },
}

impl ChannelState {
    /// The join_ref messages must carry to belong to this channel, if any.
    pub(crate) fn join_ref(&self) -> Option<&str> {
        match self {
            ChannelState::Joining { join_ref, .. }
            | ChannelState::Joined { join_ref }
            | ChannelState::Leaving { join_ref } => Some(join_ref),
            ChannelState::Closed | ChannelState::Errored { .. } => None,
        }
    }

    /// Whether an inbound message with this join_ref belongs to the current
    /// join (PHX-C9): a null join_ref (a broadcast) always passes; a
    /// non-null one must equal the current join_ref, so replies and
    /// `phx_close`s from an earlier join are dropped.
    pub(crate) fn accepts(&self, join_ref: Option<&str>) -> bool {
        match join_ref {
            None => true,
            Some(r) => self.join_ref() == Some(r),
        }
    }

    /// Whether the channel is joined (pushes may be written).
    pub(crate) fn is_joined(&self) -> bool {
        matches!(self, ChannelState::Joined { .. })
    }
}

/// Something that happened to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChannelEvent {
    /// The application asked to join; `join_ref` is freshly assigned.
    Join {
        /// Ref for the new join.
        join_ref: String,
    },
    /// `phx_reply` with status `ok` to the join made with `join_ref`.
    JoinOk {
        /// Ref of the join that was answered.
        join_ref: String,
    },
    /// `phx_reply` with status `error` to the join made with `join_ref`.
    JoinError {
        /// Ref of the join that was answered.
        join_ref: String,
    },
    /// No reply to the join made with `join_ref` within the join timeout.
    JoinTimeout {
        /// Ref of the join that timed out.
        join_ref: String,
    },
    /// The server sent `phx_error` carrying `join_ref`.
    PhxError {
        /// join_ref of the frame.
        join_ref: String,
    },
    /// The server sent `phx_close` carrying `join_ref`.
    PhxClose {
        /// join_ref of the frame.
        join_ref: String,
    },
    /// The socket went down.
    TransportLost,
    /// A new socket is up; channels that were joining, joined or errored
    /// rejoin with `join_ref` (freshly assigned).
    TransportUp {
        /// Ref for the rejoin.
        join_ref: String,
    },
    /// The application asked to leave.
    Leave,
    /// The `phx_leave` for `join_ref` was answered (ok or error) or timed
    /// out; either way the channel is closed.
    LeaveReplied {
        /// join_ref the leave was sent for.
        join_ref: String,
    },
    /// The timer armed by [`Action::ScheduleRejoin`] fired.
    RejoinTimerFired {
        /// Ref for the rejoin (freshly assigned; unused if nothing happens).
        join_ref: String,
        /// Whether a socket is up right now; if not, the rejoin waits for
        /// [`ChannelEvent::TransportUp`].
        transport_up: bool,
    },
}

/// What the caller must do after a transition, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write `phx_join` with this join_ref (as both join_ref and ref) and
    /// start its join timeout.
    SendJoin {
        /// The join_ref (and ref) of the join.
        join_ref: String,
    },
    /// Write `phx_leave` for this join_ref.
    SendLeave {
        /// The join_ref being left.
        join_ref: String,
    },
    /// Arm the rejoin timer to fire [`ChannelEvent::RejoinTimerFired`] at
    /// `at` (replacing any earlier one).
    ScheduleRejoin {
        /// When to fire.
        at: Instant,
    },
    /// The join succeeded: flush the pushes buffered for this topic
    /// (PHX-C6) under this join_ref.
    Joined {
        /// The new current join_ref.
        join_ref: String,
    },
    /// The channel had been joined before and is joined again: emit the
    /// `rejoined` event (after the flush, PHX-C8).
    EmitRejoined {
        /// The new current join_ref.
        join_ref: String,
    },
    /// The channel is closed for good (left, or closed by the server): drop
    /// its buffered pushes and tell the application. No rejoin follows.
    Closed,
}

/// Default jitter source for rejoin delays.
fn random_unit() -> f64 {
    fastrand::f64()
}

/// One channel's state plus the bookkeeping its transitions need: the
/// rejoin schedule and whether it was ever joined (to tell a rejoin from
/// the first join).
#[derive(Debug, Clone)]
pub(crate) struct ChannelLifecycle {
    state: ChannelState,
    rejoin: RejoinBackoff,
    joined_before: bool,
    jitter: fn() -> f64,
}

impl Default for ChannelLifecycle {
    fn default() -> Self {
        ChannelLifecycle::new()
    }
}

impl ChannelLifecycle {
    /// A closed channel with random rejoin jitter.
    pub(crate) fn new() -> Self {
        ChannelLifecycle::with_jitter(random_unit)
    }

    /// A closed channel whose rejoin jitter units (in `[0, 1)`) come from
    /// `jitter`; tests pass a constant.
    pub(crate) fn with_jitter(jitter: fn() -> f64) -> Self {
        ChannelLifecycle {
            state: ChannelState::Closed,
            rejoin: RejoinBackoff::new(),
            joined_before: false,
            jitter,
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> &ChannelState {
        &self.state
    }

    /// See [`ChannelState::accepts`].
    pub(crate) fn accepts(&self, join_ref: Option<&str>) -> bool {
        self.state.accepts(join_ref)
    }

    /// Applies `event` at `now` and returns what to do, in order. Events
    /// that do not apply to the current state — including any carrying a
    /// stale join_ref — change nothing and return no actions.
    pub(crate) fn on(&mut self, event: ChannelEvent, now: Instant) -> Vec<Action> {
        use ChannelEvent as E;
        use ChannelState as S;
        let current = self.state.join_ref().map(str::to_owned);
        let is_current = |r: &str| current.as_deref() == Some(r);
        match (&self.state, event) {
            (S::Closed, E::Join { join_ref }) => {
                self.rejoin.reset();
                self.joining(join_ref, now)
            }
            (S::Joining { .. }, E::JoinOk { join_ref }) if is_current(&join_ref) => {
                self.rejoin.reset();
                self.state = S::Joined {
                    join_ref: join_ref.clone(),
                };
                let mut actions = vec![Action::Joined {
                    join_ref: join_ref.clone(),
                }];
                if std::mem::replace(&mut self.joined_before, true) {
                    actions.push(Action::EmitRejoined { join_ref });
                }
                actions
            }
            (S::Joining { .. }, E::JoinError { join_ref }) if is_current(&join_ref) => {
                self.errored(now)
            }
            (S::Joining { .. }, E::JoinTimeout { join_ref }) if is_current(&join_ref) => {
                let mut actions = vec![Action::SendLeave { join_ref }];
                actions.extend(self.errored(now));
                actions
            }
            (S::Joining { .. } | S::Joined { .. }, E::PhxError { join_ref })
                if is_current(&join_ref) =>
            {
                self.errored(now)
            }
            (
                S::Joining { .. } | S::Joined { .. } | S::Leaving { .. },
                E::PhxClose { join_ref },
            ) if is_current(&join_ref) => self.closed(),
            (S::Joining { .. } | S::Joined { .. }, E::TransportLost) => {
                self.state = S::Errored {
                    retry_at: now,
                    tries: self.rejoin.tries(),
                };
                Vec::new()
            }
            (S::Leaving { .. }, E::TransportLost | E::TransportUp { .. }) => self.closed(),
            (
                S::Joining { .. } | S::Joined { .. } | S::Errored { .. },
                E::TransportUp { join_ref },
            ) => {
                self.rejoin.reset();
                self.joining(join_ref, now)
            }
            (S::Joining { join_ref, .. } | S::Joined { join_ref }, E::Leave) => {
                let join_ref = join_ref.clone();
                self.state = S::Leaving {
                    join_ref: join_ref.clone(),
                };
                vec![Action::SendLeave { join_ref }]
            }
            (S::Errored { .. }, E::Leave) => self.closed(),
            (S::Leaving { .. }, E::LeaveReplied { join_ref }) if is_current(&join_ref) => {
                self.closed()
            }
            (
                S::Errored { retry_at, .. },
                E::RejoinTimerFired {
                    join_ref,
                    transport_up: true,
                },
            ) if now >= *retry_at => self.joining(join_ref, now),
            _ => Vec::new(),
        }
    }

    fn joining(&mut self, join_ref: String, now: Instant) -> Vec<Action> {
        self.state = ChannelState::Joining {
            join_ref: join_ref.clone(),
            since: now,
        };
        vec![Action::SendJoin { join_ref }]
    }

    fn errored(&mut self, now: Instant) -> Vec<Action> {
        let at = now + self.rejoin.next_delay_with((self.jitter)());
        self.state = ChannelState::Errored {
            retry_at: at,
            tries: self.rejoin.tries(),
        };
        vec![Action::ScheduleRejoin { at }]
    }

    fn closed(&mut self) -> Vec<Action> {
        self.state = ChannelState::Closed;
        self.rejoin.reset();
        self.joined_before = false;
        vec![Action::Closed]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn half() -> f64 {
        0.5
    }

    fn r(s: &str) -> String {
        s.to_owned()
    }

    /// A fake clock: a fixed origin plus offsets.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn setup() -> (ChannelLifecycle, Clock) {
        (ChannelLifecycle::with_jitter(half), Clock(Instant::now()))
    }

    fn joined(ch: &mut ChannelLifecycle, clock: &Clock, join_ref: &str) {
        ch.on(
            ChannelEvent::Join {
                join_ref: r(join_ref),
            },
            clock.at(0),
        );
        ch.on(
            ChannelEvent::JoinOk {
                join_ref: r(join_ref),
            },
            clock.at(10),
        );
        assert!(ch.state().is_joined());
    }

    #[test]
    fn closed_to_joining_on_join() {
        let (mut ch, clock) = setup();
        assert_eq!(ch.state(), &ChannelState::Closed);
        let actions = ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(5));
        assert_eq!(actions, [Action::SendJoin { join_ref: r("1") }]);
        assert_eq!(
            ch.state(),
            &ChannelState::Joining {
                join_ref: r("1"),
                since: clock.at(5)
            }
        );
    }

    #[test]
    fn second_join_request_is_ignored() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        assert!(ch
            .on(ChannelEvent::Join { join_ref: r("2") }, clock.at(1))
            .is_empty());
        assert_eq!(ch.state().join_ref(), Some("1"));
    }

    #[test]
    fn joining_to_joined_on_current_ok_without_rejoined() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        let actions = ch.on(ChannelEvent::JoinOk { join_ref: r("1") }, clock.at(3));
        assert_eq!(actions, [Action::Joined { join_ref: r("1") }]);
        assert_eq!(ch.state(), &ChannelState::Joined { join_ref: r("1") });
    }

    #[test]
    fn stale_join_replies_change_nothing() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("2") }, clock.at(0));
        let before = ch.state().clone();
        for event in [
            ChannelEvent::JoinOk { join_ref: r("1") },
            ChannelEvent::JoinError { join_ref: r("1") },
            ChannelEvent::JoinTimeout { join_ref: r("1") },
            ChannelEvent::PhxError { join_ref: r("1") },
            ChannelEvent::PhxClose { join_ref: r("1") },
        ] {
            assert!(ch.on(event, clock.at(1)).is_empty());
            assert_eq!(ch.state(), &before);
        }
    }

    #[test]
    fn replies_outside_joining_change_nothing() {
        let (mut ch, clock) = setup();
        assert!(ch
            .on(ChannelEvent::JoinOk { join_ref: r("1") }, clock.at(0))
            .is_empty());
        assert_eq!(ch.state(), &ChannelState::Closed);
        joined(&mut ch, &clock, "1");
        assert!(ch
            .on(ChannelEvent::JoinError { join_ref: r("1") }, clock.at(20))
            .is_empty());
        assert!(ch
            .on(ChannelEvent::JoinTimeout { join_ref: r("1") }, clock.at(20))
            .is_empty());
        assert!(ch.state().is_joined());
    }

    #[test]
    fn join_error_errors_and_schedules_rejoin() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        let actions = ch.on(ChannelEvent::JoinError { join_ref: r("1") }, clock.at(100));
        assert_eq!(
            actions,
            [Action::ScheduleRejoin {
                at: clock.at(1_100)
            }]
        );
        assert_eq!(
            ch.state(),
            &ChannelState::Errored {
                retry_at: clock.at(1_100),
                tries: 1
            }
        );
    }

    #[test]
    fn join_timeout_sends_leave_then_schedules_rejoin() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        let actions = ch.on(
            ChannelEvent::JoinTimeout { join_ref: r("1") },
            clock.at(10_000),
        );
        assert_eq!(
            actions,
            [
                Action::SendLeave { join_ref: r("1") },
                Action::ScheduleRejoin {
                    at: clock.at(11_000)
                }
            ]
        );
        assert!(matches!(ch.state(), ChannelState::Errored { tries: 1, .. }));
    }

    #[test]
    fn repeated_join_errors_follow_the_rejoin_schedule() {
        let (mut ch, clock) = setup();
        let mut now = 0;
        ch.on(ChannelEvent::Join { join_ref: r("0") }, clock.at(now));
        let mut delays = Vec::new();
        for i in 0..5 {
            let actions = ch.on(
                ChannelEvent::JoinError {
                    join_ref: i.to_string(),
                },
                clock.at(now),
            );
            let Some(Action::ScheduleRejoin { at }) = actions.first() else {
                panic!("expected a rejoin, got {actions:?}");
            };
            delays.push(at.duration_since(clock.at(now)).as_secs());
            now += at.duration_since(clock.at(now)).as_millis() as u64;
            let fired = ch.on(
                ChannelEvent::RejoinTimerFired {
                    join_ref: (i + 1).to_string(),
                    transport_up: true,
                },
                clock.at(now),
            );
            assert_eq!(
                fired,
                [Action::SendJoin {
                    join_ref: (i + 1).to_string()
                }]
            );
        }
        assert_eq!(delays, [1, 2, 5, 10, 10]);
    }

    #[test]
    fn joined_to_errored_on_phx_error() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        let actions = ch.on(ChannelEvent::PhxError { join_ref: r("1") }, clock.at(50));
        assert_eq!(
            actions,
            [Action::ScheduleRejoin {
                at: clock.at(1_050)
            }]
        );
        assert!(matches!(ch.state(), ChannelState::Errored { tries: 1, .. }));
    }

    #[test]
    fn joining_to_errored_on_phx_error() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        let actions = ch.on(ChannelEvent::PhxError { join_ref: r("1") }, clock.at(5));
        assert_eq!(
            actions,
            [Action::ScheduleRejoin {
                at: clock.at(1_005)
            }]
        );
    }

    #[test]
    fn stale_phx_error_on_joined_changes_nothing() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "2");
        assert!(ch
            .on(ChannelEvent::PhxError { join_ref: r("1") }, clock.at(50))
            .is_empty());
        assert!(ch.state().is_joined());
    }

    #[test]
    fn transport_loss_errors_without_timer_and_transport_up_rejoins() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        assert!(ch.on(ChannelEvent::TransportLost, clock.at(100)).is_empty());
        assert_eq!(
            ch.state(),
            &ChannelState::Errored {
                retry_at: clock.at(100),
                tries: 0
            }
        );
        assert!(!ch.accepts(Some("1")));
        let actions = ch.on(
            ChannelEvent::TransportUp { join_ref: r("2") },
            clock.at(900),
        );
        assert_eq!(actions, [Action::SendJoin { join_ref: r("2") }]);
        let actions = ch.on(ChannelEvent::JoinOk { join_ref: r("2") }, clock.at(950));
        assert_eq!(
            actions,
            [
                Action::Joined { join_ref: r("2") },
                Action::EmitRejoined { join_ref: r("2") }
            ]
        );
    }

    #[test]
    fn transport_loss_while_joining_errors() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        assert!(ch.on(ChannelEvent::TransportLost, clock.at(1)).is_empty());
        assert!(matches!(ch.state(), ChannelState::Errored { .. }));
        // The first join never succeeded, so success now is not a rejoin.
        ch.on(ChannelEvent::TransportUp { join_ref: r("2") }, clock.at(2));
        let actions = ch.on(ChannelEvent::JoinOk { join_ref: r("2") }, clock.at(3));
        assert_eq!(actions, [Action::Joined { join_ref: r("2") }]);
    }

    #[test]
    fn transport_up_while_joined_rejoins_on_the_new_socket() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        let actions = ch.on(ChannelEvent::TransportUp { join_ref: r("2") }, clock.at(20));
        assert_eq!(actions, [Action::SendJoin { join_ref: r("2") }]);
    }

    #[test]
    fn transport_up_while_closed_does_nothing() {
        let (mut ch, clock) = setup();
        assert!(ch
            .on(ChannelEvent::TransportUp { join_ref: r("1") }, clock.at(0))
            .is_empty());
        assert!(ch.on(ChannelEvent::TransportLost, clock.at(0)).is_empty());
        assert_eq!(ch.state(), &ChannelState::Closed);
    }

    #[test]
    fn rejoin_timer_needs_the_transport_and_the_due_time() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        ch.on(ChannelEvent::JoinError { join_ref: r("1") }, clock.at(0));
        let early = ChannelEvent::RejoinTimerFired {
            join_ref: r("2"),
            transport_up: true,
        };
        assert!(ch.on(early, clock.at(999)).is_empty());
        let down = ChannelEvent::RejoinTimerFired {
            join_ref: r("2"),
            transport_up: false,
        };
        assert!(ch.on(down, clock.at(1_000)).is_empty());
        assert!(matches!(ch.state(), ChannelState::Errored { .. }));
        let due = ChannelEvent::RejoinTimerFired {
            join_ref: r("2"),
            transport_up: true,
        };
        assert_eq!(
            ch.on(due, clock.at(1_000)),
            [Action::SendJoin { join_ref: r("2") }]
        );
        assert_eq!(
            ch.state(),
            &ChannelState::Joining {
                join_ref: r("2"),
                since: clock.at(1_000)
            }
        );
    }

    #[test]
    fn rejoin_timer_outside_errored_does_nothing() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        let fired = ChannelEvent::RejoinTimerFired {
            join_ref: r("2"),
            transport_up: true,
        };
        assert!(ch.on(fired, clock.at(60_000)).is_empty());
        assert_eq!(ch.state(), &ChannelState::Joined { join_ref: r("1") });
    }

    #[test]
    fn successful_rejoin_after_phx_error_emits_rejoined_and_resets_schedule() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        ch.on(ChannelEvent::PhxError { join_ref: r("1") }, clock.at(0));
        ch.on(
            ChannelEvent::RejoinTimerFired {
                join_ref: r("2"),
                transport_up: true,
            },
            clock.at(1_000),
        );
        let actions = ch.on(ChannelEvent::JoinOk { join_ref: r("2") }, clock.at(1_010));
        assert_eq!(
            actions,
            [
                Action::Joined { join_ref: r("2") },
                Action::EmitRejoined { join_ref: r("2") }
            ]
        );
        let actions = ch.on(ChannelEvent::PhxError { join_ref: r("2") }, clock.at(2_000));
        assert_eq!(
            actions,
            [Action::ScheduleRejoin {
                at: clock.at(3_000)
            }]
        );
    }

    #[test]
    fn phx_close_closes_without_rejoin() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        let actions = ch.on(ChannelEvent::PhxClose { join_ref: r("1") }, clock.at(30));
        assert_eq!(actions, [Action::Closed]);
        assert_eq!(ch.state(), &ChannelState::Closed);
        // Nothing brings it back but an explicit join.
        for event in [
            ChannelEvent::TransportLost,
            ChannelEvent::TransportUp { join_ref: r("2") },
            ChannelEvent::RejoinTimerFired {
                join_ref: r("2"),
                transport_up: true,
            },
        ] {
            assert!(ch.on(event, clock.at(90_000)).is_empty());
            assert_eq!(ch.state(), &ChannelState::Closed);
        }
        // A later explicit join is a first join again, not a rejoin.
        ch.on(ChannelEvent::Join { join_ref: r("3") }, clock.at(90_000));
        let actions = ch.on(ChannelEvent::JoinOk { join_ref: r("3") }, clock.at(90_001));
        assert_eq!(actions, [Action::Joined { join_ref: r("3") }]);
    }

    #[test]
    fn phx_close_while_joining_closes() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        let actions = ch.on(ChannelEvent::PhxClose { join_ref: r("1") }, clock.at(1));
        assert_eq!(actions, [Action::Closed]);
    }

    #[test]
    fn stale_phx_close_does_not_close_the_new_join() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        ch.on(ChannelEvent::TransportLost, clock.at(20));
        ch.on(ChannelEvent::TransportUp { join_ref: r("2") }, clock.at(30));
        assert!(!ch.accepts(Some("1")));
        assert!(ch
            .on(ChannelEvent::PhxClose { join_ref: r("1") }, clock.at(31))
            .is_empty());
        ch.on(ChannelEvent::JoinOk { join_ref: r("2") }, clock.at(32));
        assert!(ch
            .on(ChannelEvent::PhxClose { join_ref: r("1") }, clock.at(33))
            .is_empty());
        assert_eq!(ch.state(), &ChannelState::Joined { join_ref: r("2") });
    }

    #[test]
    fn leave_from_joined_goes_through_leaving() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        assert_eq!(
            ch.on(ChannelEvent::Leave, clock.at(20)),
            [Action::SendLeave { join_ref: r("1") }]
        );
        assert_eq!(ch.state(), &ChannelState::Leaving { join_ref: r("1") });
        assert!(ch.on(ChannelEvent::Leave, clock.at(21)).is_empty());
        assert!(ch
            .on(
                ChannelEvent::LeaveReplied { join_ref: r("0") },
                clock.at(22)
            )
            .is_empty());
        assert_eq!(
            ch.on(
                ChannelEvent::LeaveReplied { join_ref: r("1") },
                clock.at(23)
            ),
            [Action::Closed]
        );
        assert_eq!(ch.state(), &ChannelState::Closed);
    }

    #[test]
    fn leave_while_joining_leaves_that_join() {
        let (mut ch, clock) = setup();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        assert_eq!(
            ch.on(ChannelEvent::Leave, clock.at(1)),
            [Action::SendLeave { join_ref: r("1") }]
        );
        // A late join reply no longer matters.
        assert!(ch
            .on(ChannelEvent::JoinOk { join_ref: r("1") }, clock.at(2))
            .is_empty());
        assert_eq!(ch.state(), &ChannelState::Leaving { join_ref: r("1") });
    }

    #[test]
    fn leave_while_errored_closes_at_once() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        ch.on(ChannelEvent::PhxError { join_ref: r("1") }, clock.at(20));
        assert_eq!(ch.on(ChannelEvent::Leave, clock.at(21)), [Action::Closed]);
        let fired = ChannelEvent::RejoinTimerFired {
            join_ref: r("2"),
            transport_up: true,
        };
        assert!(ch.on(fired, clock.at(5_000)).is_empty());
        assert_eq!(ch.state(), &ChannelState::Closed);
    }

    #[test]
    fn leave_while_closed_does_nothing() {
        let (mut ch, clock) = setup();
        assert!(ch.on(ChannelEvent::Leave, clock.at(0)).is_empty());
    }

    #[test]
    fn leaving_closes_when_the_transport_goes() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        ch.on(ChannelEvent::Leave, clock.at(20));
        assert_eq!(
            ch.on(ChannelEvent::TransportLost, clock.at(21)),
            [Action::Closed]
        );
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        ch.on(ChannelEvent::Leave, clock.at(20));
        assert_eq!(
            ch.on(ChannelEvent::TransportUp { join_ref: r("2") }, clock.at(21)),
            [Action::Closed]
        );
    }

    #[test]
    fn server_close_while_leaving_closes() {
        let (mut ch, clock) = setup();
        joined(&mut ch, &clock, "1");
        ch.on(ChannelEvent::Leave, clock.at(20));
        assert_eq!(
            ch.on(ChannelEvent::PhxClose { join_ref: r("1") }, clock.at(21)),
            [Action::Closed]
        );
    }

    #[test]
    fn accepts_null_and_current_refs_only() {
        let (mut ch, clock) = setup();
        assert!(ch.accepts(None));
        assert!(!ch.accepts(Some("1")));
        ch.on(ChannelEvent::Join { join_ref: r("1") }, clock.at(0));
        assert!(ch.accepts(Some("1")));
        assert!(!ch.accepts(Some("0")));
        ch.on(ChannelEvent::JoinOk { join_ref: r("1") }, clock.at(1));
        assert!(ch.accepts(None));
        assert!(ch.accepts(Some("1")));
        assert!(!ch.accepts(Some("11")));
        ch.on(ChannelEvent::Leave, clock.at(2));
        assert!(ch.accepts(Some("1")));
    }

    #[test]
    fn default_jitter_keeps_rejoin_within_bounds() {
        let mut ch = ChannelLifecycle::new();
        let now = Instant::now();
        ch.on(ChannelEvent::Join { join_ref: r("1") }, now);
        let actions = ch.on(ChannelEvent::JoinError { join_ref: r("1") }, now);
        let Some(Action::ScheduleRejoin { at }) = actions.first() else {
            panic!("expected a rejoin, got {actions:?}");
        };
        let delay = at.duration_since(now);
        assert!(delay >= Duration::from_millis(800) && delay <= Duration::from_millis(1_200));
    }
}
