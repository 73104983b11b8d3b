//! `tenet bench backup` end to end on a tiny tenant, with the default order of rounds.

use crate::common::{stdout, tenet};

/// Plain and encrypted rounds alternate (ABBA BAAB): a plain round after an encrypted
/// one must still run (an encrypted history refuses clear writes, so each kind has its
/// repository), and the cost of encryption is printed only where the order is
/// balanced.
#[test]
fn bench_backup_alternates_plain_and_encrypted_rounds() {
    let dir = tempfile::tempdir().unwrap();
    for (rounds, balanced) in [("8", true), ("2", false)] {
        let out = tenet(
            dir.path(),
            &[
                "bench", "backup", "--mib", "1", "--tables", "2", "--rounds", rounds,
            ],
        );
        let text = stdout(&out);
        assert!(out.status.success(), "--rounds {rounds}: {text}\n{out:?}");
        let encrypted = text
            .lines()
            .filter(|l| l.contains(" encrypted  backup"))
            .count();
        let plain = text
            .lines()
            .filter(|l| l.contains(" plain      backup"))
            .count();
        let n: usize = rounds.parse().unwrap();
        assert_eq!((plain, encrypted), (n / 2, n / 2), "{text}");
        for what in ["full backup", "restore"] {
            let line = text.lines().find(|l| l.starts_with(what)).unwrap();
            assert_eq!(line.contains("(medians): cost "), balanced, "{line}");
            assert_eq!(line.contains("does not balance"), !balanced, "{line}");
        }
    }
}
