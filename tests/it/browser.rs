//! A real headless Chromium driven through WebDriver: Debian's
//! `chromedriver` (package `chromium-driver`) on a loopback port, the
//! `fantoccini` client, a fresh profile in a temporary directory. Every
//! call blocks (a small runtime of its own), so tests stay plain functions.
//! Dropping it ends the session and kills chromedriver's process group
//! (Chromium with it).

use crate::support::{free_port, kill_group, require_program, temp_dir};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` (and a note) when Chromium or chromedriver is missing outside
    /// CI; a failure in CI. `width` × 1000 is the window.
    pub fn start(width: u32) -> Option<Browser> {
        use std::os::unix::process::CommandExt;
        let chromium = require_program("chromium", "chromium")?;
        let chromedriver = require_program("chromedriver", "chromium-driver")?;
        let profile = temp_dir();
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut browser = Browser {
            rt,
            client: None,
            driver,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    format!("--window-size={width},1000"),
                    format!("--user-data-dir={}", browser._profile.path().join("profile").display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = browser
            .rt
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a WebDriver session");
        browser.client = Some(client);
        Some(browser)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.client().goto(url)).expect("navigate");
    }

    pub fn url(&self) -> String {
        self.rt
            .block_on(self.client().current_url())
            .expect("current URL")
            .to_string()
    }

    /// Whether an element matches `css` now.
    pub fn has(&self, css: &str) -> bool {
        !self
            .rt
            .block_on(self.client().find_all(Locator::Css(css)))
            .expect("find")
            .is_empty()
    }

    /// The text of the first element matching `css` (waits up to 10 s for
    /// it to appear).
    pub fn text(&self, css: &str) -> String {
        self.rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                // An element of a page that is going away turns stale:
                // find it again on the page that replaced it.
                match self.wait_for(css).await.text().await {
                    Ok(text) => return text,
                    Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(error) => panic!("text of {css:?}: {error}"),
                }
            }
        })
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.client().find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(error) => panic!("no element {css:?} on {}: {error}", self.url_async().await),
            }
        }
    }

    async fn url_async(&self) -> String {
        self.client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Clicks what leads to another page, and waits until that page has
    /// loaded (the old document is gone and the new one is complete).
    pub fn click(&self, css: &str) {
        self.rt.block_on(async {
            let element = self.wait_for(css).await;
            self.client()
                .execute("window.__qrlaunchOldPage = true;", vec![])
                .await
                .expect("mark the page");
            element.click().await.expect("click");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let loaded = self
                    .client()
                    .execute(
                        "return window.__qrlaunchOldPage === undefined && document.readyState === 'complete';",
                        vec![],
                    )
                    .await;
                if loaded.is_ok_and(|v| v == Value::Bool(true)) {
                    return;
                }
                assert!(Instant::now() < deadline, "no new page after clicking {css:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    /// Clicks what changes the page in place (a script's work): no wait.
    pub fn click_in_place(&self, css: &str) {
        self.rt.block_on(async {
            let element = self.wait_for(css).await;
            element.click().await.expect("click");
        });
    }

    /// Chooses `path` in a file input.
    pub fn choose_file(&self, css: &str, path: &Path) {
        self.rt.block_on(async {
            let element = self.wait_for(css).await;
            element
                .send_keys(&path.display().to_string())
                .await
                .expect("choose a file");
        });
    }

    /// Types `text` into a cleared field.
    pub fn fill(&self, css: &str, text: &str) {
        self.rt.block_on(async {
            let element = self.wait_for(css).await;
            element.clear().await.expect("clear");
            element.send_keys(text).await.expect("type");
        });
    }

    /// Runs a script in the page; its `return` value.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.rt
            .block_on(self.client().execute(script, args))
            .expect("run a script")
    }

    /// Runs an async script (the last argument is its callback).
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.rt
            .block_on(self.client().execute_async(script, args))
            .expect("run an async script")
    }

    /// Writes a PNG of the window.
    pub fn screenshot(&self, path: &Path) {
        let png = self.rt.block_on(self.client().screenshot()).expect("screenshot");
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Every URL the current page loaded (the page and its resources), by
    /// the browser's own account (Resource Timing).
    pub fn loaded_urls(&self) -> Vec<String> {
        let value = self.execute(
            "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));",
            vec![],
        );
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), client.close()).await });
        }
        kill_group(self.driver.id());
        let _ = self.driver.wait();
    }
}
