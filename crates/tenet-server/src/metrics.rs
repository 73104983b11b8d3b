//! `GET /metrics`: the server's figures in the Prometheus text format, encoded by the
//! `prometheus` crate.
//!
//! HTTP request latencies are a histogram kept as requests are answered (a middleware
//! around every route; the route is its template, e.g. `/v1/tenants/{tenant}`). The
//! rest is read at each scrape, from the same places the API answers from, so a scrape
//! and `GET /v1/protection` agree:
//! * per tenant, from the protection overview: RPO, restorable-until time, the newest
//!   full and incremental backup's time, the newest successful drill's time, problems;
//!   per repository, its bytes;
//! * per tenant, from the archivers: segments, records and bytes shipped;
//! * jobs by kind and state, their duration histogram and bytes, from the job records;
//! * the store: commits since it opened, its size on disk.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::api::ProtectionQuery;
use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use tenet_store::Code;

/// Buckets (seconds) of the HTTP latency histogram.
const HTTP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Buckets (seconds) of the job duration histogram.
const JOB_BUCKETS: [f64; 10] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
];

/// What is measured as it happens (HTTP), kept for the life of the server.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: HistogramVec,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish()
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let registry = Registry::new();
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "tenet_http_request_duration_seconds",
                "HTTP requests answered, by route template, method and status",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["route", "method", "status"],
        )
        .expect("valid histogram");
        registry
            .register(Box::new(requests.clone()))
            .expect("registered once");
        HttpMetrics { registry, requests }
    }
}

/// The middleware that times every request.
pub async fn track(State(svc): State<Service>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    svc.http_metrics()
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), resp.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    resp
}

fn metric_err(e: prometheus::Error) -> ApiError {
    ApiError::new(Code::INTERNAL, format!("metrics: {e}"))
}

/// Parses an RFC 3339 time into seconds since the epoch.
fn secs(time: &str) -> Option<f64> {
    tenet_store::Ts::parse_rfc3339(time)
        .ok()
        .map(|t| t.millis() as f64 / 1000.0)
}

impl Service {
    /// The text of a scrape.
    /// A tenant token's scrape holds its tenant's figures and jobs only.
    pub(crate) fn metrics_text(&self) -> ApiResult<String> {
        self.allow(crate::auth::Role::Read, None)?;
        let r = Registry::new();
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| -> ApiResult<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), labels).map_err(metric_err)?;
            r.register(Box::new(g.clone())).map_err(metric_err)?;
            Ok(g)
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| -> ApiResult<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels).map_err(metric_err)?;
            r.register(Box::new(c.clone())).map_err(metric_err)?;
            Ok(c)
        };

        // Tenants and repositories: the overview.
        let o = self.protection_impl(&ProtectionQuery::default())?;
        let rpo = gauge_vec(
            "tenet_tenant_rpo_seconds",
            "Commits a disaster now would lose, in seconds (absent: nothing restorable)",
            &["tenant"],
        )?;
        let until = gauge_vec(
            "tenet_tenant_restorable_until_timestamp_seconds",
            "The newest restorable time (the planner's)",
            &["tenant"],
        )?;
        let last = gauge_vec(
            "tenet_tenant_last_success_timestamp_seconds",
            "The newest full and incremental backup's time, and the newest successful \
             drill's end",
            &["tenant", "kind"],
        )?;
        let problems = gauge_vec(
            "tenet_tenant_problems",
            "Problems the overview reports",
            &["tenant"],
        )?;
        let drill_failed = gauge_vec(
            "tenet_tenant_last_drill_failed",
            "1 when the newest restore drill failed",
            &["tenant"],
        )?;
        let repo_bytes = gauge_vec(
            "tenet_repository_bytes",
            "Bytes of this store's tenants' histories in a repository",
            &["repo"],
        )?;
        for t in &o.tenants {
            let name = t.tenant.as_str();
            if let Some(ms) = t.rpo_ms {
                rpo.with_label_values(&[name]).set(ms as f64 / 1000.0);
            }
            if let Some(s) = t.restorable_until_time.as_deref().and_then(secs) {
                until.with_label_values(&[name]).set(s);
            }
            for (kind, b) in [("full", &t.last_full), ("incr", &t.last_incr)] {
                if let Some(s) = b.as_ref().and_then(|b| secs(&b.time)) {
                    last.with_label_values(&[name, kind]).set(s);
                }
            }
            if t.last_drill_ok == Some(true) {
                if let Some(s) = t.last_drill_time.as_deref().and_then(secs) {
                    last.with_label_values(&[name, "drill"]).set(s);
                }
            }
            if let Some(ok) = t.last_drill_ok {
                drill_failed
                    .with_label_values(&[name])
                    .set(if ok { 0.0 } else { 1.0 });
            }
            problems
                .with_label_values(&[name])
                .set(t.problems.len() as f64);
        }
        for u in &o.repositories {
            let label = u.name.clone().unwrap_or_else(|| u.url.clone());
            repo_bytes.with_label_values(&[&label]).set(u.bytes as f64);
        }

        // Archivers.
        let shipped_segments = counter_vec(
            "tenet_archive_segments_total",
            "Log segments an archiver shipped",
            &["tenant"],
        )?;
        let shipped_bytes = counter_vec(
            "tenet_archive_bytes_total",
            "Bytes of log segments an archiver shipped",
            &["tenant"],
        )?;
        for a in tenet_backup::archiver::all(&self.store)? {
            let Some(rec) = self
                .store
                .tenant_by_id(a.tenant_id)
                .filter(|_| self.sees_tenant(a.tenant_id))
            else {
                continue;
            };
            shipped_segments
                .with_label_values(&[rec.name.as_str()])
                .inc_by(a.segments);
            shipped_bytes
                .with_label_values(&[rec.name.as_str()])
                .inc_by(a.bytes);
        }

        // Jobs.
        let jobs = IntGaugeVec::new(
            Opts::new("tenet_jobs", "Jobs by kind and state"),
            &["kind", "state"],
        )
        .map_err(metric_err)?;
        r.register(Box::new(jobs.clone())).map_err(metric_err)?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "tenet_job_duration_seconds",
                "Ended jobs, from start to end, by kind and state",
            )
            .buckets(JOB_BUCKETS.to_vec()),
            &["kind", "state"],
        )
        .map_err(metric_err)?;
        r.register(Box::new(durations.clone()))
            .map_err(metric_err)?;
        let job_bytes = counter_vec(
            "tenet_job_bytes_total",
            "Bytes jobs processed (logical)",
            &["kind"],
        )?;
        for j in self.jobs().list()?.into_iter().filter(|j| self.sees_job(j)) {
            let state = j.state.name();
            jobs.with_label_values(&[j.kind.as_str(), state]).inc();
            job_bytes
                .with_label_values(&[j.kind.as_str()])
                .inc_by(j.progress.bytes_done);
            if let (Some(a), Some(b)) = (
                j.started_at.as_deref().and_then(secs),
                j.finished_at.as_deref().and_then(secs),
            ) {
                durations
                    .with_label_values(&[j.kind.as_str(), state])
                    .observe((b - a).max(0.0));
            }
        }

        // The rest is the whole store's: not for a tenant token.
        let mut families = Vec::new();
        if self.caller.tenant_id.is_none() {
            self.store_metrics(&r, &o.generated_at)?;
            families.extend(self.http_metrics().registry.gather());
        }
        families.extend(r.gather());
        encode(&families)
    }

    /// Commits, the store's size and the scrape's time.
    fn store_metrics(&self, r: &Registry, generated_at: &str) -> ApiResult<()> {
        let commits = IntCounter::new(
            "tenet_commits_total",
            "Commits of user tenants since the store opened",
        )
        .map_err(metric_err)?;
        commits.inc_by(self.store.commits());
        r.register(Box::new(commits)).map_err(metric_err)?;
        let size =
            IntGauge::new("tenet_store_bytes", "The store's size on disk").map_err(metric_err)?;
        size.set(self.store.size_bytes() as i64);
        r.register(Box::new(size)).map_err(metric_err)?;
        let generated = Gauge::new(
            "tenet_metrics_generated_timestamp_seconds",
            "When this scrape was made",
        )
        .map_err(metric_err)?;
        generated.set(secs(generated_at).unwrap_or(0.0));
        r.register(Box::new(generated)).map_err(metric_err)?;
        self.pacing_metrics(r)
    }

    /// The job pacer: its budget, whether it is slowing jobs, and the foreground
    /// latency it decides on (`tenet_jobs::pacing`).
    fn pacing_metrics(&self, r: &Registry) -> ApiResult<()> {
        let p = self.jobs().pacing();
        let gauge = |name: &str, help: &str, v: f64| -> ApiResult<()> {
            let g = Gauge::new(name, help).map_err(metric_err)?;
            g.set(v);
            r.register(Box::new(g)).map_err(metric_err)
        };
        let micros = |v: Option<u64>| v.map_or(f64::NAN, |m| m as f64 / 1e6);
        gauge(
            "tenet_jobs_io_budget_bytes_per_second",
            "The I/O budget all jobs share now (0: unlimited)",
            p.rate_bytes_per_sec.map_or(0.0, |v| v as f64),
        )?;
        gauge(
            "tenet_jobs_pacing_slowed",
            "1 while the pacer holds jobs below full speed for the tenants' sake",
            f64::from(u8::from(p.state == tenet_jobs::PacingState::Slowed)),
        )?;
        gauge(
            "tenet_jobs_moved_bytes_per_second",
            "Bytes per second jobs drew from the budget in the pacer's last tick",
            p.moved_bytes_per_sec as f64,
        )?;
        gauge(
            "tenet_foreground_commit_p99_seconds",
            "p99 commit latency of the tenants at the pacer's last decision (NaN: none)",
            micros(p.commit_p99_micros),
        )?;
        gauge(
            "tenet_foreground_commit_baseline_p99_seconds",
            "p99 commit latency of the tenants with no job running (NaN: not learnt)",
            micros(p.commit_baseline_p99_micros),
        )
    }
}

fn encode(families: &[prometheus::proto::MetricFamily]) -> ApiResult<String> {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(families, &mut out)
        .map_err(metric_err)?;
    String::from_utf8(out).map_err(|e| ApiError::internal(e.to_string()))
}

/// Shared between clones of the service.
pub(crate) type SharedHttp = Arc<HttpMetrics>;
