//! Named crash points for crash tests (CONVENTIONS §8): in debug builds, a process
//! whose `TENET_FAILPOINT` names a point aborts there, as if killed at that exact
//! moment. Release builds compile every point to nothing.
//!
//! Points: `in-place-after-marker`, `in-place-after-log`, `in-place-after-data` (the
//! large path of an in-place commit, `revert.rs`); `switchover-after-fence`,
//! `switchover-after-flush`, `switchover-after-catch-up`, `switchover-after-demote`,
//! `switchover-after-promote` (the switchover job, `tenet-server`'s `switchover.rs`).

/// Aborts the process if `TENET_FAILPOINT` is `name` (debug builds only).
#[cfg(debug_assertions)]
pub fn hit(name: &str) {
    if std::env::var("TENET_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Release builds carry no failpoints.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_name: &str) {}
