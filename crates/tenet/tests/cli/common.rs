//! Running the real `tenet` binary and server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tenet"))
}

/// Runs `tenet --data-dir DIR args…`.
pub fn tenet(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("TENET_SERVER")
        .output()
        .expect("run tenet")
}

/// The first admin token of every server a test started, by URL.
static TOKENS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// The admin token of the server whose URL `url` starts with.
pub fn token_for(url: &str) -> Option<String> {
    TOKENS
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(u, _)| url.starts_with(u.as_str()))
        .map(|(_, t)| t.clone())
}

/// `req` with the admin token of the server at `url`.
pub fn authed(
    req: reqwest::blocking::RequestBuilder,
    url: &str,
) -> reqwest::blocking::RequestBuilder {
    match token_for(url) {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// An API client of the server at `url`, with its admin token.
pub fn client(url: &str) -> tenet_server::client::Client {
    tenet_server::client::Client::with_options(
        url,
        &tenet_server::client::ClientOptions {
            token: token_for(url),
            ca_cert: None,
        },
    )
    .unwrap()
}

/// One HTTP request, as the admin: the status and the JSON body (or the text, as a
/// JSON string).
pub fn call(
    c: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let req = authed(c.request(method.parse().unwrap(), url), url);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Asserts an error answer's status and code; returns its (non-empty) message.
pub fn assert_error(r: (u16, serde_json::Value), status: u16, code: &str) -> String {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["code"], code, "{}", r.1);
    let msg = r.1["message"].as_str().unwrap().to_string();
    assert!(!msg.is_empty());
    msg
}

/// The JSON a successful command printed.
pub fn json_out(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}\n{}", stdout(o), stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Runs a command that must succeed.
pub fn ok(dir: &Path, args: &[&str]) -> Output {
    let o = tenet(dir, args);
    assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    o
}

/// A timestamp from JSON that may be null (it must be a decimal string otherwise).
pub fn ts_opt(v: &serde_json::Value) -> Option<u64> {
    (!v.is_null()).then(|| ts(v))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A `tenet serve` child on a random port, stopped with SIGTERM on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// Its first admin token.
    pub token: String,
}

impl Server {
    // The child moves into `Server`, whose `Drop` stops and reaps it.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// A server with more environment (S3 settings, a failpoint).
    #[allow(clippy::zombie_processes)]
    pub fn start_with(dir: &Path, env: &[(&str, String)]) -> Server {
        // A server file left by a killed server must not be mistaken for this one.
        let _ = std::fs::remove_file(dir.join(tenet_server::server::SERVER_FILE));
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--gc-interval",
                "1s",
                "--data-dir",
            ])
            .arg(dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(f) = tenet_server::server::read_server_file(dir) {
                let token = tenet_server::auth::read_token_file(
                    &dir.join(tenet_server::auth::ADMIN_TOKEN_FILE),
                );
                if let (Some(_), Some(token)) = (tenet_server::client::Client::probe(&f.url), token)
                {
                    TOKENS.lock().unwrap().push((f.url.clone(), token.clone()));
                    return Server {
                        child,
                        url: f.url,
                        token,
                    };
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then wait; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        terminate(&self.child);
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// Replaces commit timestamps, times and ids that differ between runs.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // RFC 3339 times: 2026-11-23T14:02:59.123Z
        if i + 24 <= chars.len()
            && chars[i + 4] == '-'
            && chars[i + 10] == 'T'
            && chars[i + 23] == 'Z'
            && chars[i].is_ascii_digit()
        {
            out.push_str("<time>");
            i += 24;
            continue;
        }
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start >= 12 {
                out.push_str("<ts>");
            } else {
                out.extend(&chars[start..i]);
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// A commit ts of a JSON answer: a decimal string (ts exceed 2^53, which JSON numbers
/// do not keep exactly in JavaScript or jq).
pub fn ts(v: &serde_json::Value) -> u64 {
    v.as_str()
        .unwrap_or_else(|| panic!("a ts is a decimal string, got {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("ts {v} does not parse: {e}"))
}

/// Tenant `name` (created with `extra` options) with table `t` (id int, v string).
pub fn kv_tenant(dir: &Path, name: &str, extra: &[&str]) {
    let mut a = vec!["tenant", "create", name];
    a.extend_from_slice(extra);
    ok(dir, &a);
    ok(
        dir,
        &[
            "table",
            "create",
            name,
            "t",
            "--column",
            "id:int",
            "--column",
            "v:string",
            "--primary-key",
            "id",
        ],
    );
}

/// `archive start` with a 100 ms interval; returns its JSON answer.
pub fn archive_start(dir: &Path, tenant: &str, repo: &str, extra: &[&str]) -> serde_json::Value {
    let mut a = vec![
        "--json",
        "archive",
        "start",
        tenant,
        "--repo",
        repo,
        "--interval",
        "100ms",
    ];
    a.extend_from_slice(extra);
    json_out(&tenet(dir, &a))
}

/// Waits until the archive status of `tenant` says everything up to `at` is
/// restorable; returns that status.
pub fn wait_restorable(dir: &Path, tenant: &str, at: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = json_out(&tenet(dir, &["--json", "archive", "status", tenant]));
        if ts_opt(&st["restorable_until_ts"]).is_some_and(|t| t >= at) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "never restorable up to {at}: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Puts rows into `tenant`.t in one commit; returns its commit ts.
pub fn put(dir: &Path, tenant: &str, rows: &[(i64, &str)]) -> u64 {
    let rows: Vec<String> = rows
        .iter()
        .map(|(id, v)| serde_json::json!({"id": id, "v": v}).to_string())
        .collect();
    let mut a = vec!["--json", "put", tenant, "t"];
    a.extend(rows.iter().map(String::as_str));
    ts(&json_out(&tenet(dir, &a))["commit_ts"])
}

/// Names `repo` (a directory) `name` on the server at `url`, as the default repository.
pub fn add_default_repo(c: &reqwest::blocking::Client, url: &str, name: &str, repo: &str) {
    let r = call(
        c,
        "POST",
        &format!("{url}/v1/repos"),
        Some(serde_json::json!({"name": name, "url": repo, "default": true})),
    );
    assert_eq!(r.0, 200, "{}", r.1);
}
