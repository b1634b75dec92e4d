//! Names of the objects next to a plan: Cortex's markers (spec §3, recognised exactly
//! as a Cortex scheduler does) and ours, whose names match none of Cortex's patterns so
//! an unmodified Cortex scheduler or worker ignores them.

use std::sync::LazyLock;

use regex::Regex;

static PROGRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+)\.(starting|progress|inprogress)\.(\d+)$").expect("static regex")
});
static FINISHED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.+)\.finished\.([a-zA-Z0-9]+)$").expect("static regex"));
static OURS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+)\.(attempt|failed|retried|block)\.([a-zA-Z0-9]+)$").expect("static regex")
});

/// Plan suffixes in Cortex's matching order.
pub const PLAN_SUFFIXES: [&str; 3] = [".plan.gz", ".plan.snappy", ".plan"];

/// What an object name next to plans means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// `<base>.plan[.gz|.snappy]`.
    Plan {
        /// Marker base.
        base: String,
    },
    /// `<base>.starting|progress|inprogress.<ts>` (the worker or scheduler holding it).
    Progress {
        /// Marker base.
        base: String,
        /// Unix seconds in the name (writer's clock; we judge by LastModified).
        ts: i64,
    },
    /// `<base>.finished.<id>`.
    Finished {
        /// Marker base.
        base: String,
        /// Block ULID, or `cleaned`.
        id: String,
    },
    /// `<base>.error`: quarantined.
    Error {
        /// Marker base.
        base: String,
    },
    /// `<base>.attempt.<n>` (ours): attempt `n` was leased; created if absent, so two
    /// schedulers can never lease the same attempt.
    Attempt {
        /// Marker base.
        base: String,
        /// Attempt number (1-based).
        n: u32,
    },
    /// `<base>.failed.<n>` (ours): attempt `n` failed; content is a [`FailureRecord`](crate::FailureRecord).
    Failed {
        /// Marker base.
        base: String,
        /// Attempt number.
        n: u32,
    },
    /// `<base>.retried.<n>` (ours): an operator retried the plan after attempt `n`;
    /// failures up to `n` no longer count.
    Retried {
        /// Marker base.
        base: String,
        /// Last attempt before the retry.
        n: u32,
    },
    /// Anything else (`.block.<ulid>`, `.report.json`, foreign files).
    Other,
}

impl Marker {
    /// Classifies a key (relative to the plans location) in Cortex's order: plan →
    /// progress → finished → error, then our own names.
    pub fn classify(name: &str) -> Self {
        for suffix in PLAN_SUFFIXES {
            if let Some(base) = name.strip_suffix(suffix) {
                return Self::Plan { base: base.into() };
            }
        }
        if let Some(c) = PROGRESS.captures(name) {
            // Cortex parses the number as i64: a sign or an overflow is not a progress file.
            return match c[3].parse::<i64>() {
                Ok(ts) => Self::Progress {
                    base: c[1].into(),
                    ts,
                },
                Err(_) => Self::Other,
            };
        }
        if let Some(c) = FINISHED.captures(name) {
            return Self::Finished {
                base: c[1].into(),
                id: c[2].into(),
            };
        }
        if let Some(base) = name.strip_suffix(".error") {
            return Self::Error { base: base.into() };
        }
        if let Some(c) = OURS.captures(name) {
            let n = c[3].parse::<u32>();
            return match (&c[2], n) {
                ("attempt", Ok(n)) => Self::Attempt {
                    base: c[1].into(),
                    n,
                },
                ("failed", Ok(n)) => Self::Failed {
                    base: c[1].into(),
                    n,
                },
                ("retried", Ok(n)) => Self::Retried {
                    base: c[1].into(),
                    n,
                },
                _ => Self::Other,
            };
        }
        Self::Other
    }
}

/// `<base>.starting.<ts>` (written when a plan is leased; Cortex's progress file).
pub fn starting(base: &str, ts: i64) -> String {
    format!("{base}.starting.{ts}")
}

/// `<base>.inprogress.<ts>` (refreshed while the lease is alive).
pub fn inprogress(base: &str, ts: i64) -> String {
    format!("{base}.inprogress.{ts}")
}

/// `<base>.finished.<id>`.
pub fn finished(base: &str, id: &str) -> String {
    format!("{base}.finished.{id}")
}

/// `<base>.error`.
pub fn error(base: &str) -> String {
    format!("{base}.error")
}

/// Field of the attempt marker's JSON body holding the SHA-256 of the lease token.
pub const LEASE_PROOF_FIELD: &str = "lease_sha256";

/// `<base>.attempt.<n>`.
pub fn attempt(base: &str, n: u32) -> String {
    format!("{base}.attempt.{n}")
}

/// `<base>.failed.<n>`.
pub fn failed(base: &str, n: u32) -> String {
    format!("{base}.failed.{n}")
}

/// `<base>.retried.<n>`.
pub fn retried(base: &str, n: u32) -> String {
    format!("{base}.retried.{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(base: &str, ts: i64) -> Marker {
        Marker::Progress {
            base: base.into(),
            ts,
        }
    }

    // The name classification table of the plan-protocol spec §10.
    #[test]
    fn classifies_like_cortex() {
        assert_eq!(Marker::classify("a/1.progress.123"), progress("a/1", 123));
        assert_eq!(Marker::classify("a/1.inprogress.-5"), Marker::Other);
        assert_eq!(Marker::classify("a/1.starting."), Marker::Other);
        assert_eq!(
            Marker::classify("a.b.finished.01ABC"),
            Marker::Finished {
                base: "a.b".into(),
                id: "01ABC".into()
            }
        );
        assert_eq!(Marker::classify("a.finished.x-y"), Marker::Other);
        assert_eq!(
            Marker::classify(".error"),
            Marker::Error { base: "".into() }
        );
        assert_eq!(
            Marker::classify("5.plan.gz.plan"),
            Marker::Plan {
                base: "5.plan.gz".into()
            }
        );
        assert_eq!(
            Marker::classify("hello/world.progress.123456123456123456123456123456123456"),
            Marker::Other
        );
        assert_eq!(
            Marker::classify("migration/user1/18518.starting.1600000000"),
            progress("migration/user1/18518", 1600000000)
        );
    }

    #[test]
    fn our_markers_are_invisible_to_cortex_patterns() {
        for name in [
            attempt("u/1", 3),
            failed("u/1", 3),
            retried("u/1", 2),
            "u/1.block.01ABC".to_owned(),
            "u/1.report.json".to_owned(),
        ] {
            assert!(
                !PROGRESS.is_match(&name) && !FINISHED.is_match(&name),
                "{name}"
            );
            assert!(
                !name.ends_with(".error") && !name.contains(".plan"),
                "{name}"
            );
        }
        assert_eq!(
            Marker::classify(&attempt("u/1", 3)),
            Marker::Attempt {
                base: "u/1".into(),
                n: 3
            }
        );
        assert_eq!(
            Marker::classify(&failed("u/1", 2)),
            Marker::Failed {
                base: "u/1".into(),
                n: 2
            }
        );
        assert_eq!(Marker::classify("u/1.block.01ABC"), Marker::Other);
        assert_eq!(Marker::classify("u/1.attempt.x"), Marker::Other);
    }
}
