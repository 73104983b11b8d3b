//! Counting the rows a blocking loop handles, reported to the job in batches.

use crate::manager::JobContext;
use crate::Result;

/// Rows per report (and per throttle and cancel check).
const BATCH_ROWS: u64 = 1024;

/// Counts rows and their bytes for a job: every [`BATCH_ROWS`] rows it adds them to
/// the job's progress, checks for cancellation and, if asked to, waits for the job's
/// throttle. Keeps the totals.
#[derive(Debug)]
pub struct RowCounter {
    ctx: JobContext,
    throttle: bool,
    pending: (u64, u64),
    pub rows: u64,
    pub bytes: u64,
}

impl RowCounter {
    /// A counter; with `throttle`, the bytes counted are also the bytes throttled.
    pub fn new(ctx: &JobContext, throttle: bool) -> Self {
        RowCounter {
            ctx: ctx.clone(),
            throttle,
            pending: (0, 0),
            rows: 0,
            bytes: 0,
        }
    }

    /// Counts one row of `bytes`; `Err(Cancelled)` once the job must stop.
    pub fn add(&mut self, bytes: u64) -> Result<()> {
        self.rows += 1;
        self.bytes += bytes;
        self.pending.0 += 1;
        self.pending.1 += bytes;
        if self.pending.0 >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Reports what is pending.
    pub fn flush(&mut self) -> Result<()> {
        let (rows, bytes) = std::mem::take(&mut self.pending);
        self.ctx.add_progress(rows, bytes);
        if self.throttle {
            self.ctx.throttle_blocking(bytes)
        } else {
            self.ctx.check_cancelled()
        }
    }
}
