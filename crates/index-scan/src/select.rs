//! Which tables to scan and which rows to keep, with Cortex's flag meanings.
//!
//! Tables: every source table that is the index table of a convertible period
//! (periods whose index store the source holds, schema v9–v11; other periods are reported and skipped),
//! narrowed by `--tables`, sorted newest first, filtered by `--period-start` (inclusive)
//! and `--period-end` (exclusive) on the table's time range, then cut to
//! `--tables-limit`. Unlike Cortex, a table is kept when its range *overlaps* a period
//! (Cortex required the table to start inside the period, losing the days before the
//! first table boundary of a period whose `from` is not aligned), and a `--tables`
//! name that matches nothing is an error rather than silently ignored.
//!
//! Rows: series→chunk rows whose day belongs to a convertible period of that table and
//! whose tenant passes the allow list and the ignore regex (rejection wins).

use std::collections::{BTreeMap, HashMap};

use cortex_index::DAY_MS;
use cortex_index::schema::SchemaConfig;
pub use cortex_index::tenant::{DayRange, TenantFilter};

/// Clap value parser for day flags (`--period-start 2020-11-19`, `--day …`): the
/// day index.
pub fn parse_day_arg(text: &str) -> Result<i64, String> {
    // A day index (as in plan names like acme/18585) is accepted too.
    if let Ok(day) = text.parse::<i64>()
        && cortex_index::tenant::day_index_problem(day).is_none()
    {
        return Ok(day);
    }
    cortex_index::schema::parse_day(text).ok_or_else(|| {
        format!("{text:?}: expected a day like 2020-11-19 (or a day index like 18585)")
    })
}

/// A table chosen for scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedTable {
    /// Table name.
    pub name: String,
    /// First day the table covers (inclusive).
    pub start_day: i64,
    /// End day (exclusive); `None` for a single static table.
    pub end_day: Option<i64>,
    /// Item count if the source knows it.
    pub approx_items: Option<u64>,
}

/// Table selection settings (Cortex's `-scanner.*` flags).
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    /// Only these tables (empty = all).
    pub tables: Vec<String>,
    /// First day of the scan period (inclusive).
    pub period_start: Option<i64>,
    /// End day of the scan period (exclusive).
    pub period_end: Option<i64>,
    /// Newest N tables only (0 = all).
    pub tables_limit: usize,
}

/// A period skipped because it cannot be converted, for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPeriod {
    /// The period's `from`.
    pub from: String,
    /// Why.
    pub reason: String,
}

/// Selection problems.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// `--tables` named a table that is not a convertible index table in the source.
    #[error(
        "table {0} given by --tables is not an index table of a convertible period found in the source"
    )]
    UnknownTable(String),
    /// Bad tenant filter.
    #[error(transparent)]
    Tenants(#[from] cortex_index::tenant::TenantFilterError),
    /// No table of the source belongs to a convertible period of the schema.
    #[error(
        "no index table in the source matches the schema: {periods}; the source has {tables} (check the schema's index prefix and period, or --index)"
    )]
    NoTables {
        /// The convertible periods and the table names they expect.
        periods: String,
        /// Some of the source's tables.
        tables: String,
    },
}

/// Picks the tables to scan from the source's table list.
pub fn select_tables(
    schema: &SchemaConfig,
    source_tables: &[(String, Option<u64>)],
    filter: &TableFilter,
    stores: &[&str],
    today: i64,
) -> Result<(Vec<SelectedTable>, Vec<SkippedPeriod>), SelectError> {
    let mut skipped = Vec::new();
    let mut found: BTreeMap<String, SelectedTable> = BTreeMap::new();
    // What each convertible period looks for, for the error when nothing matches.
    let mut expected: Vec<String> = Vec::new();
    for (i, p) in schema.configs.iter().enumerate() {
        if !p.is_convertible() {
            skipped.push(SkippedPeriod {
                from: p.from.clone(),
                reason: format!("schema {} (only v9, v10 and v11 are converted)", p.schema),
            });
            continue;
        }
        if !stores.contains(&p.store.as_str()) {
            skipped.push(SkippedPeriod {
                from: p.from.clone(),
                reason: format!(
                    "index store {} (this --index holds {} index tables)",
                    p.store,
                    stores.join("/")
                ),
            });
            continue;
        }
        let from = p.from_day();
        let until = schema
            .configs
            .get(i + 1)
            .map(|n| n.from_day())
            .unwrap_or(today + 1);
        let period_days = p.index.period_ms() / DAY_MS;
        let mut matched = 0;
        expected.push(if period_days == 0 {
            format!(
                "from {}: a table named exactly {:?} (period 0)",
                p.from, p.index.prefix
            )
        } else {
            format!(
                "from {}: tables {:?}<n> (period {}d)",
                p.from, p.index.prefix, period_days
            )
        });
        for (name, items) in source_tables {
            let Some(suffix) = name.strip_prefix(p.index.prefix.as_str()) else {
                continue;
            };
            let (start, end) = if period_days == 0 {
                if !suffix.is_empty() {
                    continue;
                }
                (from, None)
            } else {
                let Ok(n) = suffix.parse::<i64>() else {
                    continue;
                };
                if n.to_string() != suffix {
                    continue;
                }
                (n * period_days, Some((n + 1) * period_days))
            };
            // Overlap of [start, end) with [from, until).
            if start >= until || end.is_some_and(|e| e <= from) {
                continue;
            }
            matched += 1;
            found.entry(name.clone()).or_insert(SelectedTable {
                name: name.clone(),
                start_day: start,
                end_day: end,
                approx_items: *items,
            });
        }
        if matched == 0 {
            skipped.push(SkippedPeriod {
                from: p.from.clone(),
                reason: format!(
                    "no table of the source matches its index prefix {:?} with period {}d",
                    p.index.prefix, period_days
                ),
            });
        }
    }
    if found.is_empty() && !expected.is_empty() {
        let mut tables: Vec<&str> = source_tables
            .iter()
            .map(|(n, _)| n.as_str())
            .take(10)
            .collect();
        if source_tables.len() > tables.len() {
            tables.push("…");
        }
        return Err(SelectError::NoTables {
            periods: expected.join("; "),
            tables: if tables.is_empty() {
                "no tables".into()
            } else {
                tables.join(", ")
            },
        });
    }
    for t in &filter.tables {
        if !found.contains_key(t) {
            return Err(SelectError::UnknownTable(t.clone()));
        }
    }
    let mut tables: Vec<SelectedTable> = found
        .into_values()
        .filter(|t| filter.tables.is_empty() || filter.tables.contains(&t.name))
        .collect();
    tables.sort_by(|a, b| b.start_day.cmp(&a.start_day).then(b.name.cmp(&a.name)));
    tables.retain(|t| {
        let before = filter
            .period_start
            .is_some_and(|ps| t.end_day.is_some_and(|e| e <= ps));
        let after = filter.period_end.is_some_and(|pe| t.start_day >= pe);
        !before && !after
    });
    if filter.tables_limit > 0 {
        tables.truncate(filter.tables_limit);
    }
    Ok((tables, skipped))
}

/// Decides per day whether a table's rows for that day are convertible: the day must
/// be in the requested range, and its period must be v9–v11 in a store of the source
/// and name this table as the day's index table.
#[derive(Debug)]
pub struct DayFilter<'a> {
    schema: &'a SchemaConfig,
    table: String,
    stores: &'a [&'a str],
    range: DayRange,
    cache: HashMap<i64, bool>,
}

impl<'a> DayFilter<'a> {
    /// For one table of a source holding the index tables of `stores`.
    pub fn new(
        schema: &'a SchemaConfig,
        table: &str,
        stores: &'a [&'a str],
        range: DayRange,
    ) -> Self {
        Self {
            schema,
            table: table.to_owned(),
            stores,
            range,
            cache: HashMap::new(),
        }
    }

    /// True when rows of `day` in this table are to be converted.
    pub fn accepts(&mut self, day: i64) -> bool {
        let range = self.range;
        *self.cache.entry(day).or_insert_with(|| {
            range.contains(day)
                && self.schema.config_for_day(day).is_some_and(|p| {
                    p.is_convertible()
                        && self.stores.contains(&p.store.as_str())
                        && p.index_table_for_day(day) == self.table
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> SchemaConfig {
        SchemaConfig::parse(
            "configs:
- {from: 2020-10-01, store: aws-dynamo, object_store: s3, schema: v6, index: {prefix: old_, period: 168h}}
- {from: 2020-10-15, store: aws-dynamo, object_store: s3, schema: v9, index: {prefix: idx_, period: 168h}}
- {from: 2020-11-19, store: aws-dynamo, object_store: s3, schema: v11, index: {prefix: idx_, period: 168h}}
",
        )
        .expect("schema")
    }

    fn names(t: &[SelectedTable]) -> Vec<&str> {
        t.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn tables_follow_the_schema_and_the_filters() {
        let s = schema();
        // 2020-10-15 is day 18550 (in week 2650: days 18550..18557); 2020-11-19 = 18585 (week 2655).
        let src: Vec<(String, Option<u64>)> = [
            "idx_2649", "idx_2650", "idx_2654", "idx_2655", "idx_2656", "old_2649", "other",
            "idx_x",
        ]
        .iter()
        .map(|n| (n.to_string(), None))
        .collect();
        let today = 18590;
        let (all, skipped) = select_tables(
            &s,
            &src,
            &TableFilter::default(),
            index_source::DYNAMO_STORES,
            today,
        )
        .expect("ok");
        assert_eq!(names(&all), ["idx_2655", "idx_2654", "idx_2650"]);
        assert_eq!(skipped.len(), 1);
        let f = TableFilter {
            tables_limit: 2,
            ..Default::default()
        };
        assert_eq!(
            names(
                &select_tables(&s, &src, &f, index_source::DYNAMO_STORES, today)
                    .expect("ok")
                    .0
            ),
            ["idx_2655", "idx_2654"]
        );
        // period start inclusive, end exclusive, on the table's [start, end) range.
        let f = TableFilter {
            period_start: Some(18557),
            period_end: Some(18585),
            ..Default::default()
        };
        assert_eq!(
            names(
                &select_tables(&s, &src, &f, index_source::DYNAMO_STORES, today)
                    .expect("ok")
                    .0
            ),
            ["idx_2654"]
        );
        let f = TableFilter {
            tables: vec!["idx_2650".into()],
            ..Default::default()
        };
        assert_eq!(
            names(
                &select_tables(&s, &src, &f, index_source::DYNAMO_STORES, today)
                    .expect("ok")
                    .0
            ),
            ["idx_2650"]
        );
        let f = TableFilter {
            tables: vec!["idx_2649".into()],
            ..Default::default()
        };
        assert!(matches!(
            select_tables(&s, &src, &f, index_source::DYNAMO_STORES, today),
            Err(SelectError::UnknownTable(_))
        ));
    }

    #[test]
    fn days_of_unconvertible_periods_are_rejected() {
        let s = schema();
        let mut f = DayFilter::new(
            &s,
            "idx_2650",
            index_source::DYNAMO_STORES,
            DayRange::default(),
        );
        assert!(f.accepts(18550));
        assert!(!f.accepts(18549)); // v6 period, and another table's day
        let mut f = DayFilter::new(
            &s,
            "idx_2655",
            index_source::DYNAMO_STORES,
            DayRange::default(),
        );
        assert!(f.accepts(18586));
        assert!(!f.accepts(18550));
        // A requested range narrows a table to its days.
        let mut f = DayFilter::new(
            &s,
            "idx_2655",
            index_source::DYNAMO_STORES,
            DayRange {
                start: Some(18586),
                end: Some(18587),
            },
        );
        assert!(f.accepts(18586));
        assert!(!f.accepts(18585) && !f.accepts(18587));
    }
}
