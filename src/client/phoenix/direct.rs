//! The direct path of fire-and-forget sends: while a topic is joined and
//! nothing is waiting for it in the `Subscription`, a
//! [`PhoenixHandle::send`](crate::client::PhoenixHandle::send) encodes its
//! push and queues it on the socket's outbox itself, without a round trip
//! through the actor.
//!
//! The `Subscription` opens a topic's writer once the topic is joined and
//! its buffer flushed, and closes it on any other state. A handle takes the
//! direct path only when none of its sends is still on its way through the
//! actor, so pushes keep the order they were sent in; anything the direct
//! path cannot do (not joined, outbox half full or gone) goes through the
//! actor, which paces, buffers or answers the error as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytestring::ByteString;

use crate::client::refs::RefCounter;
use crate::protocol::phoenix;
use crate::transport::outbox::Outbox;

#[derive(Clone)]
struct Writer {
    join_ref: Arc<str>,
    outbox: Outbox,
}

/// The open direct writers of one connection's topics, shared by the
/// `Subscription` (which opens and closes them) and its handles. A plain
/// map under a lock: it allocates nothing until a topic is joined, and
/// writers change only when a topic's state does.
#[derive(Clone, Default)]
pub(crate) struct DirectWriters {
    writers: Arc<RwLock<HashMap<String, Writer>>>,
    through_actor: Arc<AtomicUsize>,
}

impl DirectWriters {
    /// Lets handles write `topic` directly, with `join_ref`, to `outbox`.
    pub(crate) fn open(&self, topic: &str, join_ref: &str, outbox: &Outbox) {
        let current = self.read().get(topic).map(|writer| writer.join_ref.clone());
        if current.as_deref() == Some(join_ref) {
            return;
        }
        let writer = Writer {
            join_ref: Arc::from(join_ref),
            outbox: outbox.clone(),
        };
        self.write().insert(topic.to_owned(), writer);
    }

    /// Sends to `topic` go through the actor from now on.
    pub(crate) fn close(&self, topic: &str) {
        if self.read().contains_key(topic) {
            self.write().remove(topic);
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Writer>> {
        self.writers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Writer>> {
        self.writers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes a fire-and-forget push straight to the socket; `false` when
    /// it must go through the actor instead (nothing was written then).
    pub(crate) fn try_send<P: serde::Serialize + ?Sized>(
        &self,
        refs: &RefCounter,
        topic: &str,
        event: &str,
        payload: &P,
    ) -> bool {
        if self.through_actor.load(Ordering::Acquire) > 0 {
            return false;
        }
        let Some(writer) = self.read().get(topic).cloned() else {
            return false;
        };
        // A backlog means the writer is behind (or the caller never yields,
        // and the writer never gets to run): the actor path paces sends.
        if writer.outbox.is_gone() || !writer.outbox.has_room() {
            return false;
        }
        let msg_ref = refs.next();
        let frame = phoenix::encode_parts(
            Some(&writer.join_ref),
            Some(&msg_ref),
            topic,
            event,
            payload,
        );
        writer.outbox.push(ByteString::from(frame)).is_ok()
    }

    /// A send is on its way through the actor.
    pub(crate) fn via_actor(&self) -> ThroughActor {
        self.through_actor.fetch_add(1, Ordering::AcqRel);
        ThroughActor(self.through_actor.clone())
    }
}

/// Marks a send going through the actor; the direct path stays shut until
/// every such send was handled (dropped when it was).
pub(crate) struct ThroughActor(Arc<AtomicUsize>);

impl Drop for ThroughActor {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for ThroughActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThroughActor")
    }
}
