//! A real browser for the dashboard's tests: Debian's Chromium, headless, driven
//! through its ChromeDriver over WebDriver (fantoccini). Synchronous on the outside
//! (a runtime of its own), so tests mix it with the blocking helpers of `common`.
//!
//! Chromium and ChromeDriver come from `$TENET_CHROMIUM` / `$TENET_CHROMEDRIVER` or
//! PATH (`scripts/ensure-browser` installs them). Without them a test is skipped with a
//! message, unless `TENET_BROWSER_TESTS=require` (`.ci/run`), when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    /// Where screenshots go (under the target directory: never committed).
    pub shots: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|f| f.is_file())
}

/// The browser, or None (after saying why) when Chromium is not installed.
pub fn browser(test: &str) -> Option<Browser> {
    let chromium = std::env::var("TENET_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let driver = std::env::var("TENET_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let (Some(chromium), Some(driver)) = (on_path(&chromium), on_path(&driver)) else {
        let why = format!(
            "{test}: Chromium and ChromeDriver are not installed (`{chromium}`, `{driver}`); \
             run scripts/ensure-browser (apt: chromium chromium-driver)"
        );
        if std::env::var("TENET_BROWSER_TESTS").as_deref() == Ok("require") {
            panic!("{why}");
        }
        eprintln!("SKIPPED {why}");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1440,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let caps = caps.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match rt.block_on(
            ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url),
        ) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("{test}: no browser session from chromedriver: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    Some(Browser {
        rt,
        client: Some(client),
        driver: child,
        _profile: profile,
        shots,
    })
}

impl Browser {
    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).unwrap();
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.rt
            .block_on(self.c().execute(script, args))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits (up to 60 s) until `script` returns something truthy; returns it.
    pub fn wait(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.js(script, args.clone());
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                self.shot(&format!("timeout-{}", what.replace(' ', "-")));
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    self.page_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an element matching `css` is shown.
    pub fn wait_for(&self, css: &str) {
        self.wait(
            &format!("`{css}`"),
            "const e = document.querySelector(arguments[0]); return !!(e && e.checkVisibility());",
            vec![json!(css)],
        );
    }

    /// Runs `act` on the element `css` (waiting for it). The page rebuilds parts of
    /// itself on a timer, so an element found may be replaced before it is used: then
    /// it is found again (a few times).
    fn on<F, Fut>(&self, css: &str, act: F)
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        for attempt in 0.. {
            self.wait_for(css);
            let r = self.rt.block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                act(e).await
            });
            match r {
                Ok(()) => return,
                Err(e) if attempt < 5 && e.to_string().contains("stale") => {}
                Err(e) => panic!("{css}: {e}"),
            }
        }
    }

    /// Clicks the element `css` (waiting for it), as a user would.
    pub fn click(&self, css: &str) {
        self.on(css, |e| async move { e.click().await });
    }

    /// Replaces the text of the input `css` with `text`, typing it.
    pub fn fill(&self, css: &str, text: &str) {
        self.on(css, |e| async move {
            e.clear().await?;
            e.send_keys(text).await
        });
    }

    /// Presses keys in the element `css` (e.g. "\u{E007}" for Enter).
    pub fn keys(&self, css: &str, keys: &str) {
        self.on(css, |e| async move { e.send_keys(keys).await });
    }

    /// Loads `url` afresh (a page already at that address would not reload).
    pub fn open(&self, url: &str) {
        self.goto("about:blank");
        self.goto(url);
    }

    pub fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
            vec![json!(css)],
        )
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// Waits for the error shown at `css` and checks that it names `code`.
    pub fn expect_error(&self, css: &str, code: &str) {
        self.wait_for(css);
        let t = self.text(css);
        assert!(t.contains(code), "{css} says `{t}`, not {code}");
    }

    pub fn page_text(&self) -> String {
        self.text("body")
    }

    /// Saves a screenshot as `<name>.png` in [`Browser::shots`].
    pub fn shot(&self, name: &str) {
        if let Ok(png) = self.rt.block_on(self.c().screenshot()) {
            let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
