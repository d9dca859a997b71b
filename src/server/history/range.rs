//! A range of a topic's ring, read on request (pure).

use bytestring::ByteString;
use serde_json::Value;

use super::TopicLog;
use crate::protocol::history::{HistoryPage, HistoryQuery};

/// A range of a ring, copied under the log's lock and read after it.
pub(crate) struct Selected {
    epoch: String,
    top: u64,
    oldest: Option<u64>,
    frames: Vec<ByteString>,
    truncated: bool,
}

impl Selected {
    /// The page: each frame's payload, parsed now (outside the lock).
    pub(crate) fn into_page(self) -> HistoryPage {
        HistoryPage {
            epoch: self.epoch,
            top: self.top,
            oldest: self.oldest,
            publications: self.frames.iter().map(|frame| payload_of(frame)).collect(),
            truncated: self.truncated,
        }
    }
}

impl TopicLog {
    /// The part of the ring `query` asks for: at most `max_items` messages
    /// and, past the first, at most `max_bytes` of encoded frames. Only
    /// cheap copies of the frames are made here.
    pub(crate) fn select(
        &self,
        query: &HistoryQuery,
        max_items: usize,
        max_bytes: usize,
    ) -> Selected {
        let since = query.since.unwrap_or(0);
        let until = query.until.unwrap_or(u64::MAX);
        let limit = query
            .limit
            .map_or(max_items, |limit| {
                usize::try_from(limit).unwrap_or(usize::MAX)
            })
            .min(max_items);
        let matching = || {
            self.ring
                .iter()
                .filter(move |(sequence, _)| *sequence > since && *sequence <= until)
        };
        let count = matching().count();
        // With `since`, page forward from it; without, the latest.
        let skip = if query.since.is_some() {
            0
        } else {
            count.saturating_sub(limit)
        };
        let mut frames = Vec::new();
        let mut bytes = 0;
        for (_, frame) in matching().skip(skip).take(limit) {
            if !frames.is_empty() && bytes + frame.len() > max_bytes {
                break;
            }
            bytes += frame.len();
            frames.push(frame.clone());
        }
        Selected {
            epoch: self.epoch.clone(),
            top: self.top,
            oldest: self.ring.front().map(|(sequence, _)| *sequence),
            truncated: frames.len() < count,
            frames,
        }
    }

    /// [`select`](Self::select), read into a page.
    #[cfg(test)]
    pub(crate) fn range(
        &self,
        query: &HistoryQuery,
        max_items: usize,
        max_bytes: usize,
    ) -> HistoryPage {
        self.select(query, max_items, max_bytes).into_page()
    }
}

/// The payload of a stored broadcast frame `[null, null, topic, event, payload]`.
fn payload_of(frame: &str) -> Value {
    serde_json::from_str::<Vec<Value>>(frame)
        .ok()
        .and_then(|mut parts| (parts.len() == 5).then(|| parts.swap_remove(4)))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn log_of(count: u64) -> TopicLog {
        let mut log = TopicLog::new("e".to_owned(), 100, 1 << 20);
        for n in 1..=count {
            log.append("t", "news", &json!({ "n": n }));
        }
        log
    }

    fn sequences(page: &HistoryPage) -> Vec<u64> {
        page.publications
            .iter()
            .map(|publication| publication["sequence"].as_u64().expect("sequenced"))
            .collect()
    }

    fn query(limit: Option<u64>, since: Option<u64>, until: Option<u64>) -> HistoryQuery {
        HistoryQuery {
            limit,
            since,
            until,
        }
    }

    #[test]
    fn since_pages_forward_and_no_since_gives_the_latest() {
        let log = log_of(10);
        let forward = log.range(&query(Some(3), Some(4), None), 100, 1 << 20);
        assert_eq!(sequences(&forward), [5, 6, 7]);
        assert!(forward.truncated);
        let latest = log.range(&query(Some(3), None, None), 100, 1 << 20);
        assert_eq!(sequences(&latest), [8, 9, 10]);
        let bounded = log.range(&query(None, Some(2), Some(5)), 100, 1 << 20);
        assert_eq!(sequences(&bounded), [3, 4, 5]);
        assert!(!bounded.truncated);
        assert_eq!(
            (bounded.epoch.as_str(), bounded.top, bounded.oldest),
            ("e", 10, Some(1))
        );
        assert_eq!(bounded.publications[0]["payload"], json!({"n": 3}));
    }

    #[test]
    fn the_hub_caps_count_and_bytes() {
        let log = log_of(10);
        let capped = log.range(&query(Some(1000), Some(0), None), 4, 1 << 20);
        assert_eq!(sequences(&capped), [1, 2, 3, 4]);
        let one_frame = log.range(&query(None, Some(0), None), 100, 1);
        assert_eq!(
            sequences(&one_frame),
            [1],
            "at least one, then the byte cap"
        );
        assert!(one_frame.truncated);
    }
}
