//! An ordered record of requests a fake received, with waiting reads ("next message") so
//! tests never sleep, and a note of which the test read: `TestApp::teardown` fails on the rest.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use wiremock::Request;

/// How long a test waits for a fake to receive what it expects.
const WAIT: Duration = Duration::from_secs(10);
/// How much of a body an unread-traffic report shows.
const SHORT_BODY: usize = 160;

/// One request as a fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Recorded {
    /// `request` as received, with `body` read from it the way the fake's platform reads it.
    pub fn of(request: &Request, body: serde_json::Value) -> Self {
        Self {
            method: request.method.to_string(),
            path: request.url.path().to_owned(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The message's text: Slack's `text` or Discord's `content` (empty when it has neither).
    pub fn text(&self) -> &str {
        ["text", "content"]
            .iter()
            .find_map(|field| self.body[*field].as_str())
            .unwrap_or_default()
    }

    /// `POST /path` and the message's text (or the start of its body) on one line, for
    /// failure messages.
    fn summary(&self) -> String {
        let shown = match self.text() {
            "" => self.body.to_string(),
            text => format!("{text:?}"),
        };
        let short: String = shown.chars().take(SHORT_BODY).collect();
        let cut = if short.len() < shown.len() { "…" } else { "" };
        format!("{} {} {short}{cut}", self.method, self.path)
    }
}

struct Entry {
    call: Recorded,
    /// Returned by a `next_*` read, so later reads skip it.
    taken: bool,
    /// Seen by the test in any way (taken, or in a snapshot of everything received).
    read: bool,
}

/// Which calls a test may leave unread, and why.
type UnreadAllowed = Box<dyn Fn(&Recorded) -> bool + Send>;

#[derive(Default)]
struct Log {
    entries: Vec<Entry>,
    unread_allowed: Vec<(String, UnreadAllowed)>,
    /// Requests the fake refused because no real client would send them.
    problems: Vec<String>,
}

#[derive(Clone)]
pub struct Inbox {
    /// The fake's name in failure messages ("Slack", "deploy hook", …).
    fake: &'static str,
    log: Arc<Mutex<Log>>,
    arrived: Arc<Notify>,
}

thread_local! {
    /// Inboxes started on this thread that no `TestApp` watches yet.
    static UNWATCHED: RefCell<Vec<Inbox>> = const { RefCell::new(Vec::new()) };
}

/// Every inbox started on this thread since the last call. Each test runs on its own thread
/// and `#[tokio::test]` keeps the test's body there, so these are the fakes of the running test.
pub fn started_on_this_thread() -> Vec<Inbox> {
    UNWATCHED.with(|inboxes| std::mem::take(&mut *inboxes.borrow_mut()))
}

impl Inbox {
    /// An empty inbox for the fake named `fake`, watched by the next `TestApp` of this test.
    pub fn new(fake: &'static str) -> Self {
        let inbox = Self {
            fake,
            log: Arc::default(),
            arrived: Arc::default(),
        };
        UNWATCHED.with(|inboxes| inboxes.borrow_mut().push(inbox.clone()));
        inbox
    }

    pub fn push(&self, call: Recorded) {
        self.lock().entries.push(Entry {
            call,
            taken: false,
            read: false,
        });
        self.arrived.notify_waiters();
    }

    /// Notes a request the fake refused as malformed or forged; it fails the test at teardown.
    pub fn refused(&self, problem: String) {
        self.lock().problems.push(problem);
    }

    /// The oldest request not yet taken that matches, waiting up to 10 s for one to arrive;
    /// panics naming `what` and what did arrive.
    pub async fn next(&self, what: &str, matches: impl Fn(&Recorded) -> bool) -> Recorded {
        self.next_matching(WAIT, matches).await.unwrap_or_else(|| {
            panic!(
                "no {} {what} within {} s; not yet taken: {:#?}",
                self.fake,
                WAIT.as_secs(),
                self.pending()
            )
        })
    }

    /// The oldest request not yet taken that matches, waiting up to `timeout` for one to arrive.
    pub async fn next_matching(
        &self,
        timeout: Duration,
        matches: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            // Register before checking so an arrival between check and wait is not missed.
            notified.as_mut().enable();
            {
                let mut log = self.lock();
                let found = log
                    .entries
                    .iter_mut()
                    .find(|entry| !entry.taken && matches(&entry.call));
                if let Some(entry) = found {
                    entry.taken = true;
                    entry.read = true;
                    return Some(entry.call.clone());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Every request received so far, oldest first, taken or not. The test has read them all.
    pub fn read_all(&self) -> Vec<Recorded> {
        let mut log = self.lock();
        for entry in &mut log.entries {
            entry.read = true;
        }
        log.entries.iter().map(|entry| entry.call.clone()).collect()
    }

    /// Every request no `next_*` read returned yet, oldest first, taken and read now.
    pub fn take_all(&self) -> Vec<Recorded> {
        let mut log = self.lock();
        let mut taken = Vec::new();
        for entry in log.entries.iter_mut().filter(|entry| !entry.taken) {
            entry.taken = true;
            entry.read = true;
            taken.push(entry.call.clone());
        }
        taken
    }

    /// Requests no `next_*` read returned yet (for failure messages; reading them here does not
    /// count as the test reading them).
    pub fn pending(&self) -> Vec<Recorded> {
        let log = self.lock();
        log.entries
            .iter()
            .filter(|entry| !entry.taken)
            .map(|entry| entry.call.clone())
            .collect()
    }

    /// Lets this test end with calls unread, for `reason`: for a test that deliberately ignores
    /// this fake's traffic. Refused requests still fail it.
    pub fn allow_unread(&self, reason: &str) {
        self.allow_unread_where(reason, |_| true);
    }

    /// Lets this test end with the calls that match unread, for `reason`: for a test that
    /// deliberately ignores part of this fake's traffic (a card it checks elsewhere).
    pub fn allow_unread_where(
        &self,
        reason: &str,
        matches: impl Fn(&Recorded) -> bool + Send + 'static,
    ) {
        self.lock()
            .unread_allowed
            .push((reason.to_owned(), Box::new(matches)));
    }

    /// Fails when the fake received something the test never read, or refused a request.
    pub fn assert_all_read(&self) {
        let report = self.unread_report();
        assert!(report.is_empty(), "{}", report.join("\n"));
    }

    /// One line per refused request and, unless allowed, per request the test never read; then,
    /// if there were any, what this test allows to stay unread.
    pub fn unread_report(&self) -> Vec<String> {
        let log = self.lock();
        let allowed = |call: &Recorded| log.unread_allowed.iter().any(|(_, allows)| allows(call));
        let mut report: Vec<String> = log
            .problems
            .iter()
            .map(|problem| format!("{} refused: {problem}", self.fake))
            .chain(
                log.entries
                    .iter()
                    .filter(|entry| !entry.read && !allowed(&entry.call))
                    .map(|entry| format!("{} unread: {}", self.fake, entry.call.summary())),
            )
            .collect();
        if !report.is_empty() {
            report.extend(
                log.unread_allowed
                    .iter()
                    .map(|(reason, _)| format!("({} may leave unread: {reason})", self.fake)),
            );
        }
        report
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(path: &str, text: &str) -> Recorded {
        Recorded {
            method: "POST".to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: serde_json::json!({ "text": text }),
        }
    }

    #[tokio::test]
    async fn a_call_no_test_read_is_reported_until_it_is_read() {
        let inbox = Inbox::new("Slack");
        inbox.push(call("/api/chat.postMessage", "🚨 shop is faulty"));
        inbox.push(call("/api/chat.update", "card"));
        let report = inbox.unread_report();
        assert_eq!(report.len(), 2, "{report:?}");
        assert!(report[0].contains("/api/chat.postMessage"), "{report:?}");
        assert!(report[0].contains("shop is faulty"), "{report:?}");

        let read = inbox
            .next_matching(Duration::from_millis(10), |c| c.path.ends_with("update"))
            .await;
        assert!(read.is_some());
        assert_eq!(inbox.unread_report().len(), 1);
        inbox.take_all();
        assert!(inbox.unread_report().is_empty());
        let _ = started_on_this_thread();
    }

    #[test]
    fn reads_of_the_whole_log_count_and_allowances_need_a_match() {
        let inbox = Inbox::new("Discord");
        inbox.push(call("/channels/1/messages", "card"));
        inbox.allow_unread_where("cards are checked elsewhere", |c| c.text() == "card");
        assert!(inbox.unread_report().is_empty());
        inbox.push(call("/channels/1/messages", "announcement"));
        let report = inbox.unread_report();
        assert_eq!(
            report.len(),
            2,
            "the call and the allowance's reason: {report:?}"
        );
        assert!(
            report[1].contains("cards are checked elsewhere"),
            "{report:?}"
        );
        inbox.read_all();
        assert!(inbox.unread_report().is_empty());

        inbox.refused("a forged signature".to_owned());
        inbox.allow_unread("everything");
        let report = inbox.unread_report();
        assert!(
            report[0].contains("refused: a forged signature"),
            "{report:?}"
        );
        assert!(
            report
                .iter()
                .all(|line| !line.starts_with("Discord unread")),
            "{report:?}"
        );
        let _ = started_on_this_thread();
    }
}
