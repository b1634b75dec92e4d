//! Shared helpers for the integration tests: where the Cortex corpus lives and how
//! its ground truth (`expected/<tenant>/<day>.jsonl`) reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Milliseconds per UTC day.
pub const DAY_MS: i64 = 86_400_000;
/// Bit pattern of the Prometheus stale marker.
pub const STALE_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Bit pattern the corpus uses for every other NaN.
pub const CORPUS_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// The corpus directory: `$BLOCKSCONVERT_CORPUS` or `../shared/fixtures/cortex-corpus`
/// beside the checkout. Panics (failing the test loudly) when it is missing.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("BLOCKSCONVERT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/cortex-corpus")
        });
    assert!(
        dir.join("README.md").is_file(),
        "Cortex corpus not found at {} (set BLOCKSCONVERT_CORPUS)",
        dir.display()
    );
    dir
}

/// The corpus tenants.
pub const TENANTS: [&str; 3] = ["acme", "team-a.prod", "42"];
/// The corpus day indexes.
pub const DAYS: [i64; 3] = [18584, 18585, 18586];

/// Sorted label pairs of one series.
pub type Labels = Vec<(String, String)>;

/// One series of the ground truth: labels and `(ts, value bits)` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedSeries {
    /// Labels in TSDB order.
    pub labels: Labels,
    /// Samples ascending by time, values as raw bits.
    pub samples: Vec<(i64, u64)>,
}

#[derive(serde::Deserialize)]
struct Line {
    labels: BTreeMap<String, String>,
    samples: Vec<(i64, String)>,
}

/// Parses a value as written in `expected/` (`"stale"`, `"NaN"`, Go `%g`).
pub fn parse_value(text: &str) -> u64 {
    match text {
        "stale" => STALE_BITS,
        "NaN" => CORPUS_NAN_BITS,
        "+Inf" => f64::INFINITY.to_bits(),
        "-Inf" => f64::NEG_INFINITY.to_bits(),
        other => other
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("bad value {other:?}: {e}"))
            .to_bits(),
    }
}

/// Reads `expected/<tenant>/<day>.jsonl`.
pub fn expected(tenant: &str, day: i64) -> Vec<ExpectedSeries> {
    let path = corpus_dir()
        .join("expected")
        .join(tenant)
        .join(format!("{day}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let line: Line =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ExpectedSeries {
                labels: line.labels.into_iter().collect(),
                samples: line
                    .samples
                    .iter()
                    .map(|(t, v)| (*t, parse_value(v)))
                    .collect(),
            }
        })
        .collect()
}

/// Writes the block that `expected/<tenant>/<day>.jsonl` describes into `out`
/// (with `ulid` as its ID) and returns its directory.
pub fn write_expected_block(tenant: &str, day: i64, ulid: &str, out: &Path) -> PathBuf {
    let series = expected(tenant, day);
    let mut symbols: Vec<String> = series
        .iter()
        .flat_map(|s| s.labels.iter().flat_map(|(n, v)| [n.clone(), v.clone()]))
        .collect();
    symbols.sort();
    symbols.dedup();
    let mut w = tsdb_block::BlockWriter::create(
        out,
        ulid,
        tenant,
        day * DAY_MS,
        (day + 1) * DAY_MS,
        symbols,
    )
    .expect("create block");
    for s in &series {
        let ts: Vec<i64> = s.samples.iter().map(|x| x.0).collect();
        let vs: Vec<f64> = s.samples.iter().map(|x| f64::from_bits(x.1)).collect();
        w.add_series(&s.labels, &ts, &vs).expect("add series");
    }
    w.finish().expect("finish block").0
}

/// The directory of the block Cortex's own builder wrote for `(tenant, day)`.
pub fn cortex_block(tenant: &str, day: i64) -> PathBuf {
    let dir = corpus_dir().join("cortex-output/blocks").join(tenant);
    for entry in std::fs::read_dir(&dir).expect("cortex blocks dir") {
        let path = entry.expect("entry").path();
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("meta.json")).expect("meta"))
                .expect("json");
        if meta["minTime"].as_i64() == Some(day * DAY_MS) {
            return path;
        }
    }
    panic!("no Cortex block for {tenant}/{day}");
}

/// Renders a value the way `promtool tsdb dump` does (Go `%g`): the stale marker
/// and every other NaN print as `NaN`.
pub fn promtool_value(bits: u64) -> String {
    let v = f64::from_bits(bits);
    if v.is_nan() {
        "NaN".into()
    } else {
        cortex_chunk::value_text::go_format_g(v)
    }
}
