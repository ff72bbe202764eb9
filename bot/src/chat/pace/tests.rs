use chrono::TimeZone;
use futures::FutureExt;

use super::*;

fn pace() -> (Pace, Clock) {
    let clock = Clock::manual(
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
            .single()
            .expect("time"),
    );
    (Pace::new(clock.clone()), clock)
}

fn method(name: &'static str) -> Route {
    Route {
        name,
        major: None,
        spacing: None,
    }
}

fn discord(name: &'static str, channel: &str) -> Route {
    Route {
        name,
        major: Some(channel.to_owned()),
        spacing: None,
    }
}

/// Whether a call on `route` may go now (it never waits for a place in these tests).
fn goes(pace: &Pace, route: &Route) -> Result<(), DateTime<Utc>> {
    pace.start(route)
        .now_or_never()
        .expect("a place among the calls in flight")
        .map(drop)
        .map_err(|paused| paused.until)
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

#[test]
fn a_429_pauses_its_method_for_every_caller_and_no_other_method() {
    let (pace, clock) = pace();
    let start = clock.now();
    let update = method("chat.update");
    let post = method("chat.postMessage");
    assert_eq!(goes(&pace, &update), Ok(()));
    let paused = pace
        .finish(
            &update,
            &Limits::default(),
            Some(Some(Duration::from_secs(60))),
        )
        .expect("a 429 starts a pause");
    assert_eq!(paused.until, start + secs(60));
    assert!(paused.reason.contains("chat.update"), "{}", paused.reason);

    assert_eq!(goes(&pace, &update), Err(start + secs(60)));
    assert_eq!(goes(&pace, &post), Ok(()));
    clock.advance(secs(59));
    assert_eq!(goes(&pace, &update), Err(start + secs(60)));
    clock.advance(secs(1));
    assert_eq!(goes(&pace, &update), Ok(()));
    // A success says nothing about a pause.
    assert_eq!(pace.finish(&update, &Limits::default(), None), None);
    assert_eq!(goes(&pace, &update), Ok(()));
}

#[test]
fn a_429_without_retry_after_pauses_briefly() {
    let (pace, clock) = pace();
    let update = method("chat.update");
    let paused = pace
        .finish(&update, &Limits::default(), Some(None))
        .expect("pause");
    assert_eq!(paused.until, clock.now() + span(PAUSE_WITHOUT_RETRY_AFTER));
}

#[test]
fn posts_to_one_channel_are_spaced_after_a_short_burst() {
    let (pace, clock) = pace();
    let start = clock.now();
    let to = |channel: &str| Route {
        name: "chat.postMessage",
        major: None,
        spacing: Some(Spacing {
            key: channel.to_owned(),
            every: Duration::from_secs(1),
            burst: 3,
        }),
    };
    for _ in 0..3 {
        assert_eq!(goes(&pace, &to("C1")), Ok(()));
    }
    assert_eq!(goes(&pace, &to("C1")), Err(start + secs(1)));
    assert_eq!(
        goes(&pace, &to("C2")),
        Ok(()),
        "another channel has its own"
    );
    clock.advance(secs(1));
    assert_eq!(goes(&pace, &to("C1")), Ok(()));
    assert_eq!(goes(&pace, &to("C1")), Err(start + secs(2)));
    // After a quiet spell the whole burst is available again.
    clock.advance(secs(10));
    for _ in 0..3 {
        assert_eq!(goes(&pace, &to("C1")), Ok(()));
    }
    assert!(goes(&pace, &to("C1")).is_err());
}

#[test]
fn an_exhausted_bucket_holds_its_routes_on_that_channel_only() {
    let (pace, clock) = pace();
    let start = clock.now();
    let post = |channel| discord("POST /channels/{channel}/messages", channel);
    let edit = |channel| discord("PATCH /channels/{channel}/messages/{message}", channel);
    let exhausted = Limits {
        bucket: Some("b-post".to_owned()),
        exhausted_for: Some(Duration::from_secs(30)),
        global: false,
    };
    assert_eq!(goes(&pace, &post("C1")), Ok(()));
    assert_eq!(pace.finish(&post("C1"), &exhausted, None), None);
    assert_eq!(goes(&pace, &post("C1")), Err(start + secs(30)));
    assert_eq!(goes(&pace, &post("C2")), Ok(()), "another channel's bucket");
    assert_eq!(goes(&pace, &edit("C1")), Ok(()), "another route's bucket");

    // A route found to share the bucket shares its pause from then on.
    let shared = Limits {
        bucket: Some("b-post".to_owned()),
        ..Limits::default()
    };
    pace.finish(&edit("C1"), &shared, None);
    assert_eq!(goes(&pace, &edit("C1")), Err(start + secs(30)));
    clock.advance(secs(30));
    assert_eq!(goes(&pace, &post("C1")), Ok(()));
    assert_eq!(goes(&pace, &edit("C1")), Ok(()));
}

#[test]
fn a_global_429_pauses_every_call() {
    let (pace, clock) = pace();
    let start = clock.now();
    let post = discord("POST /channels/{channel}/messages", "C1");
    let edit = discord("PATCH /channels/{channel}/messages/{message}", "C2");
    let global = Limits {
        global: true,
        ..Limits::default()
    };
    let paused = pace
        .finish(&post, &global, Some(Some(Duration::from_secs(20))))
        .expect("pause");
    assert_eq!(paused.until, start + secs(20));
    assert_eq!(goes(&pace, &post), Err(start + secs(20)));
    assert_eq!(goes(&pace, &edit), Err(start + secs(20)));
    clock.advance(secs(20));
    assert_eq!(goes(&pace, &post), Ok(()));
    assert_eq!(goes(&pace, &edit), Ok(()));
}

#[test]
fn only_a_few_calls_are_in_flight_at_once() {
    let (pace, _clock) = pace();
    let route = method("chat.update");
    let held: Vec<_> = (0..IN_FLIGHT_PER_PLATFORM)
        .map(|_| {
            pace.start(&route)
                .now_or_never()
                .expect("a place")
                .expect("not paused")
        })
        .collect();
    assert!(
        pace.start(&route).now_or_never().is_none(),
        "one more waits for a place"
    );
    drop(held);
    assert!(pace.start(&route).now_or_never().is_some());
}

#[test]
fn asking_about_a_pause_neither_waits_nor_counts_a_call() {
    let (pace, clock) = pace();
    let start = clock.now();
    let update = method("chat.update");
    let post = Route {
        name: "chat.postMessage",
        major: None,
        spacing: Some(Spacing {
            key: "C1".to_owned(),
            every: Duration::from_secs(1),
            burst: 1,
        }),
    };
    // Every place among the calls in flight is taken: asking still answers at once.
    let held: Vec<_> = (0..IN_FLIGHT_PER_PLATFORM)
        .map(|_| pace.start(&update).now_or_never().expect("a place"))
        .collect();
    assert_eq!(pace.pause_of(&update), None);
    pace.finish(
        &update,
        &Limits::default(),
        Some(Some(Duration::from_secs(60))),
    );
    let paused = pace.pause_of(&update).expect("paused by the 429");
    assert_eq!(paused.until, start + secs(60));
    assert!(paused.reason.contains("chat.update"), "{}", paused.reason);
    assert_eq!(pace.pause_of(&post), None, "another method is not paused");
    drop(held);
    // Asking twice about a spaced route uses none of its burst of one.
    assert_eq!(pace.pause_of(&post), None);
    assert_eq!(pace.pause_of(&post), None);
    assert_eq!(goes(&pace, &post), Ok(()));
    clock.advance(secs(60));
    assert_eq!(pace.pause_of(&update), None, "the pause is over");
}
