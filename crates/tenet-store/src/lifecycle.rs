//! The tenant state machine: which state allows which action, and which transitions
//! exist. Every rule about tenant states lives here; the store, the backup jobs and the
//! server ask [`check`] instead of matching states themselves.
//!
//! # States and transitions
//! ```text
//!   create ──► active ◄──────► read_only          (by hand: `tenant set --state`)
//!                 ▲
//!   restore ──► restoring ──► active | standby   (the restore job, when it ends)
//!                              standby ──► active (promote)
//!   any ──► dropping ──► (gone)                   (drop; finished at reopen after a crash)
//! ```
//!
//! # Actions
//! | action            | allowed in                     |
//! |-------------------|--------------------------------|
//! | read              | active, read_only, standby     |
//! | write             | active                         |
//! | write a snapshot  | active, read_only, standby     |
//! | revert (in place) | active                         |
//! | back up           | active, read_only, standby     |
//! | bulk ingest/replay| restoring                      |
//! | follow a source   | standby                        |
//! | set state by hand | active, read_only (to either)  |
//!
//! A refusal is an [`Error::TenantState`] that names the state, the action and the way
//! out ("make it writable with …", "write to its primary", "its restore job builds it").

use crate::error::{Error, Result};
use crate::tenant::{TenantRecord, TenantState};

/// What a caller wants to do with a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantAction {
    /// Read rows, the catalog or the log.
    Read,
    /// Commit row or catalog changes.
    Write,
    /// Create or drop a snapshot (a catalog write that changes no data).
    WriteSnapshot,
    /// Put the tenant back in place (revert, snapshot rollback, in-place restore).
    Revert,
    /// Take a full or incremental backup.
    Backup,
    /// Bulk-ingest versions or replay log records (restores only).
    Ingest,
    /// Apply the source's archived log (a standby following its source).
    Follow,
    /// Change the state by hand to the given one.
    SetState(TenantState),
}

impl TenantAction {
    fn describe(self) -> String {
        match self {
            TenantAction::Read => "reading".into(),
            TenantAction::Write | TenantAction::WriteSnapshot => "writing".into(),
            TenantAction::Revert => "putting it back in place".into(),
            TenantAction::Backup => "backing it up".into(),
            TenantAction::Ingest => "bulk ingestion".into(),
            TenantAction::Follow => "applying a source's log".into(),
            TenantAction::SetState(to) => format!("setting its state to {to} by hand"),
        }
    }
}

impl TenantState {
    /// Whether a tenant in this state allows `action`.
    pub fn allows(self, action: TenantAction) -> bool {
        use TenantState as S;
        match action {
            TenantAction::Read | TenantAction::WriteSnapshot | TenantAction::Backup => {
                matches!(self, S::Active | S::ReadOnly | S::Standby)
            }
            TenantAction::Write | TenantAction::Revert => self == S::Active,
            TenantAction::Ingest => self == S::Restoring,
            TenantAction::Follow => self == S::Standby,
            TenantAction::SetState(to) => {
                matches!(self, S::Active | S::ReadOnly) && matches!(to, S::Active | S::ReadOnly)
            }
        }
    }

    /// Whether a state can be set by hand (`tenet tenant set --state`).
    pub fn settable_by_hand(self) -> bool {
        matches!(self, TenantState::Active | TenantState::ReadOnly)
    }
}

/// Refuses `action` unless the tenant's state allows it, with an error that says how
/// to get to a state that does.
pub fn check(rec: &TenantRecord, action: TenantAction) -> Result<()> {
    if rec.state.allows(action) {
        return Ok(());
    }
    use TenantState as S;
    let hint = match (rec.state, action) {
        (S::ReadOnly, TenantAction::Write | TenantAction::Revert) => format!(
            "; make it writable with `tenet tenant set {} --state active`",
            rec.name
        ),
        (S::Restoring, TenantAction::Read) => {
            "; it becomes readable when its restore finishes".into()
        }
        (S::Restoring, _) => "; a restore job is building it (cancel the job to drop it)".into(),
        (S::Standby, TenantAction::Write | TenantAction::Revert) => format!(
            "; a standby takes no writes: write to its primary (`tenet standby status {}` \
             names it), or promote it if the primary is lost",
            rec.name
        ),
        (_, TenantAction::Ingest) => "; only a tenant being restored accepts it".into(),
        (_, TenantAction::Follow) => "; only a standby follows a source".into(),
        (_, TenantAction::SetState(to)) if !to.settable_by_hand() => {
            "; only active and read_only can be set by hand".into()
        }
        _ => String::new(),
    };
    Err(Error::TenantState {
        tenant: rec.name.clone(),
        state: rec.state.to_string(),
        action: action.describe(),
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::Ts;

    fn rec(state: TenantState) -> TenantRecord {
        TenantRecord {
            id: 7,
            name: "acme".into(),
            state,
            history_retention_secs: 60,
            created_ts: Ts::ZERO,
            history: None,
        }
    }

    #[test]
    fn table_of_rules() {
        use TenantAction as A;
        use TenantState as S;
        let all = [
            S::Active,
            S::ReadOnly,
            S::Restoring,
            S::Standby,
            S::Dropping,
        ];
        for s in all {
            assert_eq!(s.allows(A::Read), s.readable(), "{s}");
            assert_eq!(s.allows(A::Write), s == S::Active);
            assert_eq!(s.allows(A::Revert), s == S::Active);
            assert_eq!(s.allows(A::Ingest), s == S::Restoring);
            assert_eq!(s.allows(A::Follow), s == S::Standby);
            assert!(!s.allows(A::SetState(S::Standby)));
        }
        assert!(S::ReadOnly.allows(A::SetState(S::Active)));
        assert!(!S::Restoring.allows(A::SetState(S::Active)));
    }

    #[test]
    fn refusals_say_the_way_out() {
        let e = check(&rec(TenantState::ReadOnly), TenantAction::Revert).unwrap_err();
        assert!(e.to_string().contains("--state active"), "{e}");
        let e = check(&rec(TenantState::Standby), TenantAction::Write).unwrap_err();
        assert!(e.to_string().contains("promote"), "{e}");
        let e = check(&rec(TenantState::Restoring), TenantAction::Read).unwrap_err();
        assert!(e.to_string().contains("restore finishes"), "{e}");
        assert!(check(&rec(TenantState::Active), TenantAction::Revert).is_ok());
    }
}
