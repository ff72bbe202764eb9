//! The timeline page's reads: release stories paged by a `before` cursor, locks since a time.

use greenlight_commands::{DecisionVerdict, PersonName, Platform};
use greenlight_storage::{NewDecision, NewLock, StoryFilter};

use crate::support::{app, at, each_backend, env};
use crate::views::history;

fn stories(app: Option<&str>, before_id: Option<i64>, limit: u32) -> StoryFilter {
    StoryFilter {
        app: app.map(str::to_owned),
        before_id,
        limit,
    }
}

#[tokio::test]
async fn release_stories_page_newest_first_with_everything_that_happened() {
    each_backend(|storage| async move {
        let [r1, r2, b1, r3] = history(&storage).await;
        let ids = |found: &[greenlight_storage::ReleaseStory]| -> Vec<i64> {
            found.iter().map(|story| story.release.id).collect()
        };
        let all = storage
            .release_stories(&stories(None, None, 10))
            .await
            .expect("all");
        assert_eq!(ids(&all), vec![r3, b1, r2, r1]);
        let first = storage
            .release_stories(&stories(None, None, 2))
            .await
            .expect("page 1");
        assert_eq!(ids(&first), vec![r3, b1]);
        let second = storage
            .release_stories(&stories(None, Some(b1), 2))
            .await
            .expect("page 2");
        assert_eq!(ids(&second), vec![r2, r1]);
        let shop = storage
            .release_stories(&stories(Some("shop"), Some(r3), 10))
            .await
            .expect("shop");
        assert_eq!(ids(&shop), vec![r2, r1]);

        // r2's waiting request: one counted approval, one refused click left out.
        let waiting = &shop[0].approval_requests[0];
        for (person, refused) in [("alice", None), ("mallory", Some("not_a_reviewer"))] {
            storage
                .record_decision(NewDecision {
                    request_id: waiting.id,
                    person: Some(PersonName::parse(person).expect("name")),
                    platform: Platform::Slack,
                    platform_user: "U012AB3CD".to_owned(),
                    verdict: DecisionVerdict::Approve,
                    comment: None,
                    refused_reason: refused.map(str::to_owned),
                    at: at(300),
                })
                .await
                .expect("decision");
        }
        let shop = storage
            .release_stories(&stories(Some("shop"), Some(r3), 10))
            .await
            .expect("shop");
        let r2_story = &shop[0];
        assert_eq!(r2_story.deployments.len(), 1);
        assert_eq!(r2_story.deployments[0].smoke.len(), 2);
        let deciders: Vec<String> = r2_story
            .decisions
            .iter()
            .filter_map(|decision| decision.person.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(deciders, vec!["alice"]);
        let r1_story = &shop[1];
        let environments: Vec<&str> = r1_story
            .deployments
            .iter()
            .map(|deployment| deployment.environment.as_str())
            .collect();
        assert_eq!(environments, vec!["staging", "production"]);
        assert_eq!(r1_story.approval_requests.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn locks_since_a_time_include_those_released_after_it() {
    each_backend(|storage| async move {
        for (environment, second) in [("staging", 10), ("production", 100)] {
            storage
                .acquire_lock(NewLock {
                    app: app("shop"),
                    environment: env(environment),
                    locked_by: "bob".to_owned(),
                    reason: "freeze".to_owned(),
                    automatic: false,
                    at: at(second),
                })
                .await
                .expect("lock");
        }
        storage
            .release_lock(&app("shop"), &env("staging"), "alice", at(60))
            .await
            .expect("unlock");
        let environments = |locks: Vec<greenlight_storage::Lock>| -> Vec<String> {
            locks
                .into_iter()
                .map(|lock| lock.environment.to_string())
                .collect()
        };
        let since = |second| storage.locks_since("shop", at(second));
        assert_eq!(
            environments(since(0).await.expect("locks")),
            vec!["staging", "production"]
        );
        assert_eq!(
            environments(since(50).await.expect("locks")),
            vec!["staging", "production"]
        );
        assert_eq!(
            environments(since(70).await.expect("locks")),
            vec!["production"]
        );
        assert!(storage
            .locks_since("blog", at(0))
            .await
            .expect("none")
            .is_empty());
    })
    .await;
}
