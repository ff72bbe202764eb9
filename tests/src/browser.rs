//! A real browser for the page tests: Debian's `chromium` driven over WebDriver by
//! `chromedriver` (both from apt; `.ci/run` installs them when missing), headless, at a phone's
//! size, with JavaScript on or off.
//!
//! Without chromedriver the tests say so and pass, unless `GREENLIGHT_TEST_BROWSER=required`
//! (set by `.ci/run`), where a missing browser fails them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub const REQUIRED_VAR: &str = "GREENLIGHT_TEST_BROWSER";

/// A phone's viewport (CSS pixels), so "readable on a phone" is what is tested.
pub const PHONE: (u32, u32) = (412, 915);

/// A running `chromedriver`; killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver on a free port; `None` (after saying why) when it is not installed
    /// and the browser is not required.
    pub async fn start() -> Option<Self> {
        let required = std::env::var(REQUIRED_VAR).is_ok_and(|value| value == "required");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = match Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(error) if !required => {
                eprintln!(
                    "skipped: no chromedriver ({error}); `apt-get install chromium \
                     chromium-driver`, or set {REQUIRED_VAR}=required to fail instead"
                );
                return None;
            }
            Err(error) => panic!("{REQUIRED_VAR}=required but chromedriver cannot start: {error}"),
        };
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        driver.wait_ready().await;
        Some(driver)
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(response) = client.get(format!("{}/status", self.url)).send().await {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver not ready after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new headless Chromium session at phone size, with JavaScript `javascript` or not.
    pub async fn session(&self, javascript: bool) -> Client {
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                format!("--window-size={},{}", PHONE.0, PHONE.1),
            ],
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
