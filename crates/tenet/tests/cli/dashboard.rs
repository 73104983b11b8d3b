//! The dashboard in a real headless Chromium against a real `tenet serve`: logging in,
//! the overview, a backup watched to 100 %, a restore into a new tenant, a revert in
//! place, and a tenant token that sees only its tenant; every result is checked
//! through the API. Screenshots of each page go to `<target>/tmp/dashboard-screenshots`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::browser::browser;
use crate::common::*;

fn api(url: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let c = reqwest::blocking::Client::new();
    let r = call(&c, method, &format!("{url}{path}"), body);
    assert!(r.0 < 300, "{method} {path}: {} {}", r.0, r.1);
    r.1
}

fn wait_job(url: &str, id: u64) -> Value {
    for _ in 0..600 {
        let j = api(url, "GET", &format!("/v1/jobs/{id}"), None);
        match j["state"].as_str().unwrap() {
            "succeeded" => return j,
            "failed" | "cancelled" => panic!("job {id} ended: {j}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("job {id} did not finish")
}

/// What on the page has no accessible name: form controls without a label, buttons
/// and links without text.
fn unlabelled(b: &crate::browser::Browser) -> Value {
    b.js(
        "const bad = [];
         for (const e of document.querySelectorAll('input, select, progress, textarea')) {
           if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby')) bad.push(e.outerHTML.slice(0, 100));
         }
         for (const e of document.querySelectorAll('button, a')) {
           if (e.checkVisibility() && !e.innerText.trim() && !e.getAttribute('aria-label'))
             bad.push(e.outerHTML.slice(0, 100));
         }
         return bad;",
        vec![],
    )
}

/// The number (`Job N`) in the notice an action leaves.
fn started_job(notice: &str) -> u64 {
    let at = notice
        .find("job ")
        .unwrap_or_else(|| panic!("no job in `{notice}`"));
    notice[at + 4..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The files are served to anyone (they hold no data), with the CSP and a cache
/// validator; an unknown file is the API's JSON 404.
#[test]
fn dashboard_files() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let c = reqwest::blocking::Client::new();
    let r = c.get(format!("{}/", srv.url)).send().unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(r.text().unwrap().contains("/ui/app.js"));
    let js = c.get(format!("{}/ui/app.js", srv.url)).send().unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let etag = js.headers()["etag"].clone();
    let again = c
        .get(format!("{}/ui/app.js", srv.url))
        .header("If-None-Match", etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = call(&c, "GET", &format!("{}/ui/nope.js", srv.url), None);
    assert_error(missing, 404, "NOT_FOUND");
}

/// Without Chromium the browser test says it is skipped, and passes; with
/// `TENET_BROWSER_TESTS=require` (CI) it fails instead. Runs this test binary again.
#[test]
fn without_chromium_the_browser_test_skips_or_fails_when_required() {
    let run = |require: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "dashboard::dashboard_in_a_browser",
            "--nocapture",
        ])
        .env("TENET_CHROMIUM", "/nonexistent/chromium")
        .env_remove("TENET_BROWSER_TESTS");
        if require {
            cmd.env("TENET_BROWSER_TESTS", "require");
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(false);
    assert!(
        ok && err.contains("SKIPPED") && err.contains("scripts/ensure-browser"),
        "{err}"
    );
    let (ok, err) = run(true);
    assert!(!ok && err.contains("/nonexistent/chromium"), "{err}");
}

#[test]
fn dashboard_in_a_browser() {
    let Some(b) = browser("dashboard_in_a_browser") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let repo_url = format!("file://{}", repo.path().display());
    let srv = Server::start(dir.path());
    let url = srv.url.clone();
    let d = dir.path();

    // acme: 3,000 rows of 128 bytes that do not compress, archived; beta: nothing
    // restorable.
    kv_tenant(d, "acme", &[]);
    let values: Vec<String> = (0..3000u32)
        .map(|i| {
            let h = |x: u32| blake3::hash(&x.to_le_bytes()).to_hex().to_string();
            h(i) + &h(i + 1_000_000)
        })
        .collect();
    for chunk in (0..3000).collect::<Vec<i64>>().chunks(1000) {
        let rows: Vec<(i64, &str)> = chunk
            .iter()
            .map(|&i| (i, values[i as usize].as_str()))
            .collect();
        put(d, "acme", &rows);
    }
    // The repository, named and the default: where the page's backups go.
    add_default_repo(&reqwest::blocking::Client::new(), &url, "main", &repo_url);
    archive_start(d, "acme", "main", &["--full-backup"]);
    kv_tenant(d, "beta", &[]);
    // The overview's answer read after acme's first backup (it is kept up to 30 s).
    api(&url, "GET", "/v1/protection?refresh=true", None);

    // Log in: a wrong token is refused on the form, the admin token gets in.
    b.goto(&format!("{url}/"));
    b.wait_for("#token");
    b.shot("1-login");
    b.fill("#token", "tenet_1_wrong");
    b.click("#login-form button[type=submit]");
    b.expect_error("#login-error", "UNAUTHENTICATED");
    b.fill("#token", &srv.token);
    b.click("#login-form button[type=submit]");

    // The overview: both tenants, the one with nothing restorable first.
    b.wait_for("#ov-table tbody tr[data-tenant=acme]");
    let order = b.js(
        "return [...document.querySelectorAll('#ov-table tbody tr')].map(r => [r.dataset.tenant, r.className]);",
        vec![],
    );
    assert_eq!(order[0], json!(["beta", "bad"]), "{order}");
    assert_eq!(order[1][0], "acme");
    assert!(b.text("#who").contains("admin"));
    assert!(b.page_text().contains("nothing is restorable"));
    b.shot("2-overview");
    assert_eq!(unlabelled(&b), json!([]));

    // The tenant page: its restorable range on the timeline, its backup.
    b.click("a[href='#/tenant/acme']");
    b.wait_for("#t-timeline .track .range");
    b.wait_for("#t-backups table");
    b.shot("3-tenant");
    assert_eq!(unlabelled(&b), json!([]));

    // Back up now, slowed so that its progress can be watched, to 100 %.
    b.click("[data-act=backup]");
    b.wait_for("#dialog[open] #f-kind");
    assert!(b
        .text("#dialog-consequence")
        .contains("full backup of acme"));
    assert_eq!(unlabelled(&b), json!([]));
    b.fill("#f-rate", "0.05");
    b.click("#dialog-ok");
    b.wait_for("#notice a[href='#/jobs']");
    let job = started_job(&b.text("#notice"));
    b.click("#notice a[href='#/jobs']");
    let bar = format!("#jobs-running progress[data-job='{job}']");
    b.wait_for(&bar);
    // Each poll: the bar's value (null while its size is unknown), and the running
    // row's text (null once the job has left the running list).
    let mut seen = vec![];
    let mut rate_seen = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let v = b.js(
            "const e = document.querySelector(arguments[0]);
             const r = document.querySelector(arguments[1]);
             return [e && e.hasAttribute('value') ? e.value : null,
                     r ? r.closest('tr').innerText : null];",
            vec![json!(format!("progress[data-job='{job}']")), json!(bar)],
        );
        let running = !v[1].is_null();
        if running {
            // Live figures while it runs: a rate in the row.
            rate_seen |= v[1].as_str().unwrap().contains("/s");
        }
        if let Some(v) = v[0].as_f64() {
            if seen.last() != Some(&v) {
                if v < 100.0 && running && !seen.iter().any(|&s| s < 100.0) {
                    b.shot("4-jobs-running");
                }
                seen.push(v);
            }
        }
        if !running && seen.last() == Some(&100.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bar never reached 100 %: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen.iter().any(|&v| v < 100.0),
        "never seen below 100 %: {seen:?}"
    );
    assert!(rate_seen, "no rate shown while the backup ran");
    assert!(b
        .text(&format!("[data-job-row='{job}']"))
        .contains("succeeded"));
    b.shot("5-jobs-done");
    assert_eq!(unlabelled(&b), json!([]));
    let j = api(&url, "GET", &format!("/v1/jobs/{job}"), None);
    assert_eq!(j["state"], "succeeded");
    assert_eq!(j["kind"], "backup_full");
    assert_eq!(j["throttle_bytes_per_sec"], json!(52429));

    // Another backup, crawling, cancelled from the jobs page.
    b.open(&format!("{url}/#/tenant/acme"));
    b.click("[data-act=backup]");
    b.fill("#f-rate", "0.002");
    b.click("#dialog-ok");
    b.wait_for("#notice a[href='#/jobs']");
    let slow = started_job(&b.text("#notice"));
    b.click("#notice a[href='#/jobs']");
    b.click(&format!("#jobs-running [data-cancel='{slow}']"));
    b.wait_for("#dialog[open]");
    assert!(b
        .text("#dialog-consequence")
        .contains("no backup is recorded"));
    b.click("#dialog-ok");
    b.wait(
        "the cancelled job in the history",
        "const r = document.querySelector(arguments[0]); return r && r.innerText.includes('cancelled');",
        vec![json!(format!("#jobs-history [data-job-row='{slow}']"))],
    );
    assert_eq!(
        api(&url, "GET", &format!("/v1/jobs/{slow}"), None)["state"],
        "cancelled"
    );

    // A strategy, set from the tenant page: a bad schedule is refused in the dialog,
    // which stays open saying why.
    b.open(&format!("{url}/#/tenant/acme"));
    b.click("#st-edit");
    b.fill("#f-full", "at three");
    b.click("#dialog-ok");
    b.expect_error("#dialog-error", "INVALID_ARGUMENT");
    b.fill("#f-full", "0 3 * * *");
    b.fill("#f-incr", "3600");
    b.fill("#f-repo", "");
    b.click("#dialog-ok");
    b.wait(
        "the strategy shown",
        "return document.querySelector('#t-strategy').innerText.includes('every 1 h');",
        vec![],
    );
    let st = api(&url, "GET", "/v1/tenants/acme/strategy", None);
    assert_eq!(st["full"], "0 3 * * *", "{st}");
    assert_eq!(st["incr_secs"], json!(3600), "{st}");
    b.shot("5b-strategy");

    // A point in time, then a mistake: rows 0..100 deleted.
    std::thread::sleep(Duration::from_millis(1100));
    let good =
        tenet_store::Ts::from_millis(tenet_store::Clock::now_millis(&tenet_store::SystemClock));
    std::thread::sleep(Duration::from_millis(1100));
    let keys: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let mut a = vec!["--json", "delete", "acme", "t"];
    a.extend(keys.iter().map(String::as_str));
    let del = ts(&json_out(&tenet(d, &a))["commit_ts"]);
    wait_restorable(d, "acme", del);
    // To the second: what a person types.
    let good_s = format!("{}Z", &good.to_rfc3339()[..19]);

    // Revert in place to that point, chosen by typing it.
    b.open(&format!("{url}/#/tenant/acme"));
    b.wait_for("#pt-time");
    // A time without a zone is refused where it is typed, and nothing can act on it.
    b.fill("#pt-time", "2026-01-01T00:00:00");
    b.keys("#pt-time", "\u{E004}");
    b.wait(
        "the zone-less time refused",
        "return document.querySelector('#pt-status').innerText.includes('no time zone')
             && document.querySelector('#pt-revert').disabled;",
        vec![],
    );
    b.fill("#pt-time", &good_s);
    b.keys("#pt-time", "\u{E004}"); // Tab: the change event
    b.wait(
        "the chosen point",
        "return document.querySelector('#pt-time').value.startsWith(arguments[0].slice(0, 19));",
        vec![json!(good_s)],
    );
    b.shot("6-point-chosen");
    b.click("#pt-revert");
    b.wait_for("#dialog[open]");
    assert!(b
        .text("#dialog-consequence")
        .contains("every change made after that time is undone"));
    b.click("#dialog-ok");
    b.wait(
        "the revert's notice",
        "return document.querySelector('#notice').innerText.includes('is back at');",
        vec![],
    );
    assert!(
        b.text("#notice").contains("100 rows changed"),
        "{}",
        b.text("#notice")
    );
    b.shot("7-reverted");
    let row = api(&url, "GET", "/v1/tenants/acme/tables/t/row?key=5", None);
    assert_eq!(row["row"]["id"], json!(5), "{row}");

    // By keyboard alone: the slider moves the chosen point a second per arrow key, and
    // a snapshot is taken from its dialog with Enter.
    let before = b.js("return document.querySelector('#pt-time').value;", vec![]);
    b.keys("#pt-range", "\u{E012}\u{E012}\u{E012}"); // ArrowLeft ×3
    let after = b.js("return document.querySelector('#pt-time').value;", vec![]);
    let secs = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert_eq!(secs(&before) - secs(&after), 3, "{before} → {after}");
    b.js(
        "document.querySelector('[data-act=snapshot]').focus();",
        vec![],
    );
    b.keys("[data-act=snapshot]", "\u{E007}"); // Enter
    b.wait_for("#dialog[open] #f-snap");
    b.keys("#f-snap", "kb\u{E007}");
    b.wait_for("[data-rollback=kb]");
    let snaps = api(&url, "GET", "/v1/tenants/acme/snapshots", None);
    assert!(
        snaps.as_array().unwrap().iter().any(|s| s["name"] == "kb"),
        "{snaps}"
    );

    // Roll back to it after a row is deleted.
    ok(d, &["delete", "acme", "t", "7"]);
    b.click("[data-rollback=kb]");
    b.wait_for("#dialog[open]");
    assert!(b
        .text("#dialog-consequence")
        .contains("every change made since is undone"));
    b.click("#dialog-ok");
    b.wait(
        "the rollback's notice",
        "return document.querySelector('#notice').innerText.includes('1 row changed');",
        vec![],
    );
    let row = api(&url, "GET", "/v1/tenants/acme/tables/t/row?key=7", None);
    assert_eq!(row["row"]["id"], json!(7), "{row}");

    // Restore into a new tenant, at the same point.
    b.wait_for("#pt-new:not([disabled])");
    b.click("#pt-new");
    b.wait_for("#dialog[open] #f-target");
    assert!(b
        .text("#dialog-consequence")
        .contains("acme is not changed"));
    b.fill("#f-target", "acme-copy");
    b.click("#dialog-ok");
    b.wait(
        "the restore's notice",
        "return document.querySelector('#notice').innerText.includes('Restore started');",
        vec![],
    );
    let rjob = started_job(&b.text("#notice"));
    wait_job(&url, rjob);
    let scan = api(
        &url,
        "GET",
        "/v1/tenants/acme-copy/tables/t/rows?limit=5000",
        None,
    );
    assert_eq!(scan["rows"].as_array().unwrap().len(), 3000);
    b.goto(&format!("{url}/#/"));
    b.wait_for("#ov-table tbody tr[data-tenant=acme-copy]");
    b.shot("8-overview-after-restore");

    // A standby of acme, promoted from its page: refused while acme looks alive, then
    // forced.
    ok(
        d,
        &[
            "restore",
            "acme",
            "--standby",
            "--into",
            "acme-sb",
            "--repo",
            &repo_url,
            "--poll",
            "50ms",
        ],
    );
    b.open(&format!("{url}/#/tenant/acme-sb"));
    b.wait(
        "the standby card",
        "return document.querySelector('#t-cards').innerText.toLowerCase().includes('standby of');",
        vec![],
    );
    b.click("[data-act=promote]");
    b.click("#dialog-ok");
    b.expect_error("#dialog-error", "INVALID_ARGUMENT");
    b.click("#f-force");
    assert!(b.text("#dialog-consequence").contains("are lost to it"));
    b.click("#dialog-ok");
    b.wait(
        "the promotion's notice",
        "return document.querySelector('#notice').innerText.includes('is promoted');",
        vec![],
    );
    b.shot("8b-promoted");
    let t = api(&url, "GET", "/v1/tenants/acme-sb", None);
    assert_eq!(t["state"], "active", "{t}");

    // A tenant token sees its tenant only, and no admin action.
    let tok = api(
        &url,
        "POST",
        "/v1/tokens",
        Some(json!({"role": "operator", "tenant": "acme", "name": "acme ops"})),
    );
    b.click("#logout");
    b.goto(&format!("{url}/#/"));
    b.fill("#token", tok["token"].as_str().unwrap());
    b.click("#login-form button[type=submit]");
    b.wait_for("#ov-table tbody tr[data-tenant=acme]");
    let rows = b.js(
        "return [...document.querySelectorAll('#ov-table tbody tr')].map(r => r.dataset.tenant);",
        vec![],
    );
    assert_eq!(rows, json!(["acme"]));
    // All of the page's text, closed details included.
    let all = |b: &crate::browser::Browser| {
        b.js("return document.documentElement.textContent;", vec![])
            .as_str()
            .unwrap()
            .to_string()
    };
    let t = all(&b);
    assert!(
        !t.contains("beta") && !t.contains("acme-copy") && !t.contains("acme-sb"),
        "{t}"
    );
    assert!(b.text("#who").contains("tenant acme"));
    assert_eq!(
        b.js("return !!document.querySelector('#ov-restore');", vec![]),
        json!(false)
    );
    b.shot("9-tenant-token-overview");
    b.goto(&format!("{url}/#/jobs"));
    b.wait_for("#jobs-history table");
    // Exactly the jobs the API lists for this token (those about acme: its backups,
    // and the restores of it, which name the tenant they built), nothing of beta.
    b.wait(
        "the job rows",
        "return document.querySelectorAll('[data-job-row]').length > 0;",
        vec![],
    );
    let shown = b.js(
        "return [...document.querySelectorAll('[data-job-row]')].map(r => Number(r.dataset.jobRow)).sort((a, b) => a - b);",
        vec![],
    );
    let c = reqwest::blocking::Client::new();
    let listed: Value = c
        .get(format!("{url}/v1/jobs"))
        .bearer_auth(tok["token"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut ids: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(shown, json!(ids));
    assert!(!all(&b).contains("beta"));
    b.goto(&format!("{url}/#/tenant/beta"));
    b.wait(
        "beta refused",
        "return document.querySelector('main').innerText.includes('TENANT_NOT_FOUND');",
        vec![],
    );
    b.shot("10-tenant-token-other-tenant");

    // The token revoked while logged in: the next request sends the page back to the
    // login form, saying why.
    api(
        &url,
        "DELETE",
        &format!("/v1/tokens/{}", tok["info"]["id"]),
        None,
    );
    b.goto(&format!("{url}/#/jobs"));
    b.wait_for("#token");
    assert!(
        b.text("#notice").contains("no longer accepted"),
        "{}",
        b.text("#notice")
    );
    eprintln!("screenshots: {}", b.shots.display());
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The first-paint figure with 1,000 tenants (`scripts/bench-dashboard`, release build):
/// loads of the overview alternate (ABBA) with the same API answer fetched alone, its
/// ceiling. Prints medians; the target is the overview painted within 300 ms.
#[test]
#[ignore = "a benchmark: scripts/bench-dashboard"]
fn dashboard_first_paint_1000_tenants() {
    let Some(b) = browser("dashboard_first_paint_1000_tenants") else {
        return;
    };
    let n: usize = std::env::var("TENET_BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rounds: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let url = srv.url.clone();
    let c = reqwest::blocking::Client::new();
    let made = std::time::Instant::now();
    for i in 0..n {
        let r = call(
            &c,
            "POST",
            &format!("{url}/v1/tenants"),
            Some(json!({"name": format!("tenant-{i:04}")})),
        );
        assert_eq!(r.0, 201, "{}", r.1);
    }
    eprintln!("{n} tenants made in {:.1} s", made.elapsed().as_secs_f64());
    b.goto(&format!("{url}/"));
    b.fill("#token", &srv.token);
    b.click("#login-form button[type=submit]");
    b.wait_for("#ov-table tbody tr");

    let api_alone = || {
        let t = std::time::Instant::now();
        let r = authed(c.get(format!("{url}/v1/protection")), &url)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().unwrap();
        (t.elapsed().as_secs_f64() * 1000.0, body.len())
    };
    let page = || {
        b.goto("about:blank");
        b.goto(&format!("{url}/#/"));
        b.wait(
            "the overview's mark",
            "return performance.getEntriesByName('tenet:overview-all').length > 0;",
            vec![],
        );
        let v = b.js(
            "const p = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
             const r = performance.getEntriesByType('resource').find(e => e.name.endsWith('/v1/protection'));
             return [p ? p.startTime : -1, r ? r.responseEnd : -1,
                     performance.getEntriesByName('tenet:overview')[0].startTime,
                     performance.getEntriesByName('tenet:protection')[0].startTime,
                     performance.getEntriesByName('tenet:overview-dom')[0].startTime,
                     performance.getEntriesByName('tenet:overview-all')[0].startTime,
                     document.querySelectorAll('#ov-table tbody tr').length];",
            vec![],
        );
        let f = |i: usize| v[i].as_f64().unwrap();
        assert_eq!(f(6) as usize, n, "rows shown");
        (f(0), f(1), f(2), f(5))
    };
    let (mut fcp, mut answered, mut painted, mut all, mut alone) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut bytes = 0;
    for round in 0..rounds {
        // ABBA: page, API, API, page, …
        let page_first = round % 2 == 0;
        for step in 0..2 {
            if (step == 0) == page_first {
                let (a, r, p, l) = page();
                fcp.push(a);
                answered.push(r);
                painted.push(p);
                all.push(l);
            } else {
                let (ms, len) = api_alone();
                alone.push(ms);
                bytes = len;
            }
        }
    }
    b.shot("bench-overview-1000");
    let (fcp, answered, painted, all, alone) = (
        median(&mut fcp),
        median(&mut answered),
        median(&mut painted),
        median(&mut all),
        median(&mut alone),
    );
    println!("dashboard first paint, {n} tenants, {rounds} rounds (ABBA), medians:");
    println!("  first contentful paint          {fcp:7.1} ms");
    println!("  /v1/protection answered (page)  {answered:7.1} ms after navigation");
    println!(
        "  overview painted (first screen) {painted:7.1} ms after navigation (target ≤ 300 ms)"
    );
    println!("  all {n} rows painted           {all:7.1} ms after navigation");
    println!(
        "  /v1/protection alone (ceiling)  {alone:7.1} ms, {} KiB",
        bytes / 1024
    );
    println!(
        "  the page's own cost             {:7.1} ms (painted − the API alone)",
        painted - alone
    );
}
