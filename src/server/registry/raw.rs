//! Broadcasts of a payload as it arrived: the frame is built around its
//! bytes, with no `Value` parsed or encoded on the way.

use bytestring::ByteString;

use super::{refuse_reserved, Registry, SessionId};
use crate::protocol::phoenix;
use crate::protocol::Payload;
use crate::server::member::Carried;

impl Registry {
    /// [`broadcast`](Registry::broadcast) of a raw payload. A plain topic on
    /// a hub without a cluster gets the payload's bytes as they are; a
    /// recoverable or cluster topic, which stamps or forwards a `Value`,
    /// parses it once.
    pub(crate) fn broadcast_payload(
        &self,
        topic: &str,
        event: &str,
        payload: &Payload,
        except: Option<SessionId>,
    ) -> usize {
        if self.cluster().is_some() || self.history_for(topic).is_some() {
            return self.broadcast(topic, event, &payload.to_value(), except);
        }
        if phoenix::is_reserved_event(event) {
            refuse_reserved(topic, event, "broadcast");
            return 0;
        }
        if !self.topics.contains_key(topic) {
            return 0;
        }
        let frame = ByteString::from(phoenix::encode_raw(None, None, topic, event, payload));
        self.deliver_plain(topic, event, Carried::Raw(payload), &frame, except)
    }
}
