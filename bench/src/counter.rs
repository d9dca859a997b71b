//! A count of messages a server received, shared with the sender so it can
//! keep a bounded number in flight without spinning.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Messages counted by a server; a sender waits on it for room in its window.
#[derive(Default)]
pub struct Counter {
    counted: AtomicU64,
    wake_at: AtomicU64,
    waiting: AtomicBool,
    wake: Notify,
}

impl Counter {
    /// A fresh counter at zero.
    pub fn new() -> Arc<Counter> {
        Arc::new(Counter::default())
    }

    /// Server side: `n` more messages arrived. Wakes a waiting sender once
    /// the count reaches the mark it asked for.
    pub fn add(&self, n: u64) {
        let now = self.counted.fetch_add(n, Ordering::AcqRel) + n;
        if self.waiting.load(Ordering::Acquire)
            && now >= self.wake_at.load(Ordering::Acquire)
            && self.waiting.swap(false, Ordering::AcqRel)
        {
            self.wake.notify_one();
        }
    }

    /// Messages counted so far.
    pub fn get(&self) -> u64 {
        self.counted.load(Ordering::Acquire)
    }

    /// Sender side: returns once fewer than `window` of the `sent` messages
    /// are uncounted. When the window is full it sleeps until half of it has
    /// drained, so a saturated sender is woken once per half window, not per
    /// message.
    pub async fn wait_for_room(&self, sent: u64, window: u64) {
        let window = window.max(1);
        while sent.saturating_sub(self.get()) >= window {
            let notified = self.wake.notified();
            self.wake_at
                .store(sent.saturating_sub(window / 2), Ordering::Release);
            self.waiting.store(true, Ordering::Release);
            if sent.saturating_sub(self.get()) < window {
                self.waiting.store(false, Ordering::Release);
                break;
            }
            notified.await;
        }
    }

    /// Waits until at least `target` messages were counted.
    pub async fn wait_for(&self, target: u64) {
        // `target` counted means `target` sent with a window of 1 left over.
        self.wait_for_room(target, 1).await;
    }
}
