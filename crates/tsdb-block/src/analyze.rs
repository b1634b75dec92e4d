//! Label and cardinality analysis of a block's index, with the figures `promtool tsdb
//! analyze` prints: label pairs and names by series count, by distinct values, by
//! cumulative value length, metric names by series, and "churn" — how much of the
//! block's time range each label's series leave uncovered, in block lengths.
//!
//! Only the index is read (no chunk data): a remote block costs one GET of its index.

use std::collections::BTreeMap;

use crate::error::BlockError;
use crate::index::IndexReader;

/// One ranked line: a figure and what it belongs to (`name=value` or `name`).
pub type Ranked = Vec<(u64, String)>;

/// The analysis of one block's index; every list is sorted by figure (largest first),
/// then by key, and holds every entry (cut it for display).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Series in the index.
    pub series: u64,
    /// Distinct label names.
    pub label_names: u64,
    /// Distinct `name=value` pairs.
    pub unique_pairs: u64,
    /// Label pairs over all series.
    pub pair_entries: u64,
    /// Per pair: the block ranges its series leave uncovered, summed.
    pub churning_pairs: Ranked,
    /// Per label name: the same, summed over its series.
    pub churning_names: Ranked,
    /// Per pair: series carrying it.
    pub common_pairs: Ranked,
    /// Per label name: total length of its distinct values.
    pub value_lengths: Ranked,
    /// Per label name: distinct values.
    pub cardinality: Ranked,
    /// Per metric name (`__name__` value): series.
    pub metric_names: Ranked,
}

fn ranked(map: BTreeMap<String, u64>) -> Ranked {
    let mut v: Ranked = map.into_iter().map(|(k, n)| (n, k)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    v
}

/// Analyses the index of a block covering `[min_time, max_time)`.
pub fn analyze(index: &IndexReader, min_time: i64, max_time: i64) -> Result<Analysis, BlockError> {
    let span = max_time.saturating_sub(min_time).max(1) as u64;
    let mut uncovered_by_name: BTreeMap<String, u64> = BTreeMap::new();
    let mut uncovered_by_pair: BTreeMap<String, u64> = BTreeMap::new();
    let mut pair_count: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Analysis::default();
    for id in index.all_series_ids()? {
        let s = index.series(id)?;
        out.series += 1;
        let covered = match (s.chunks.first(), s.chunks.last()) {
            (Some(first), Some(last)) => last.max_time.saturating_sub(first.min_time).max(0) as u64,
            _ => 0,
        };
        // As promtool: the block's length less the series' first-to-last span.
        let uncovered = span.saturating_sub(covered);
        for (name, value) in &s.labels {
            let pair = format!("{name}={value}");
            *uncovered_by_name.entry(name.clone()).or_default() += uncovered;
            *uncovered_by_pair.entry(pair.clone()).or_default() += uncovered;
            *pair_count.entry(pair).or_default() += 1;
            out.pair_entries += 1;
        }
    }
    out.unique_pairs = pair_count.len() as u64;
    // Churn in block lengths, truncated as promtool does.
    let in_spans = |m: BTreeMap<String, u64>| {
        ranked(
            m.into_iter()
                .map(|(k, v)| (k, (v as f64 / span as f64) as u64))
                .collect(),
        )
    };
    out.churning_pairs = in_spans(uncovered_by_pair);
    out.churning_names = in_spans(uncovered_by_name);
    out.common_pairs = ranked(pair_count);

    // Distinct values per name from the postings table (one entry per name=value).
    let mut lengths: BTreeMap<String, u64> = BTreeMap::new();
    let mut values: BTreeMap<String, u64> = BTreeMap::new();
    let mut metrics: BTreeMap<String, u64> = BTreeMap::new();
    for (name, value, offset) in index.postings_table() {
        if name.is_empty() && value.is_empty() {
            continue;
        }
        *lengths.entry(name.clone()).or_default() += value.len() as u64;
        *values.entry(name.clone()).or_default() += 1;
        if name == "__name__" {
            metrics.insert(value.clone(), index.postings_at(*offset)?.len() as u64);
        }
    }
    out.label_names = values.len() as u64;
    out.value_lengths = ranked(lengths);
    out.cardinality = ranked(values);
    out.metric_names = ranked(metrics);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::BlockWriter;

    #[test]
    fn counts_follow_the_series() {
        let dir = tempfile::tempdir().expect("tmp");
        let series: [(&str, &str, &[i64]); 3] = [
            ("up", "a", &[0, 1000, 9999]),
            ("up", "bb", &[5000]),
            ("x", "a", &[0, 9999]),
        ];
        let mut w = BlockWriter::create(dir.path(), "B", "t", 0, 10_000).expect("create");
        for (name, job, ts) in series {
            let labels = vec![
                ("__name__".to_owned(), name.to_owned()),
                ("job".to_owned(), job.to_owned()),
            ];
            w.add_series(&labels, ts, &vec![1.0; ts.len()])
                .expect("series");
        }
        let block = w.finish().expect("finish").dir;
        let index = IndexReader::from_bytes(std::fs::read(block.join("index")).expect("index"))
            .expect("reader");
        let a = analyze(&index, 0, 10_000).expect("analyze");
        assert_eq!(
            (a.series, a.label_names, a.unique_pairs, a.pair_entries),
            (3, 2, 4, 6)
        );
        assert_eq!(
            a.common_pairs,
            [
                (2, "__name__=up".to_owned()),
                (2, "job=a".to_owned()),
                (1, "__name__=x".to_owned()),
                (1, "job=bb".to_owned()),
            ]
        );
        assert_eq!(
            a.cardinality,
            [(2, "__name__".to_owned()), (2, "job".to_owned())]
        );
        assert_eq!(
            a.value_lengths,
            [(3, "__name__".to_owned()), (3, "job".to_owned())]
        );
        assert_eq!(a.metric_names, [(2, "up".to_owned()), (1, "x".to_owned())]);
        // The one-sample series leaves the whole block uncovered: one block length.
        // The two series of job=a cover the block; `up` loses all of it once.
        assert_eq!(a.churning_pairs[0], (1, "__name__=up".to_owned()));
        assert_eq!(a.churning_pairs[2], (0, "__name__=x".to_owned()));
    }
}
