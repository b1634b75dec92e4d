//! Tenant IDs and UTC days as they name plans and blocks.
//!
//! A tenant ID becomes a path component of plan keys (`<tenant>/<day>.plan`) and of
//! blocks (`<tenant>/<ULID>/`), so it is held to Cortex's own rules
//! (`tenant.ValidTenantID`): at most 150 characters from `[a-zA-Z0-9!-_.*'()]`, and
//! not `.` or `..`. A day index must name a day a chunk can have been written on and
//! whose millisecond range fits an `i64`. [`TenantFilter`] is the tenant selection
//! the scanner, the scheduler and `verify` share; [`DayRange`] is `convert`'s day
//! selection, shared by its scan and its scheduler.

use crate::DAY_MS;

/// A tenant filter's ignore regex does not compile.
#[derive(Debug, thiserror::Error)]
#[error("--ignore-tenants-regex {regex:?}: {reason}")]
pub struct TenantFilterError {
    /// The regex given.
    pub regex: String,
    /// Why it does not compile.
    pub reason: String,
}

/// Tenant allow list and ignore regex (Cortex's `-scanner.allowed-users` /
/// `-scanner.ignore-users-regex`): rejection wins.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    allowed: Vec<String>,
    ignore: Option<regex::Regex>,
}

impl TenantFilter {
    /// `allowed` entries may be comma-separated lists; whitespace is trimmed; empty = all.
    pub fn new(allowed: &[String], ignore_regex: Option<&str>) -> Result<Self, TenantFilterError> {
        let mut list: Vec<String> = allowed
            .iter()
            .flat_map(|a| a.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        list.sort();
        list.dedup();
        let ignore = match ignore_regex.filter(|r| !r.is_empty()) {
            Some(r) => Some(regex::Regex::new(r).map_err(|e| TenantFilterError {
                regex: r.to_owned(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        Ok(Self {
            allowed: list,
            ignore,
        })
    }

    /// Whether the tenant's rows are kept.
    pub fn accepts(&self, tenant: &str) -> bool {
        if !self.allowed.is_empty()
            && self
                .allowed
                .binary_search_by(|a| a.as_str().cmp(tenant))
                .is_err()
        {
            return false;
        }
        !self.ignore.as_ref().is_some_and(|r| r.is_match(tenant))
    }

    /// A stable description for the checkpoint fingerprint.
    pub fn fingerprint(&self) -> String {
        format!(
            "allow={:?} ignore={:?}",
            self.allowed,
            self.ignore.as_ref().map(|r| r.as_str())
        )
    }
}

/// Longest tenant ID Cortex accepts.
pub const MAX_TENANT_ID_LENGTH: usize = 150;

/// Latest day index accepted: 9999-12-31.
pub const MAX_DAY_INDEX: i64 = 2_932_896;

/// Why a tenant ID is refused.
pub fn tenant_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("the tenant ID is empty".into());
    }
    if id.len() > MAX_TENANT_ID_LENGTH {
        return Some(format!(
            "the tenant ID is {} bytes long (Cortex allows {MAX_TENANT_ID_LENGTH})",
            id.len()
        ));
    }
    if id == "." || id == ".." {
        return Some(format!("{id:?} is not a valid tenant ID"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
    {
        return Some(format!(
            "the tenant ID {:?} contains {c:?} (Cortex allows letters, digits and !-_.*'())",
            id.chars().take(64).collect::<String>()
        ));
    }
    None
}

/// Why a day index is refused.
pub fn day_index_problem(day: i64) -> Option<String> {
    (!(1..=MAX_DAY_INDEX).contains(&day))
        .then(|| format!("day index {day} is not a UTC day between 1970-01-02 and 9999-12-31"))
}

/// `[start, end)` in ms of a valid day index.
pub fn day_range_ms(day: i64) -> Option<(i64, i64)> {
    day_index_problem(day)
        .is_none()
        .then(|| (day * DAY_MS, (day + 1) * DAY_MS))
}

/// UTC days `[start, end)` to convert (`--period-start`/`--period-end` of `convert`);
/// an open side takes every day on that side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayRange {
    /// First day (inclusive).
    pub start: Option<i64>,
    /// End day (exclusive).
    pub end: Option<i64>,
}

impl DayRange {
    /// Whether `day` is inside.
    pub fn contains(&self, day: i64) -> bool {
        self.start.is_none_or(|s| day >= s) && self.end.is_none_or(|e| day < e)
    }

    /// Every day.
    pub fn is_all(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    /// Whether a plan name `<tenant>/<day>` is inside (other names are not plans of a
    /// day and pass).
    pub fn contains_plan(&self, plan: &str) -> bool {
        if self.is_all() {
            return true;
        }
        match plan.rsplit_once('/').map(|(_, d)| d.parse::<i64>()) {
            Some(Ok(day)) => self.contains(day),
            _ => true,
        }
    }

    /// `2020-11-19..2020-11-21` (an open side is left empty); empty for every day, so
    /// records keyed on it are unchanged when no range is given.
    pub fn describe(&self) -> String {
        if self.is_all() {
            return String::new();
        }
        let side = |d: Option<i64>| d.map(crate::schema::format_day).unwrap_or_default();
        format!("{}..{}", side(self.start), side(self.end))
    }
}

/// `acme/18584` → `acme/2020-11-18 (18584)`: people read dates, plan names use day
/// indexes. Anything else is returned as it is.
pub fn with_date(plan: &str) -> String {
    match plan
        .rsplit_once('/')
        .and_then(|(t, d)| Some((t, d.parse::<i64>().ok()?)))
    {
        Some((tenant, day)) => {
            format!("{tenant}/{} ({day})", crate::schema::format_day(day))
        }
        None => plan.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_filter_rejection_wins() {
        let f = TenantFilter::new(&["a, b".into(), "c".into()], Some("^b$")).expect("ok");
        assert!(f.accepts("a") && f.accepts("c"));
        assert!(!f.accepts("b") && !f.accepts("d"));
        let f = TenantFilter::new(&[], Some("^team-")).expect("ok");
        assert!(f.accepts("acme") && !f.accepts("team-a"));
        assert!(TenantFilter::new(&[], Some("(")).is_err());
    }

    #[test]
    fn day_range_is_start_inclusive_end_exclusive() {
        let r = DayRange {
            start: Some(18585),
            end: Some(18586),
        };
        assert!(!r.contains(18584) && r.contains(18585) && !r.contains(18586));
        assert!(r.contains_plan("acme/18585") && !r.contains_plan("team-a.prod/18586"));
        assert!(r.contains_plan("not-a-plan"));
        assert_eq!(r.describe(), "2020-11-19..2020-11-20");
        let open = DayRange {
            start: None,
            end: Some(18585),
        };
        assert!(open.contains(1) && !open.contains(18585));
        assert_eq!(open.describe(), "..2020-11-19");
        assert!(DayRange::default().is_all() && DayRange::default().describe().is_empty());
    }

    #[test]
    fn cortex_tenant_rules() {
        for ok in ["acme", "42", "team-a_b.c", "x!*'()", &"a".repeat(150)] {
            assert_eq!(tenant_id_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "a b",
            "é",
            "a\n",
            &"a".repeat(151),
        ] {
            assert!(tenant_id_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn day_bounds() {
        assert!(day_index_problem(18584).is_none());
        assert!(day_index_problem(0).is_some());
        assert!(day_index_problem(-1).is_some());
        assert!(day_index_problem(1_000_000_000_000_000).is_some());
        assert_eq!(day_range_ms(1), Some((DAY_MS, 2 * DAY_MS)));
    }
}
