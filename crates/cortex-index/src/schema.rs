//! Cortex `schema.yaml` (`-schema-config-file`): period configs, validation with
//! messages that name the bad entry, and periodic table naming.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DAY_MS;

/// The schema file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// YAML syntax or an unknown key (strict decoding, like Cortex).
    #[error("schema config: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// A value is invalid; the message names the config entry and key.
    #[error("schema config: configs[{index}].{key}: {reason}")]
    Invalid {
        /// Position in `configs`.
        index: usize,
        /// The offending key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    /// Period configs, strictly increasing `from`.
    pub configs: Vec<PeriodConfig>,
}

/// One period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodConfig {
    /// First day, `YYYY-MM-DD` (UTC).
    pub from: String,
    /// Index store type (`aws-dynamo`, `aws`, `bigtable`, …).
    pub store: String,
    /// Chunk store type; defaults to `store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<String>,
    /// `v9`, `v10`, `v11` (older versions parse but are not convertible).
    pub schema: String,
    /// Index tables.
    pub index: PeriodicTableConfig,
    /// Chunk tables (table stores only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<PeriodicTableConfig>,
    /// Row shards for v10+ (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_shards: Option<u32>,
}

/// Periodic table naming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodicTableConfig {
    /// Table name prefix.
    pub prefix: String,
    /// Period as a Prometheus duration (`168h`, `1w`, `0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// DynamoDB table tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

const VERSIONS: [&str; 9] = ["v1", "v2", "v3", "v4", "v5", "v6", "v9", "v10", "v11"];
const TABLE_STORES: [&str; 8] = [
    "aws-dynamo",
    "gcp",
    "gcp-columnkey",
    "bigtable",
    "bigtable-hashed",
    "cassandra",
    "grpc-store",
    "aws",
];

/// Parses `YYYY-MM-DD` into the UTC day index.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut it = text.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > mdays[(m - 1) as usize] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Formats a UTC day index as `YYYY-MM-DD`.
pub fn format_day(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses a Prometheus duration (`1w2d3h4m5s6ms`, or `0`) into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    let units = [
        ("y", 365 * DAY_MS),
        ("w", 7 * DAY_MS),
        ("d", DAY_MS),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = text;
    let mut total: i64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let pos = units.iter().position(|(u, _)| *u == unit)?;
        if last_unit.is_some_and(|l| pos <= l) {
            return None; // units must appear once, largest first
        }
        last_unit = Some(pos);
        total = total.checked_add(n.checked_mul(units[pos].1)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

impl PeriodicTableConfig {
    /// Period in ms (0 = one table).
    pub fn period_ms(&self) -> i64 {
        self.period
            .as_deref()
            .and_then(parse_duration_ms)
            .unwrap_or(0)
    }

    /// The table holding time `t_ms`: prefix + `floor(t_s / period_s)`.
    pub fn table_for(&self, t_ms: i64) -> String {
        let period_s = self.period_ms() / 1000;
        if period_s == 0 {
            return self.prefix.clone();
        }
        format!("{}{}", self.prefix, (t_ms / 1000).div_euclid(period_s))
    }
}

impl PeriodConfig {
    /// First day index of the period.
    pub fn from_day(&self) -> i64 {
        parse_day(&self.from).unwrap_or(i64::MIN)
    }

    /// Row shards with Cortex's default applied.
    pub fn effective_row_shards(&self) -> u32 {
        match (self.row_shards, self.schema.as_str()) {
            (Some(n), _) => n,
            (None, "v10" | "v11") => 16,
            _ => 0,
        }
    }

    /// The chunk store type (`object_store`, or `store` when absent).
    pub fn chunk_store(&self) -> &str {
        self.object_store.as_deref().unwrap_or(&self.store)
    }

    /// Whether the scanner can convert this period (v9–v11 on DynamoDB).
    pub fn is_convertible(&self) -> bool {
        matches!(self.schema.as_str(), "v9" | "v10" | "v11")
    }

    /// The index table of day `day`.
    pub fn index_table_for_day(&self, day: i64) -> String {
        self.index.table_for(day * DAY_MS)
    }
}

impl SchemaConfig {
    /// Reads and validates a schema file.
    pub fn load(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates YAML text.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let cfg: Self = serde_yaml_ng::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), SchemaError> {
        let bad = |index, key, reason: String| Err(SchemaError::Invalid { index, key, reason });
        let mut prev = None;
        for (i, p) in self.configs.iter().enumerate() {
            let Some(day) = parse_day(&p.from) else {
                return bad(i, "from", format!("{:?} is not a YYYY-MM-DD date", p.from));
            };
            if prev.is_some_and(|d| day <= d) {
                return bad(i, "from", "dates must be strictly increasing".into());
            }
            prev = Some(day);
            if !VERSIONS.contains(&p.schema.as_str()) {
                return bad(
                    i,
                    "schema",
                    format!(
                        "invalid schema version {:?} (Cortex has v1-v6, v9, v10, v11)",
                        p.schema
                    ),
                );
            }
            if matches!(p.schema.as_str(), "v10" | "v11") && p.effective_row_shards() == 0 {
                return bad(i, "row_shards", "must be > 0 for v10 and v11".into());
            }
            for (key, t) in [
                ("index.period", Some(&p.index)),
                ("chunks.period", p.chunks.as_ref()),
            ] {
                let Some(t) = t else { continue };
                let Some(ms) = t
                    .period
                    .as_deref()
                    .map(parse_duration_ms)
                    .unwrap_or(Some(0))
                else {
                    return bad(i, key, format!("{:?} is not a duration", t.period));
                };
                if ms % DAY_MS != 0 {
                    return bad(i, key, "must be a multiple of 24h".into());
                }
            }
            if TABLE_STORES.contains(&p.chunk_store()) && p.chunks.is_none() {
                return bad(
                    i,
                    "chunks.prefix",
                    format!("required for chunk store {:?}", p.chunk_store()),
                );
            }
        }
        Ok(())
    }

    /// The period config for day `day` (`from_i <= day < from_{i+1}`).
    pub fn config_for_day(&self, day: i64) -> Option<&PeriodConfig> {
        self.configs.iter().rev().find(|p| p.from_day() <= day)
    }

    /// YAML text of this config.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }
}

impl SchemaConfig {
    /// Every index row Cortex writes for one chunk: like its composite store, a chunk
    /// that crosses a period boundary is written once per period, clipped to it.
    pub fn chunk_entries(
        &self,
        user: &str,
        labels: &[(String, String)],
        chunk_id: &str,
        from: i64,
        through: i64,
    ) -> Vec<crate::entry::IndexEntry> {
        let mut out = Vec::new();
        for (i, p) in self.configs.iter().enumerate() {
            let start = p.from_day().saturating_mul(DAY_MS);
            let end = self
                .configs
                .get(i + 1)
                .map_or(i64::MAX, |n| n.from_day().saturating_mul(DAY_MS) - 1);
            let (f, t) = (from.max(start), through.min(end));
            if f <= t && p.is_convertible() {
                out.extend(crate::entry::chunk_entries(p, user, labels, chunk_id, f, t));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_durations_and_tables() {
        assert_eq!(parse_day("2020-11-18"), Some(18584));
        assert_eq!(format_day(18584), "2020-11-18");
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(parse_day("2020-02-30"), None);
        assert_eq!(parse_duration_ms("168h"), Some(7 * DAY_MS));
        assert_eq!(parse_duration_ms("1w"), Some(7 * DAY_MS));
        assert_eq!(parse_duration_ms("1h1w"), None);
        let t = PeriodicTableConfig {
            prefix: "index_".into(),
            period: Some("168h".into()),
            tags: None,
        };
        assert_eq!(t.table_for(18518 * DAY_MS), "index_2645");
    }

    #[test]
    fn corpus_schema_parses_and_bad_ones_name_the_key() {
        let text = "configs:\n- from: 2020-10-01\n  store: aws-dynamo\n  object_store: s3\n  schema: v9\n  index:\n    prefix: cortex_index_\n    period: 168h\n- from: \"2020-11-20\"\n  store: aws-dynamo\n  object_store: s3\n  schema: v11\n  index:\n    prefix: cortex_index_\n    period: 168h\n  row_shards: 32\n";
        let cfg = SchemaConfig::parse(text).expect("valid");
        assert_eq!(
            cfg.config_for_day(18585).map(|p| p.schema.as_str()),
            Some("v9")
        );
        assert_eq!(
            cfg.config_for_day(18586).map(|p| p.effective_row_shards()),
            Some(32)
        );
        assert_eq!(cfg.config_for_day(18000), None);
        let v12 = text.replace("v11", "v12");
        assert!(
            SchemaError::to_string(&SchemaConfig::parse(&v12).expect_err("v12"))
                .contains("configs[1].schema")
        );
        assert!(SchemaConfig::parse(&text.replace("row_shards", "row_shard")).is_err());
    }
}

#[cfg(test)]
mod yaml_text {
    use super::*;

    /// The scanner's checkpoint fingerprint hashes this text: it must not change
    /// when the YAML library does, or every interrupted scan would start over.
    #[test]
    fn the_yaml_text_of_a_schema_is_pinned() {
        let schema = SchemaConfig::parse(
            "configs:
- {from: 2019-01-07, store: bigtable-hashed, object_store: gcs, schema: v9, index: {prefix: 'idx:', period: 168h, tags: {team: 'a b', 'n': '1'}}, chunks: {prefix: chunks_, period: 0}}
- {from: '2020-11-20', store: aws-dynamo, object_store: s3, schema: v11, index: {prefix: cortex_index_, period: 1w}, row_shards: 32}
",
        )
        .expect("schema");
        let want = "configs:
- from: 2019-01-07
  store: bigtable-hashed
  object_store: gcs
  schema: v9
  index:
    prefix: 'idx:'
    period: 168h
    tags:
      n: '1'
      team: a b
  chunks:
    prefix: chunks_
    period: '0'
- from: 2020-11-20
  store: aws-dynamo
  object_store: s3
  schema: v11
  index:
    prefix: cortex_index_
    period: 1w
  row_shards: 32
";
        assert_eq!(schema.to_yaml(), want);
    }
}
