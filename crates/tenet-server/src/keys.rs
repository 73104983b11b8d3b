//! Data keys as API operations: list, rotate, and crypto-shredding a tenant (drop it,
//! then destroy its keys in every repository it used; see `tenet_backup::keys`).

use tenet_backup::keys;

use crate::admin::Admin;
use crate::api::*;
use crate::error::{ApiError, ApiResult};
use crate::service::Service;

impl Service {
    /// A tenant's data keys in its repository (or `repo`).
    pub(crate) fn tenant_keys(&self, tenant: &str, repo: Option<&String>) -> ApiResult<TenantKeys> {
        let repo = self.repo_arg(&repo.cloned())?;
        let subject = self.subject(tenant, repo.as_deref())?;
        let (url, list) = self
            .runtime
            .block_on(self.backups.keys(&subject, repo.as_deref()))?;
        let master = keys::master(&self.store);
        Ok(TenantKeys {
            tenant: subject.name,
            history_id: subject.id,
            repo: url,
            encryption: master.is_some(),
            master_key_id: master.map(|m| m.id()),
            keys: list
                .into_iter()
                .map(|k| DataKeyInfo {
                    key_id: k.key_id,
                    created_at: k.created_at,
                    destroyed_at: k.destroyed_at,
                    current: k.current,
                })
                .collect(),
        })
    }

    pub(crate) fn rotate_key_impl(
        &self,
        tenant: &str,
        repo: Option<&String>,
    ) -> ApiResult<TenantKeys> {
        let id = self.live_tenant(tenant)?;
        let url = self.repo_arg(&repo.cloned())?;
        let rec = self.store.resolve(id)?;
        let subject = tenet_backup::Subject::of(&rec);
        let key = self
            .runtime
            .block_on(self.backups.rotate_key(&subject, url.as_deref()))?;
        self.audit(
            "key_rotate",
            Some((&rec.name, rec.id)),
            serde_json::json!({ "key_id": key }),
        )?;
        self.tenant_keys(tenant, repo)
    }

    pub(crate) fn shred_impl(&self, tenant: &str) -> ApiResult<ShredResponse> {
        // A live tenant is dropped first; a dropped one (a shred run again to finish)
        // only has its keys destroyed.
        let live = match self.live_tenant(tenant) {
            Ok(id) => Some(self.store.resolve(id)?),
            Err(_) => None,
        };
        let subject = match &live {
            Some(rec) => tenet_backup::Subject::of(rec),
            None => self.subject(tenant, None)?,
        };
        if let Some(rec) = &live {
            let h = rec.history_ref();
            let other = self
                .store
                .tenants()
                .into_iter()
                .find(|t| t.id != rec.id && t.history_ref() == h);
            if let Some(other) = other {
                return Err(ApiError::invalid(format!(
                    "`{tenant}` shares its history (#{}) with `{}` (a standby of it, or its \
                     source): they have the same keys, and shredding one would make the \
                     other's backups unreadable; drop the standby first (`tenet tenant drop \
                     …`), then shred the tenant that remains",
                    h.id, other.name
                )));
            }
        }
        let repos = self.backups.repos_of(&subject)?;
        // Only keys make a shred mean anything: refuse while nothing is sealed.
        let mut live_keys = 0;
        for url in &repos {
            let listed = tenet_backup::Repo::open(url).and_then(|r| {
                self.runtime
                    .block_on(async { keys::list(&r, subject.id).await })
            });
            match listed {
                Ok(l) => live_keys += l.iter().filter(|k| k.destroyed_at.is_none()).count(),
                Err(e) => tracing::warn!(repo = %url, error = %e, "cannot list data keys"),
            }
        }
        if live_keys == 0 && live.is_some() {
            return Err(ApiError::invalid(format!(
                "tenant `{tenant}` has no data keys: its backups and archived log are not \
                 encrypted (this server has no master key, or had none when they were \
                 written), so destroying keys would leave them readable; drop it with \
                 `tenet tenant drop {tenant}` and delete its backups with `tenet backups delete`"
            )));
        }
        // What stays readable: backups with files written before encryption was on.
        let mut still_readable = Vec::new();
        for r in self.backups.list(Some(subject.id))? {
            let shown = self
                .runtime
                .block_on(self.backups.show(&r.id, Some(&r.repo)));
            if let Ok((_, m)) = shown {
                let plain = m
                    .tables
                    .iter()
                    .flat_map(|t| &t.files)
                    .any(|f| f.key_id.is_none())
                    || m.segments.iter().any(|s| s.key_id.is_none());
                if plain {
                    still_readable.push(r.id);
                }
            }
        }
        let commit = live
            .as_ref()
            .map(|_| self.drop_tenant(tenant))
            .transpose()?;
        let by = self.caller.describe();
        let done = self
            .runtime
            .block_on(self.backups.destroy_keys(&subject, &repos, &by))?;
        let destroyed_at = crate::auth::rfc3339(self.store.clock().now_millis());
        self.audit(
            "shred",
            Some((&subject.name, subject.tenant_id.unwrap_or(subject.id))),
            serde_json::json!({
                "history_id": subject.id,
                "keys_destroyed": done.keys,
                "repos": repos,
                "still_readable": still_readable,
                "incomplete": done.incomplete,
            }),
        )?;
        tracing::warn!(tenant = %subject.name, history = subject.id, by = %by,
            keys = ?done.keys, incomplete = ?done.incomplete,
            "tenant shredded: its data keys are destroyed");
        Ok(ShredResponse {
            tenant: subject.name,
            tenant_id: live.map(|r| r.id),
            history_id: subject.id,
            commit,
            keys_destroyed: done.keys,
            repos,
            destroyed_at,
            still_readable,
            incomplete: done.incomplete,
        })
    }
}
