//! A peer that stops reading cannot grow the hub's memory: its outbox is
//! bounded, and on overflow the hub forgets it and closes it with 1013.

mod support;

use serde_json::json;
use support::*;
use switchboard::server::CloseCause;

#[actix_web::test]
async fn slow_consumer_is_closed_with_1013_and_memory_stays_bounded() {
    let mut config = test_config();
    config.server.max_outbound_frames = 256;
    config.server.max_outbound_bytes = 256 * 1024;
    let hub = start_hub(&config);
    let service = hub.service().clone();

    let mut sleeper = Client::to(&hub).await;
    sleeper.join("room:flood", "1").await;
    // From here on the sleeper reads nothing.

    let payload = json!({"blob": "x".repeat(4096)});
    let mut sent = 0u64;
    let most = 200_000u64; // ~800 MB if nothing pushed back: far past any socket buffer
    while service.stats().closes(CloseCause::SlowConsumer) == 0 && sent < most {
        service.broadcast("room:flood", "flood", &payload);
        sent += 1;
        if sent.is_multiple_of(64) {
            // Let the writer and session run; the flood is the stimulus, not a sync.
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        service.stats().closes(CloseCause::SlowConsumer),
        1,
        "overflow detected after {sent} broadcasts"
    );
    // What a non-reader can pin: kernel socket buffers, the HTTP write buffer,
    // actix-ws's 32-frame channel and our 256 KiB outbox; far below the flood.
    eprintln!("slow consumer closed after {sent} broadcasts of 4 KiB");
    assert!(
        sent < 16_000,
        "{sent} broadcasts (x 4 KiB) were absorbed before overflow"
    );
    assert!(
        eventually(|| service.member_count("room:flood") == 0).await,
        "the slow member was dropped"
    );

    // The sleeper wakes up: it finds what fitted, then the 1013 close.
    assert_eq!(sleeper.expect_close().await, Some(1013));

    // The hub serves others as before.
    let mut fresh = Client::to(&hub).await;
    fresh.join("room:flood", "1").await;
    fresh
        .send(Some("1"), Some("2"), "room:flood", "ping", json!({"n": 1}))
        .await;
    assert_eq!(fresh.recv().await[4], ok(json!({"n": 1})));
}
