//! The release timeline page in a real browser (SPEC §14): headless Chromium at a phone's size
//! is sent to sign in, signs in with the API token through the form, and reads what runs
//! where, the waiting approval, the charts and the timeline; once with JavaScript and once
//! without. The screenshot taken on the way is the README's picture of the page.
//!
//! Needs `chromium` and `chromium-driver` (apt); `.ci/run` installs them and requires them.

use std::path::PathBuf;

use fantoccini::{Client, Locator};
use greenlight_tests::approvals::{shop_config, staging_healthy, CI_TOKEN, STANDARD_POLICY};
use greenlight_tests::browser::Driver;
use greenlight_tests::ci::{self, Fields};
use greenlight_tests::clock::manual_clock;
use greenlight_tests::{spawn_app_with_clock, TestApp};
use serde_json::json;

const API_TOKEN: &str = "browser-api-token";

fn config() -> String {
    format!(
        "[server]\napi_token = \"${{API_TOKEN}}\"\n\n\
         [slack]\nbot_token = \"xoxb-unused\"\nsigning_secret = \"unused\"\n\
         api_url = \"http://127.0.0.1:9/api\"\n\n\
         [people]\nalice = {{ slack = \"U0ALICE01\" }}\nbob = {{ slack = \"U0BOB0001\" }}\n\
         carol = {{ slack = \"U0CAROL01\" }}\n\n{}",
        shop_config(r#"{ slack = "C0DEPLOYS" }"#, STANDARD_POLICY)
    )
}

fn sha(n: u32) -> String {
    format!("{n:07x}{}", "c".repeat(33))
}

/// A week of shop: a release a day built, healthy in staging and deployed to production (one
/// of them faulty), then today's release waiting for approval. Returns today's short SHA.
async fn a_week_of_releases(app: &TestApp) -> String {
    for day in 1..=6 {
        let sha = sha(day);
        let build = ci::build(&sha)
            .with(json!({"author": "alice", "message": format!("Change of day {day}")}));
        ci::report(app, CI_TOKEN, build).await;
        ci::report(app, CI_TOKEN, ci::deployed("staging", &sha, "success")).await;
        app.clock.advance(chrono::Duration::hours(2));
        let production = if day == 4 {
            ci::deployed("production", &sha, "success").with(json!({"smoke": ci::smoke_failed()}))
        } else {
            ci::deployed("production", &sha, "success")
        };
        ci::report(app, CI_TOKEN, production).await;
        app.clock.advance(chrono::Duration::hours(22));
    }
    let today = sha(7);
    staging_healthy(app, &today, "dave").await;
    today[..7].to_owned()
}

/// The text of the page at `path`, once the browser got there and the page is read whole (a
/// click on a submit button returns before the navigation it starts ends).
async fn text_at(browser: &Client, path: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let here = browser.current_url().await.expect("url");
        if here.path() == path {
            if let Ok(body) = browser.find(Locator::Css("body")).await {
                if let Ok(text) = body.text().await {
                    return text;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still at {here} after 10 s, not at {path}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Types `token` into the sign-in form's field and submits it with its button.
async fn submit_token(browser: &Client, token: &str) {
    browser
        .find(Locator::Css("input[type=password]"))
        .await
        .expect("a token field")
        .send_keys(token)
        .await
        .expect("type");
    browser
        .find(Locator::Css("form [type=submit]"))
        .await
        .expect("a submit button")
        .click()
        .await
        .expect("submit");
}

/// Goes to the page, is sent to sign in, signs in through the form; returns the page's text.
async fn sign_in_and_read(browser: &Client, app: &TestApp) -> String {
    browser.goto(&app.url("/")).await.expect("open /");
    assert_eq!(
        browser.current_url().await.expect("url").path(),
        "/sign-in",
        "sent to sign in first"
    );
    let field = browser
        .find(Locator::Css("input[type=password]"))
        .await
        .expect("a token field");
    let id = field
        .attr("id")
        .await
        .expect("id")
        .expect("the field has an id");
    let label = browser
        .find(Locator::Css(&format!("label[for='{id}']")))
        .await
        .expect("the field is labelled");
    assert!(label.text().await.expect("label").contains("API token"));

    submit_token(browser, "not-the-token").await;
    let refused = loop {
        let text = text_at(browser, "/sign-in").await;
        if text.contains("not accepted") {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(refused.contains("API token"));

    submit_token(browser, API_TOKEN).await;
    text_at(browser, "/").await
}

fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("timeline-phone.png")
}

#[tokio::test]
async fn on_a_phone_a_reviewer_signs_in_and_reads_the_pipeline_with_or_without_javascript() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app_with_clock(&config(), &[("API_TOKEN", API_TOKEN)], manual_clock()).await;
    let waiting = a_week_of_releases(&app).await;

    for javascript in [true, false] {
        let browser = driver.session(javascript).await;
        let text = sign_in_and_read(&browser, &app).await;
        for expected in [
            "shop",
            "staging",
            "production",
            "Waiting for approval",
            waiting.as_str(),
            "0 of 2 approvals",
            "Change of day 6",
            "faulty",
            "Deployments to production per day",
            "Lead time per deploy",
        ] {
            assert!(
                text.contains(expected),
                "javascript {javascript}: {expected:?} not shown:\n{text}"
            );
        }
        let charts = browser
            .find_all(Locator::Css("svg[role=img]"))
            .await
            .expect("charts");
        assert!(charts.len() >= 2, "two charts, found {}", charts.len());

        // To one app's page and back, by its links.
        browser
            .find(Locator::Css("a[href='/apps/shop']"))
            .await
            .expect("a link to shop's page")
            .click()
            .await
            .expect("follow it");
        assert!(text_at(&browser, "/apps/shop")
            .await
            .contains("Waiting for approval"));

        if javascript {
            // Readable on a phone: nothing wider than the screen.
            browser.goto(&app.url("/")).await.expect("open /");
            let fits = browser
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth;",
                    vec![],
                )
                .await
                .expect("measure");
            assert_eq!(fits, json!(true), "the page scrolls sideways on a phone");
            let png = browser.screenshot().await.expect("a screenshot");
            assert!(png.starts_with(b"\x89PNG"), "a PNG");
            std::fs::write(screenshot_path(), png).expect("save the screenshot");
            eprintln!("screenshot: {}", screenshot_path().display());
        } else {
            // Everything above worked with scripts off; the page has none to need.
            let source = browser.source().await.expect("source");
            assert!(!source.contains("<script"), "the page needs no script");
        }
        browser.close().await.expect("close the session");
    }
    app.teardown().await;
}
