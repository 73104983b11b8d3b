//! The protection operations of the API: named repositories, strategies and prune
//! (the stored settings are `tenet_backup::strategy`; the decisions
//! `tenet_backup::prune`). [`crate::service::Service`]'s [`crate::admin::Admin`]
//! implementation calls these.

use tenet_backup::prune::{Decision, ObjectKind, PruneParams, Retention};
use tenet_backup::strategy::{self, RepoConfig, Strategy, DEFAULT_KEY};
use tenet_backup::{Repo, S3Settings};
use tenet_store::TenantState;

use crate::api::*;
use crate::error::{ApiError, ApiResult};
use crate::service::Service;

fn repo_info(r: RepoConfig, strategies: &[(u64, String, Strategy)]) -> RepoInfo {
    let used_by = strategies
        .iter()
        .filter(|(_, _, s)| {
            s.repo.as_deref() == Some(r.name.as_str()) || (s.repo.is_none() && r.default)
        })
        .map(|(_, name, _)| name.clone())
        .collect();
    RepoInfo {
        name: r.name,
        url: r.url,
        endpoint: r.s3.endpoint,
        region: r.s3.region,
        access_key_env: r.s3.access_key_env,
        secret_key_env: r.s3.secret_key_env,
        default: r.default,
        added_at: r.added_at,
        used_by,
    }
}

fn time_of(ms: u64) -> String {
    tenet_store::Ts::from_millis(ms).to_rfc3339()
}

fn run_info(r: tenet_backup::scheduler::RunState) -> RunInfo {
    // An archiver is kept running, never due.
    let scheduled = r.kind != "archive" && r.next_due_ms != u64::MAX;
    RunInfo {
        next_due_time: scheduled.then(|| time_of(r.next_due_ms)),
        kind: r.kind,
        job: r.job,
        last_started_time: r.last_started_ms.map(time_of),
        last_success_time: r.last_success_ms.map(time_of),
        last_outcome: r.last_outcome,
        failures: r.failures,
        retry_time: r.retry_at_ms.map(time_of),
        skipped: r.skipped,
        problem: r.problem,
    }
}

fn body_of(s: &Strategy) -> StrategyBody {
    StrategyBody {
        full: s.full.clone(),
        incr_secs: s.incr_secs,
        archive: s.archive,
        archive_interval_ms: s.archive_interval_ms,
        repo: s.repo.clone(),
        keep_within_secs: s.retention.keep_within_secs,
        keep_full: s.retention.keep_full,
        drill: s.drill.clone(),
    }
}

fn plan_info(tenant: &str, p: &PruneParams, d: &Decision, job: Option<JobInfo>) -> PrunePlan {
    PrunePlan {
        tenant: tenant.to_string(),
        history_id: p.history_id,
        repo: p.repo.clone(),
        retention: p.retention.describe(),
        keep_from: d.keep_from.map(|t| t.to_rfc3339()),
        keep_from_reason: d.keep_from_reason.clone(),
        delete: d
            .delete
            .iter()
            .map(|o| PruneObject {
                kind: match o.kind {
                    ObjectKind::Full => "full",
                    ObjectKind::Incr => "incr",
                    ObjectKind::Segment => "segment",
                }
                .into(),
                id: o.id.clone(),
                bytes: o.bytes,
                end_time: o.end.to_rfc3339(),
                reason: o.reason.clone(),
            })
            .collect(),
        delete_bytes: d.delete_bytes(),
        kept_objects: d.kept_objects,
        kept_bytes: d.kept_bytes,
        restorable_after: d.restorable_after.iter().copied().map(Into::into).collect(),
        notes: d.notes.clone(),
        job,
    }
}

impl Service {
    /// Every stored strategy with the name to show for it.
    fn named_strategies(&self) -> ApiResult<Vec<(u64, String, Strategy)>> {
        Ok(strategy::strategies(&self.store)?
            .into_iter()
            .filter_map(|(id, s)| {
                let name = if id == DEFAULT_KEY {
                    "(default)".to_string()
                } else {
                    self.store.tenant_by_id(id)?.name
                };
                Some((id, name, s))
            })
            .collect())
    }

    pub(crate) fn list_repos_impl(&self) -> ApiResult<Vec<RepoInfo>> {
        let used = self.named_strategies()?;
        Ok(strategy::repos(&self.store)?
            .into_iter()
            .map(|r| repo_info(r, &used))
            .collect())
    }

    pub(crate) fn get_repo_impl(&self, name: &str) -> ApiResult<RepoInfo> {
        let r = self.repo_named(name)?;
        Ok(repo_info(r, &self.named_strategies()?))
    }

    fn repo_named(&self, name: &str) -> ApiResult<RepoConfig> {
        strategy::validate_repo_name(name)?;
        strategy::repo(&self.store, name)?.ok_or_else(|| {
            tenet_backup::Error::RepoNotFound(format!(
                "no repository named `{name}`; list them with `tenet repo list`"
            ))
            .into()
        })
    }

    pub(crate) fn add_repo_impl(&self, req: &AddRepo) -> ApiResult<RepoInfo> {
        let mut cfg = RepoConfig {
            name: req.name.clone(),
            url: req.url.clone(),
            s3: S3Settings {
                endpoint: req.endpoint.clone(),
                region: req.region.clone(),
                access_key_env: req.access_key_env.clone(),
                secret_key_env: req.secret_key_env.clone(),
            },
            default: req.default,
            added_at: tenet_store::Ts::from_millis(self.store.clock().now_millis()).to_rfc3339(),
        };
        cfg.validate()?;
        if let Some(old) = strategy::repo(&self.store, &cfg.name)? {
            return Err(tenet_backup::Error::RepoConflict(format!(
                "a repository named `{}` exists ({}); remove it first with `tenet repo remove {}`",
                old.name, old.url, old.name
            ))
            .into());
        }
        // Reachable and writable with these settings: open it as every job will.
        tenet_backup::repo::register_settings(&cfg.url, Some(cfg.s3.clone()));
        let checked = self.runtime.block_on(async {
            let repo = Repo::create(&cfg.url)?;
            repo.check(&tenet_store::Ts::from_millis(self.store.clock().now_millis()).to_rfc3339())
                .await
        });
        if let Err(e) = checked {
            // Another name may use the same URL: keep its settings.
            let others = strategy::repos(&self.store)?;
            let keep = others.into_iter().find(|r| r.url == cfg.url).map(|r| r.s3);
            tenet_backup::repo::register_settings(&cfg.url, keep);
            return Err(e.into());
        }
        strategy::save_repo(&self.store, &cfg)?;
        self.get_repo_impl(&cfg.name)
    }

    pub(crate) fn remove_repo_impl(&self, name: &str) -> ApiResult<RepoInfo> {
        let r = self.repo_named(name)?;
        let info = repo_info(r.clone(), &self.named_strategies()?);
        if !info.used_by.is_empty() {
            return Err(tenet_backup::Error::RepoConflict(format!(
                "repository `{name}` is used by the strategies of {}; change or delete them \
                 first (its backups stay where they are either way)",
                info.used_by.join(", ")
            ))
            .into());
        }
        strategy::remove_repo(&self.store, &r)?;
        Ok(info)
    }

    /// The key a strategy request is about: a live tenant's id, or the default.
    fn strategy_key(&self, tenant: Option<&str>) -> ApiResult<(u64, Option<String>)> {
        let Some(name) = tenant else {
            return Ok((DEFAULT_KEY, None));
        };
        let id = self.live_tenant(name)?;
        let rec = self.store.resolve(id)?;
        if rec.state == TenantState::Standby {
            return Err(ApiError::invalid(format!(
                "`{}` is a standby: its history is written by its primary, so it has no \
                 strategy of its own until it is promoted",
                rec.name
            )));
        }
        Ok((id, Some(rec.name)))
    }

    pub(crate) fn get_strategy_impl(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo> {
        let (key, name) = self.strategy_key(tenant)?;
        let found = if key == DEFAULT_KEY {
            strategy::strategy(&self.store, key)?.map(|s| (s, true))
        } else {
            strategy::effective(&self.store, key)?
        };
        let Some((s, own)) = found else {
            return Err(tenet_backup::Error::StrategyNotFound(match &name {
                Some(n) => format!(
                    "tenant `{n}` has no strategy, and there is no default one; set one with \
                     `tenet strategy set {n} --full \"0 2 * * *\" …` or `tenet strategy set \
                     --default …`"
                ),
                None => "there is no default strategy; set one with `tenet strategy set \
                         --default --full \"0 2 * * *\" …`"
                    .into(),
            })
            .into());
        };
        let runs = self
            .scheduler
            .states()
            .into_iter()
            .filter(|r| key != DEFAULT_KEY && r.tenant_id == key)
            .map(run_info)
            .collect();
        Ok(StrategyInfo {
            tenant: name,
            inherited: !own,
            strategy: body_of(&s),
            repo_url: s.repo_url(&self.store).unwrap_or_default(),
            updated_at: s.updated_at,
            runs,
        })
    }

    pub(crate) fn put_strategy_impl(
        &self,
        tenant: Option<&str>,
        req: &StrategyBody,
    ) -> ApiResult<StrategyInfo> {
        let (key, _) = self.strategy_key(tenant)?;
        let s = Strategy {
            full: req.full.clone(),
            incr_secs: req.incr_secs,
            archive: req.archive,
            archive_interval_ms: req.archive_interval_ms,
            repo: req.repo.clone(),
            retention: Retention {
                keep_within_secs: req.keep_within_secs,
                keep_full: req.keep_full,
            },
            drill: req.drill.clone(),
            updated_at: tenet_store::Ts::from_millis(self.store.clock().now_millis()).to_rfc3339(),
        };
        s.validate(&self.store)?;
        strategy::save_strategy(&self.store, key, &s)?;
        self.scheduler.changed();
        self.get_strategy_impl(tenant)
    }

    pub(crate) fn delete_strategy_impl(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo> {
        let (key, name) = self.strategy_key(tenant)?;
        let Some(s) = strategy::strategy(&self.store, key)? else {
            return Err(tenet_backup::Error::StrategyNotFound(match name {
                Some(n) => format!("tenant `{n}` has no strategy of its own"),
                None => "there is no default strategy".into(),
            })
            .into());
        };
        strategy::remove_strategy(&self.store, key)?;
        self.scheduler.changed();
        Ok(StrategyInfo {
            tenant: name,
            inherited: false,
            strategy: body_of(&s),
            repo_url: s.repo_url(&self.store).unwrap_or_default(),
            updated_at: s.updated_at,
            runs: Vec::new(),
        })
    }

    /// The dry run of one tenant's prune and, unless `dry_run`, the job that deletes
    /// exactly what it lists.
    fn prune_one(
        &self,
        subject: &tenet_backup::Subject,
        retention: Retention,
        url: Option<&str>,
        dry_run: bool,
    ) -> ApiResult<PrunePlan> {
        let (p, d) = self
            .runtime
            .block_on(self.backups.prune_dry_run(subject, url, retention))?;
        let job = if dry_run {
            None
        } else {
            let job = self.runtime.block_on(self.backups.start_prune(
                subject,
                Some(&p.repo),
                retention,
                Some(d.clone()),
            ))?;
            Some(self.start(job)?)
        };
        Ok(plan_info(&subject.name, &p, &d, job))
    }

    pub(crate) fn prune_impl(&self, req: &PruneRequest) -> ApiResult<PruneResponse> {
        let explicit =
            (req.keep_within_secs.is_some() || req.keep_full.is_some()).then_some(Retention {
                keep_within_secs: req.keep_within_secs,
                keep_full: req.keep_full,
            });
        if let Some(r) = &explicit {
            r.validate()?;
        }
        let repo = self.repo_arg(&req.repo)?;
        // (subject, retention, repository) of each tenant to prune.
        let mut targets = Vec::new();
        match &req.tenant {
            Some(t) => {
                let subject = self.subject(t, repo.as_deref())?;
                let strat = match subject.tenant_id {
                    Some(id) => strategy::effective(&self.store, id)?.map(|(s, _)| s),
                    None => None,
                };
                let retention = explicit
                    .or_else(|| strat.as_ref().and_then(Strategy::retention_policy))
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "tenant `{}` has no retention in a strategy; give --keep-within \
                             and/or --keep-full",
                            subject.name
                        ))
                    })?;
                let url = match (&repo, &strat) {
                    (Some(r), _) => Some(r.clone()),
                    (None, Some(s)) => s.repo_url(&self.store).ok(),
                    (None, None) => None,
                };
                targets.push((subject, retention, url));
            }
            None => {
                for rec in self.store.tenants() {
                    if matches!(rec.state, TenantState::Standby | TenantState::Restoring) {
                        continue;
                    }
                    let Some((s, _)) = strategy::effective(&self.store, rec.id)? else {
                        continue;
                    };
                    let Some(retention) = explicit.or_else(|| s.retention_policy()) else {
                        continue;
                    };
                    let url = repo.clone().or_else(|| s.repo_url(&self.store).ok());
                    targets.push((tenet_backup::Subject::of(&rec), retention, url));
                }
                if targets.is_empty() {
                    return Err(ApiError::invalid(
                        "no tenant has a strategy with a retention; give --tenant with \
                         --keep-within and/or --keep-full, or set one with `tenet strategy set`",
                    ));
                }
            }
        }
        let one = req.tenant.is_some();
        let mut plans = Vec::new();
        for (subject, retention, url) in targets {
            match self.prune_one(&subject, retention, url.as_deref(), req.dry_run) {
                Ok(plan) => plans.push(plan),
                Err(e) if one => return Err(e),
                // Over every tenant, one that cannot be pruned does not stop the others.
                Err(e) => plans.push(PrunePlan {
                    tenant: subject.name.clone(),
                    history_id: subject.id,
                    repo: url.unwrap_or_default(),
                    retention: retention.describe(),
                    keep_from: None,
                    keep_from_reason: String::new(),
                    delete: Vec::new(),
                    delete_bytes: 0,
                    kept_objects: 0,
                    kept_bytes: 0,
                    restorable_after: Vec::new(),
                    notes: vec![format!("not pruned: {} [{}]", e.message, e.code)],
                    job: None,
                }),
            }
        }
        Ok(PruneResponse {
            dry_run: req.dry_run,
            plans,
        })
    }

    pub(crate) fn protection_impl(&self, q: &ProtectionQuery) -> ApiResult<ProtectionOverview> {
        if q.refresh {
            self.overview.invalidate();
        }
        let views = self.runtime.block_on(self.overview.view())?;
        let now = self.store.clock().now_millis();
        let brief = |b: &Option<tenet_backup::overview::BackupView>| {
            b.as_ref().map(|b| BackupBrief {
                backup_id: b.backup_id.clone(),
                time: b.ts.to_rfc3339(),
                age_secs: now.saturating_sub(b.ts.millis()) / 1000,
                stored_bytes: b.stored_bytes,
            })
        };
        let named: Vec<RepoConfig> = strategy::repos(&self.store)?;
        let mut usage: std::collections::BTreeMap<String, RepoUsage> = Default::default();
        let mut tenants = Vec::new();
        // A tenant token sees its tenant, and the repository usage of it alone.
        for v in views.into_iter().filter(|v| self.sees_tenant(v.tenant_id)) {
            let h = &v.holdings;
            if let Some(url) = &h.repo {
                let u = usage.entry(url.clone()).or_insert_with(|| RepoUsage {
                    url: url.clone(),
                    name: named.iter().find(|r| &r.url == url).map(|r| r.name.clone()),
                    bytes: 0,
                    objects: 0,
                    tenants: 0,
                });
                u.bytes += h.bytes;
                u.objects += h.objects;
                u.tenants += 1;
            }
            let next = |kind: &str| {
                v.runs
                    .iter()
                    .find(|r| r.kind == kind && r.next_due_ms != u64::MAX)
                    .map(|r| time_of(r.next_due_ms))
            };
            tenants.push(ProtectionInfo {
                next_full_time: next("full"),
                next_incr_time: next("incr"),
                next_drill_time: next("drill"),
                last_drill_job: v.last_drill.as_ref().map(|d| d.job),
                last_drill_time: v.last_drill.as_ref().map(|d| d.finished_at.clone()),
                last_drill_ok: v.last_drill.as_ref().map(|d| d.succeeded),
                last_proven_restorable_time: v.proven_restorable.map(|t| t.to_rfc3339()),
                tenant: v.tenant.clone(),
                tenant_id: v.tenant_id,
                state: v.state.clone(),
                strategy: v.strategy.as_ref().map(body_of),
                own_strategy: v.own_strategy,
                repo: h.repo.clone(),
                last_full: brief(&h.last_full),
                last_incr: brief(&h.last_incr),
                restorable: h.restorable.iter().copied().map(Into::into).collect(),
                restorable_until_time: v.protection.restorable_until.map(|t| t.to_rfc3339()),
                rpo_ms: v.protection.rpo_ms,
                archive: v.archive.clone(),
                archive_running: v.archive_running,
                runs: v.runs.into_iter().map(run_info).collect(),
                repo_bytes: h.bytes,
                repo_objects: h.objects,
                read_time: time_of(h.read_ms),
                problems: v.problems,
            });
        }
        Ok(ProtectionOverview {
            generated_at: time_of(now),
            tenants,
            repositories: usage.into_values().collect(),
        })
    }
}
