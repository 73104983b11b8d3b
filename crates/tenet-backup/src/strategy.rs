//! What the operator says once: named repositories (system table [`REPOS_TABLE`]) and
//! protection strategies (system table [`STRATEGIES_TABLE`]).
//!
//! # Named repositories
//! A [`RepoConfig`] gives a repository URL a name and, for S3, how to reach it
//! (endpoint, region, the *names* of the environment variables holding its keys —
//! never the keys). The server holds them, so the CLI and the server never disagree
//! about credentials: a job started from the CLI with `--repo nightly` is resolved to
//! the URL by the server and opened with the server's settings
//! ([`crate::repo::register_settings`]). One repository may be the default: strategies
//! without a repository and `--repo`-less backups use it.
//!
//! # Strategies
//! A [`Strategy`] is per tenant (keyed by tenant id), or the default (key 0, the
//! system tenant's id, which never has one) for every tenant without its own,
//! including tenants created later. A standby has none until promoted: its history is
//! written by its primary. Schedules are in UTC: `full` and `drill` are 5-field cron
//! expressions or `@hourly`/`@daily`/`@weekly`/`@monthly`; `incr` is an interval after
//! the previous backup. Retention is a [`Retention`]; a strategy without one never
//! prunes, and the overview says so.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{decode_system_row, encode_system_row, Store, Ts, REPOS_TABLE, STRATEGIES_TABLE};

use crate::archiver::INTERVAL_MS_RANGE;
use crate::error::{Error, Result};
use crate::prune::Retention;
use crate::repo::{canonical_url, register_settings, S3Settings};

/// A named repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub name: String,
    /// Canonical URL (`file:///dir`, `s3://bucket/prefix`).
    pub url: String,
    #[serde(default)]
    pub s3: S3Settings,
    /// Used when no repository is named.
    #[serde(default)]
    pub default: bool,
    pub added_at: String,
}

fn repo_key(name: &str) -> Vec<u8> {
    pk_bytes(&[KeyValue::Str(name.to_string())])
}

/// Checks a repository name: 1–63 of `a-z 0-9 - _`, starting with a letter (so it is
/// never mistaken for a path or URL).
pub fn validate_repo_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "`{}` is not a repository name; use 1 to 63 of a-z, 0-9, - and _, starting with a \
             letter",
            name.escape_debug()
        )))
    }
}

fn validate_env_name(var: &str) -> Result<()> {
    let ok = !var.is_empty()
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "`{}` is not an environment variable name; use letters, digits and _ (give the \
             variable's name, never the key itself)",
            var.escape_debug()
        )))
    }
}

impl RepoConfig {
    /// Checks the name, URL and settings (the variables it names must be set here).
    pub fn validate(&mut self) -> Result<()> {
        validate_repo_name(&self.name)?;
        self.url = canonical_url(&self.url)?;
        for v in [&self.s3.access_key_env, &self.s3.secret_key_env]
            .into_iter()
            .flatten()
        {
            validate_env_name(v)?;
        }
        if let Some(e) = &self.s3.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::InvalidArgument(format!(
                    "endpoint `{e}` must start with http:// or https://"
                )));
            }
        }
        if !self.url.starts_with("s3://") && self.s3 != S3Settings::default() {
            return Err(Error::InvalidArgument(
                "--endpoint, --region and the key variables apply to s3:// repositories only"
                    .into(),
            ));
        }
        self.s3.check(&self.url)
    }
}

pub fn repos(store: &Store) -> Result<Vec<RepoConfig>> {
    store
        .system_scan(REPOS_TABLE)?
        .into_iter()
        .map(|(_, v)| Ok(decode_system_row("repository", &v)?))
        .collect()
}

pub fn repo(store: &Store, name: &str) -> Result<Option<RepoConfig>> {
    store
        .system_get(REPOS_TABLE, &repo_key(name))?
        .map(|v| Ok(decode_system_row("repository", &v)?))
        .transpose()
}

/// Saves a named repository (making it the only default if it is one) and registers
/// its settings for its URL.
pub fn save_repo(store: &Store, cfg: &RepoConfig) -> Result<()> {
    if cfg.default {
        for mut other in repos(store)?.into_iter().filter(|r| r.default) {
            other.default = false;
            store.system_put(
                REPOS_TABLE,
                &repo_key(&other.name),
                Some(&encode_system_row(&other)),
            )?;
        }
    }
    store.system_put(
        REPOS_TABLE,
        &repo_key(&cfg.name),
        Some(&encode_system_row(cfg)),
    )?;
    register_settings(&cfg.url, Some(cfg.s3.clone()));
    Ok(())
}

pub fn remove_repo(store: &Store, cfg: &RepoConfig) -> Result<()> {
    store.system_put(REPOS_TABLE, &repo_key(&cfg.name), None)?;
    register_settings(&cfg.url, None);
    Ok(())
}

/// Registers every named repository's settings (at server start).
pub fn register_all(store: &Store) -> Result<()> {
    for r in repos(store)? {
        register_settings(&r.url, Some(r.s3));
    }
    Ok(())
}

/// The default named repository, if one is set.
pub fn default_repo(store: &Store) -> Result<Option<RepoConfig>> {
    Ok(repos(store)?.into_iter().find(|r| r.default))
}

/// Whether a `--repo` argument is a repository name (else a path or URL): a name has
/// no `/`, `.` or `:` and starts with a lowercase letter.
pub fn is_repo_name(arg: &str) -> bool {
    validate_repo_name(arg).is_ok()
}

/// Turns a `--repo` argument into a URL: a repository name (which must exist), else a
/// path or URL.
pub fn resolve_repo(store: &Store, arg: &str) -> Result<String> {
    if !is_repo_name(arg) {
        return canonical_url(arg);
    }
    match repo(store, arg)? {
        Some(r) => Ok(r.url),
        None => {
            let known: Vec<String> = repos(store)?.into_iter().map(|r| r.name).collect();
            Err(Error::RepoNotFound(format!(
                "no repository named `{arg}` ({}); a directory is given as a path (./{arg}, \
                 /path/{arg}) and S3 as s3://bucket/prefix",
                if known.is_empty() {
                    "none are named yet: `tenet repo add <name> <url>`".to_string()
                } else {
                    format!("named ones: {}", known.join(", "))
                }
            )))
        }
    }
}

/// The repository used when none is named: the default named one, else
/// [`crate::DEFAULT_REPO`] (relative to the process's directory).
pub fn default_repo_url(store: &Store) -> Result<String> {
    match default_repo(store)? {
        Some(r) => Ok(r.url),
        None => canonical_url(crate::DEFAULT_REPO),
    }
}

/// A 5-field cron schedule (UTC) or a nickname (`@daily`, …; `hourly`, `daily`,
/// `weekly`, `monthly` without the `@` too).
#[derive(Clone, Debug)]
pub struct Schedule(croner::Cron);

impl Schedule {
    pub fn parse(what: &str, text: &str) -> Result<Schedule> {
        let t = text.trim();
        let t = match t {
            "hourly" | "daily" | "weekly" | "monthly" | "yearly" => format!("@{t}"),
            _ => t.to_string(),
        };
        let fields = t.split_whitespace().count();
        if !t.starts_with('@') && fields != 5 {
            return Err(Error::InvalidArgument(format!(
                "{what} schedule `{}` has {fields} field(s); give 5 (minute hour day-of-month \
                 month day-of-week, in UTC, e.g. \"0 2 * * *\") or @hourly, @daily, @weekly, \
                 @monthly",
                text.escape_debug()
            )));
        }
        croner::Cron::from_str(&t).map(Schedule).map_err(|e| {
            Error::InvalidArgument(format!(
                "{what} schedule `{}` is not a cron expression: {e}; give 5 fields (minute hour \
                 day-of-month month day-of-week, in UTC, e.g. \"0 2 * * *\") or @daily",
                text.escape_debug()
            ))
        })
    }

    /// The first run strictly after `after` (ms since the epoch).
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let t = Ts::from_millis(after_ms).to_datetime();
        self.0
            .find_next_occurrence(&t, false)
            .ok()
            .map(|d| d.timestamp_millis() as u64)
    }
}

/// The incremental interval's bounds (1 minute to 31 days).
pub const INCR_SECS_RANGE: (u64, u64) = (60, 31 * 24 * 3600);

/// How a tenant is protected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    /// Full backups on this schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
    /// An incremental backup this long after the previous backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incr_secs: Option<u64>,
    /// Archive the log continuously.
    #[serde(default)]
    pub archive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_interval_ms: Option<u64>,
    /// A named repository (None: the default one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default)]
    pub retention: Retention,
    /// Restore drills on this schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    #[serde(default)]
    pub updated_at: String,
}

impl Strategy {
    /// Checks every field (the repository must exist), saying what is allowed.
    pub fn validate(&self, store: &Store) -> Result<()> {
        if let Some(f) = &self.full {
            Schedule::parse("full backup", f)?;
        }
        if let Some(d) = &self.drill {
            Schedule::parse("drill", d)?;
        }
        if let Some(i) = self.incr_secs {
            if !(INCR_SECS_RANGE.0..=INCR_SECS_RANGE.1).contains(&i) {
                return Err(Error::InvalidArgument(format!(
                    "incremental interval {} is out of range; use 1m to 31d",
                    humantime::format_duration(Duration::from_secs(i))
                )));
            }
            if self.full.is_none() {
                return Err(Error::InvalidArgument(
                    "incremental backups continue a full backup: give --full too".into(),
                ));
            }
        }
        if let Some(ms) = self.archive_interval_ms {
            if !(INTERVAL_MS_RANGE.0..=INTERVAL_MS_RANGE.1).contains(&ms) {
                return Err(Error::InvalidArgument(format!(
                    "archive interval {ms} ms is out of range; use {} ms to {} ms",
                    INTERVAL_MS_RANGE.0, INTERVAL_MS_RANGE.1
                )));
            }
        }
        if let Some(r) = self.retention_policy() {
            r.validate()?;
        }
        if self.full.is_none() && !self.archive && self.drill.is_none() {
            return Err(Error::InvalidArgument(
                "a strategy needs at least one of --full, --archive on or --drill".into(),
            ));
        }
        if self.drill.is_some() && self.full.is_none() {
            return Err(Error::InvalidArgument(
                "a drill restores from backups: give --full too".into(),
            ));
        }
        self.repo_url(store)?;
        Ok(())
    }

    /// Its retention, if it has one (without, it never prunes).
    pub fn retention_policy(&self) -> Option<Retention> {
        Some(self.retention).filter(|r| *r != Retention::default())
    }

    /// The URL of its repository: the named one, else the default named one.
    pub fn repo_url(&self, store: &Store) -> Result<String> {
        match &self.repo {
            Some(name) => repo(store, name)?.map(|r| r.url).ok_or_else(|| {
                let known: Vec<String> = repos(store)
                    .map(|v| v.into_iter().map(|r| r.name).collect())
                    .unwrap_or_default();
                Error::InvalidArgument(format!(
                    "no repository named `{name}`; {}",
                    if known.is_empty() {
                        "add one with `tenet repo add <name> <url>`".to_string()
                    } else {
                        format!("known: {}", known.join(", "))
                    }
                ))
            }),
            None => default_repo(store)?.map(|r| r.url).ok_or_else(|| {
                Error::InvalidArgument(
                    "the strategy names no repository and there is no default one; give \
                     --repo <name>, or add one with `tenet repo add <name> <url> --default`"
                        .into(),
                )
            }),
        }
    }
}

/// The key of the default strategy.
pub const DEFAULT_KEY: u64 = tenet_store::catalog::SYSTEM_TENANT;

fn strategy_key(tenant_id: u64) -> Vec<u8> {
    pk_bytes(&[KeyValue::Int(tenant_id as i64)])
}

/// The strategy stored under `tenant_id` ([`DEFAULT_KEY`]: the default).
pub fn strategy(store: &Store, tenant_id: u64) -> Result<Option<Strategy>> {
    store
        .system_get(STRATEGIES_TABLE, &strategy_key(tenant_id))?
        .map(|v| Ok(decode_system_row("strategy", &v)?))
        .transpose()
}

/// Every stored strategy by key.
pub fn strategies(store: &Store) -> Result<Vec<(u64, Strategy)>> {
    store
        .system_scan(STRATEGIES_TABLE)?
        .into_iter()
        .map(|(k, v)| {
            let id = match tenet_store::keys::decode_pk(&k) {
                Ok(vals) => match vals.first() {
                    Some(KeyValue::Int(i)) => *i as u64,
                    _ => return Err(Error::Internal("strategy key is not an id".into())),
                },
                Err(e) => return Err(e.into()),
            };
            Ok((id, decode_system_row("strategy", &v)?))
        })
        .collect()
}

/// Every stored strategy, read in one scan, to look up many tenants (the scheduler and
/// the overview ask for all of them).
#[derive(Clone, Debug, Default)]
pub struct Strategies {
    own: std::collections::HashMap<u64, Strategy>,
    default: Option<Strategy>,
}

impl Strategies {
    pub fn load(store: &Store) -> Result<Strategies> {
        let mut all = Strategies::default();
        for (id, s) in strategies(store)? {
            if id == DEFAULT_KEY {
                all.default = Some(s);
            } else {
                all.own.insert(id, s);
            }
        }
        Ok(all)
    }

    /// As [`effective`].
    pub fn of(&self, tenant_id: u64) -> Option<(&Strategy, bool)> {
        match self.own.get(&tenant_id) {
            Some(s) => Some((s, true)),
            None => self.default.as_ref().map(|s| (s, false)),
        }
    }
}

/// The strategy that applies to a tenant: its own, else the default; and whether it
/// is its own.
pub fn effective(store: &Store, tenant_id: u64) -> Result<Option<(Strategy, bool)>> {
    if let Some(s) = strategy(store, tenant_id)? {
        return Ok(Some((s, true)));
    }
    Ok(strategy(store, DEFAULT_KEY)?.map(|s| (s, false)))
}

pub fn save_strategy(store: &Store, tenant_id: u64, s: &Strategy) -> Result<()> {
    store.system_put(
        STRATEGIES_TABLE,
        &strategy_key(tenant_id),
        Some(&encode_system_row(s)),
    )?;
    Ok(())
}

pub fn remove_strategy(store: &Store, tenant_id: u64) -> Result<()> {
    store.system_put(STRATEGIES_TABLE, &strategy_key(tenant_id), None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_step() {
        let s = Schedule::parse("full", "0 2 * * *").unwrap();
        // 2026-11-25T00:00:00Z → 02:00 the same day, then the next day.
        let midnight = 1_795_564_800_000;
        let first = s.next_after(midnight).unwrap();
        assert_eq!(first - midnight, 2 * 3600 * 1000);
        assert_eq!(s.next_after(first).unwrap() - first, 24 * 3600 * 1000);
        assert!(Schedule::parse("drill", "daily").is_ok());
        for bad in ["", "* * *", "61 * * * *", "0 2 * * * *", "every day"] {
            let e = Schedule::parse("full", bad).unwrap_err().to_string();
            assert!(e.contains("5") || e.contains("field"), "{bad}: {e}");
        }
    }

    #[test]
    fn repo_names() {
        assert!(validate_repo_name("nightly-1").is_ok());
        for bad in ["", "1x", "Night", "a/b", "a b", &"x".repeat(64)] {
            assert!(validate_repo_name(bad).is_err(), "{bad}");
        }
    }
}
