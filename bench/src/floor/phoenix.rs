//! Phoenix V2 frames as the floor reads and writes them: the array
//! `[join_ref, ref, topic, event, payload]` parsed into borrowed fields,
//! answers encoded with serde straight from those fields.

use anyhow::Context;
use serde::Serialize;
use serde_json::value::RawValue;

/// The event of a reply.
pub const REPLY_EVENT: &str = "phx_reply";
/// The event of a join.
pub const JOIN_EVENT: &str = "phx_join";
/// The event of a leave.
pub const LEAVE_EVENT: &str = "phx_leave";
/// The topic of heartbeats.
pub const HEARTBEAT_TOPIC: &str = "phoenix";
/// The event of a heartbeat.
pub const HEARTBEAT_EVENT: &str = "heartbeat";

/// One inbound frame, borrowed from its text.
pub type Frame<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a str,
    &'a RawValue,
);

/// Parses `text` as a Phoenix V2 array (strings with escapes are refused:
/// nothing the bench sends has them).
pub fn parse(text: &str) -> anyhow::Result<Frame<'_>> {
    serde_json::from_str(text).context("not a Phoenix V2 frame")
}

/// The payload of a `phx_reply`.
#[derive(Serialize)]
struct ReplyPayload<'a> {
    status: &'a str,
    response: &'a RawValue,
}

/// `[join_ref, ref, topic, "phx_reply", {"status": status, "response": response}]`.
pub fn reply(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: &str,
    response: &RawValue,
) -> String {
    let payload = ReplyPayload { status, response };
    // Strings and raw JSON only: serializing cannot fail.
    serde_json::to_string(&(join_ref, msg_ref, topic, REPLY_EVENT, payload)).unwrap_or_default()
}

/// `[join_ref, ref, topic, event, payload]`.
pub fn push(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &RawValue,
) -> String {
    serde_json::to_string(&(join_ref, msg_ref, topic, event, payload)).unwrap_or_default()
}

/// The ref of `text` when it is a `phx_reply` with status `ok`.
pub fn ok_reply_ref(text: &str) -> anyhow::Result<Option<u64>> {
    let (_, msg_ref, _, event, payload) = parse(text)?;
    if event != REPLY_EVENT {
        return Ok(None);
    }
    let status: Status<'_> = serde_json::from_str(payload.get()).context("reply payload")?;
    if status.status != "ok" {
        anyhow::bail!("refused: {text}");
    }
    Ok(msg_ref.and_then(|msg_ref| msg_ref.parse().ok()))
}

/// The status of a reply payload.
#[derive(serde::Deserialize)]
struct Status<'a> {
    status: &'a str,
}

/// A client's frames on one topic, joined with join_ref `1`: refs count up
/// from 2 (the join is 1), as switchboard's client numbers them.
pub struct Pushes {
    topic: &'static str,
    next_ref: u64,
    ref_text: String,
}

impl Pushes {
    /// Frames on `topic`.
    pub fn new(topic: &'static str) -> Pushes {
        Pushes {
            topic,
            next_ref: 2,
            ref_text: String::new(),
        }
    }

    /// The join (join_ref = ref = 1, empty payload).
    pub fn join(&self) -> String {
        push(Some("1"), Some("1"), self.topic, JOIN_EVENT, empty())
    }

    /// The next push of `event` and its ref.
    pub fn next(&mut self, event: &str, payload: &RawValue) -> (u64, String) {
        use std::fmt::Write as _;
        let msg_ref = self.next_ref;
        self.next_ref += 1;
        self.ref_text.clear();
        let _ = write!(self.ref_text, "{msg_ref}");
        let frame = push(Some("1"), Some(&self.ref_text), self.topic, event, payload);
        (msg_ref, frame)
    }
}

/// `{}` as raw JSON.
pub fn empty() -> &'static RawValue {
    literal("{}")
}

/// `{"reason":"unmatched topic"}`: Phoenix's answer to a push on a topic
/// the socket has not joined.
pub fn unmatched_topic() -> &'static RawValue {
    literal(r#"{"reason":"unmatched topic"}"#)
}

/// A JSON literal as raw JSON (`null` if it were not valid).
fn literal(json: &'static str) -> &'static RawValue {
    serde_json::from_str(json).unwrap_or(RawValue::NULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_borrowed() {
        let payload = RawValue::from_string(r#"{"body":"x"}"#.to_owned()).expect("json");
        let mut pushes = Pushes::new("bench:load");
        assert_eq!(pushes.join(), r#"["1","1","bench:load","phx_join",{}]"#);
        let (msg_ref, frame) = pushes.next("ping", &payload);
        assert_eq!(msg_ref, 2);
        let (join_ref, got_ref, topic, event, body) = parse(&frame).expect("parses");
        assert_eq!(
            (join_ref, got_ref, topic, event, body.get()),
            (
                Some("1"),
                Some("2"),
                "bench:load",
                "ping",
                r#"{"body":"x"}"#
            )
        );
        let answer = reply(join_ref, got_ref, topic, "ok", body);
        assert_eq!(
            answer,
            r#"["1","2","bench:load","phx_reply",{"status":"ok","response":{"body":"x"}}]"#
        );
        assert_eq!(ok_reply_ref(&answer).expect("a reply"), Some(2));
        assert_eq!(ok_reply_ref(&frame).expect("a push"), None);
        assert!(parse(r#"{"not":"an array"}"#).is_err());
    }
}
