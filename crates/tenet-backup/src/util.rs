//! Small helpers shared by the job kinds.

use serde::de::DeserializeOwned;

use tenet_jobs::JobContext;
use tenet_store::{Store, Ts};

use crate::error::{Error, Result};

/// The job's parameters, decoded.
pub(crate) fn params<T: DeserializeOwned>(ctx: &JobContext) -> Result<T> {
    serde_json::from_value(ctx.params())
        .map_err(|e| Error::Internal(format!("job {} parameters do not decode: {e}", ctx.id())))
}

/// The store clock's time, RFC 3339.
pub(crate) fn now(store: &Store) -> String {
    Ts::from_millis(store.clock().now_millis()).to_rfc3339()
}

/// Runs blocking work (RocksDB scans, compression) off the async workers, on the job
/// runtime's blocking threads at a lower CPU priority.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(move || {
        tenet_jobs::lower_priority();
        f()
    })
    .await
    .map_err(|e| Error::Internal(format!("blocking task panicked: {e}")))?
}

/// [`Store::scan_at`] with a callback that can fail: `f(pk, commit_ts, row)` for each
/// row visible at `ts` in `[from, to)`, stopping at its first error (a cancel, a
/// throttle wait, an upload), which is returned as is.
pub(crate) fn scan_rows(
    store: &Store,
    (tenant_id, table_id, ts): (u64, u64, Ts),
    from: Option<&[u8]>,
    to: Option<&[u8]>,
    mut f: impl FnMut(&[u8], Ts, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut failure = None;
    store.scan_at(tenant_id, table_id, ts, from, to, |pk, vts, row| {
        match f(pk, vts, row) {
            Ok(()) => Ok(true),
            Err(e) => {
                failure = Some(e);
                Ok(false)
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

pub(crate) fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decodes hex written by [`to_hex`] (job checkpoints only; never user input).
pub(crate) fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

/// Declares a unit struct that runs a job kind with the async `run` and `cleanup`
/// functions of the module it is used in.
macro_rules! job_kind {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name;

        impl tenet_jobs::JobKind for $name {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn run(
                &self,
                ctx: tenet_jobs::JobContext,
            ) -> tenet_jobs::BoxFuture<'static, tenet_jobs::Result<serde_json::Value>> {
                Box::pin(async move { run(ctx).await.map_err(Into::into) })
            }

            fn cleanup(
                &self,
                ctx: tenet_jobs::JobContext,
            ) -> tenet_jobs::BoxFuture<'static, tenet_jobs::Result<()>> {
                Box::pin(async move { cleanup(ctx).await.map_err(Into::into) })
            }
        }
    };
}
pub(crate) use job_kind;
