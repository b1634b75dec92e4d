//! The merge core: decoded replica chunks of one series → one strictly ascending,
//! deduplicated sample stream clipped to the plan's day.
//!
//! Input chunks are *runs* over shared columnar buffers (`ts`, `vs`), so decoding
//! appends into two flat vectors and nothing here allocates per sample.
//!
//! **Which sample wins on equal timestamps** (deterministic, unlike Cortex): the one
//! from the chunk with the smallest *rank*, where chunks are ranked by metadata
//! `(from, through, chunk ID)`. Equal timestamps whose values differ (compared by bit
//! pattern, so a stale marker differs from a plain NaN) are counted as conflicts.

/// One decoded chunk: a range of the shared buffers plus its rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Start index into the shared buffers.
    pub start: usize,
    /// End index (exclusive).
    pub end: usize,
    /// Tie-break rank (lower wins on equal timestamps).
    pub rank: u32,
}

/// Counts from merging one series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Decoded samples offered.
    pub input: u64,
    /// Samples written to the output.
    pub output: u64,
    /// Samples outside `[day_start, day_end)`.
    pub outside_window: u64,
    /// Samples dropped because they did not increase inside their own chunk.
    pub out_of_order: u64,
    /// Equal timestamps (replicas) collapsed into one sample.
    pub duplicates: u64,
    /// Of those, timestamps whose values differed.
    pub conflicts: u64,
}

impl MergeStats {
    /// Adds another series' counts.
    pub fn add(&mut self, o: &Self) {
        self.input += o.input;
        self.output += o.output;
        self.outside_window += o.outside_window;
        self.out_of_order += o.out_of_order;
        self.duplicates += o.duplicates;
        self.conflicts += o.conflicts;
    }
}

/// Reusable scratch space for [`merge_series`] (one per worker thread).
#[derive(Debug, Default)]
pub struct MergeScratch {
    runs: Vec<Run>,
    lists: Vec<Vec<Run>>,
    cursors: Vec<Cursor>,
}

#[derive(Debug, Clone, Copy)]
struct Cursor {
    list: usize,
    run: usize,
    pos: usize,
    end: usize,
    rank: u32,
}

/// Merges `runs` (ranges of `ts`/`vs`) into `out_t`/`out_v` (cleared first).
///
/// `ts`/`vs` are modified in place only to drop samples that do not increase inside
/// their own chunk (which Cortex would have written out of order).
#[allow(clippy::too_many_arguments)]
pub fn merge_series(
    runs: &[Run],
    ts: &mut [i64],
    vs: &mut [f64],
    day_start: i64,
    day_end: i64,
    scratch: &mut MergeScratch,
    out_t: &mut Vec<i64>,
    out_v: &mut Vec<f64>,
) -> MergeStats {
    out_t.clear();
    out_v.clear();
    let mut stats = MergeStats::default();
    scratch.runs.clear();
    for r in runs {
        stats.input += (r.end - r.start) as u64;
        let mut run = *r;
        run.end = run.start
            + make_strictly_increasing(&mut ts[run.start..run.end], &mut vs[run.start..run.end]);
        stats.out_of_order += (r.end - run.end) as u64;
        // Clip to the day: the run is ascending now.
        let slice = &ts[run.start..run.end];
        let lo = slice.partition_point(|&t| t < day_start);
        let hi = slice.partition_point(|&t| t < day_end);
        stats.outside_window += (slice.len() - (hi - lo)) as u64;
        run.end = run.start + hi;
        run.start += lo;
        if run.start < run.end {
            scratch.runs.push(run);
        }
    }
    let kept: u64 = scratch.runs.iter().map(|r| (r.end - r.start) as u64).sum();
    if scratch.runs.is_empty() {
        return stats;
    }
    // Group runs into lists of non-overlapping runs (by actual data), so each list is
    // one ascending sequence; replicas typically give one list each.
    scratch.runs.sort_unstable_by_key(|r| (ts[r.start], r.rank));
    for l in &mut scratch.lists {
        l.clear();
    }
    let mut n_lists = 0;
    for &run in &scratch.runs {
        let first = ts[run.start];
        let slot = scratch.lists[..n_lists]
            .iter()
            .position(|l| l.last().is_some_and(|last| ts[last.end - 1] < first));
        match slot {
            Some(i) => scratch.lists[i].push(run),
            None => {
                if scratch.lists.len() == n_lists {
                    scratch.lists.push(Vec::new());
                }
                scratch.lists[n_lists].push(run);
                n_lists += 1;
            }
        }
    }
    out_t.reserve(kept as usize);
    out_v.reserve(kept as usize);
    if n_lists == 1 {
        for r in &scratch.lists[0] {
            out_t.extend_from_slice(&ts[r.start..r.end]);
            out_v.extend_from_slice(&vs[r.start..r.end]);
        }
    } else {
        scratch.cursors.clear();
        for (i, l) in scratch.lists[..n_lists].iter().enumerate() {
            let r = l[0];
            scratch.cursors.push(Cursor {
                list: i,
                run: 0,
                pos: r.start,
                end: r.end,
                rank: r.rank,
            });
        }
        merge_lists(
            &scratch.lists,
            &mut scratch.cursors,
            ts,
            vs,
            out_t,
            out_v,
            &mut stats,
        );
    }
    stats.output = out_t.len() as u64;
    stats.duplicates = kept - stats.output;
    stats
}

/// Keeps only samples whose timestamp exceeds every earlier kept one (the first
/// wins, as in Cortex); returns the new length. Already-ascending input (the normal
/// case) is detected with one pass and left untouched.
fn make_strictly_increasing(ts: &mut [i64], vs: &mut [f64]) -> usize {
    if ts.windows(2).all(|w| w[0] < w[1]) {
        return ts.len();
    }
    let mut w = 0;
    for r in 0..ts.len() {
        if w == 0 || ts[r] > ts[w - 1] {
            ts[w] = ts[r];
            vs[w] = vs[r];
            w += 1;
        }
    }
    w
}

/// Length of the common prefix of two timestamp slices.
fn common_prefix(a: &[i64], b: &[i64]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Moves a cursor `n` samples on, into the next run of its list when the current one
/// ends; returns false when the list is exhausted.
fn advance(c: &mut Cursor, lists: &[Vec<Run>], n: usize) -> bool {
    c.pos += n;
    if c.pos < c.end {
        return true;
    }
    c.run += 1;
    match lists[c.list].get(c.run) {
        Some(r) => {
            c.pos = r.start;
            c.end = r.end;
            c.rank = r.rank;
            true
        }
        None => false,
    }
}

fn merge_lists(
    lists: &[Vec<Run>],
    cursors: &mut Vec<Cursor>,
    ts: &[i64],
    vs: &[f64],
    out_t: &mut Vec<i64>,
    out_v: &mut Vec<f64>,
    stats: &mut MergeStats,
) {
    while !cursors.is_empty() {
        // Fast path: every list sits on the same timestamp (replicas scraped alike).
        // Find how long they stay identical inside their current runs and copy that
        // stretch from the lowest-ranked one in bulk.
        let t0 = ts[cursors[0].pos];
        if cursors.len() > 1 && cursors.iter().all(|c| ts[c.pos] == t0) {
            let span = cursors.iter().map(|c| c.end - c.pos).min().unwrap_or(0);
            let base = cursors[0].pos;
            let same = cursors[1..].iter().fold(span, |n, c| {
                n.min(common_prefix(&ts[base..base + n], &ts[c.pos..c.pos + n]))
            });
            let best = (0..cursors.len())
                .min_by_key(|&i| cursors[i].rank)
                .unwrap_or(0);
            let bp = cursors[best].pos;
            out_t.extend_from_slice(&ts[bp..bp + same]);
            out_v.extend_from_slice(&vs[bp..bp + same]);
            let winner = &vs[bp..bp + same];
            let mut i = 0;
            while i < cursors.len() {
                let c = &mut cursors[i];
                if i != best {
                    stats.conflicts += vs[c.pos..c.pos + same]
                        .iter()
                        .zip(winner)
                        .filter(|(a, b)| a.to_bits() != b.to_bits())
                        .count() as u64;
                }
                i += 1;
            }
            let mut i = 0;
            while i < cursors.len() {
                if advance(&mut cursors[i], lists, same) {
                    i += 1;
                } else {
                    cursors.swap_remove(i);
                }
            }
            continue;
        }
        // General step: smallest head timestamp; among equals, the lowest rank wins.
        let mut best = 0;
        let mut best_t = t0;
        for (i, c) in cursors.iter().enumerate().skip(1) {
            let t = ts[c.pos];
            if t < best_t || (t == best_t && c.rank < cursors[best].rank) {
                best = i;
                best_t = t;
            }
        }
        let value = vs[cursors[best].pos];
        out_t.push(best_t);
        out_v.push(value);
        let mut i = 0;
        while i < cursors.len() {
            let c = &mut cursors[i];
            if ts[c.pos] == best_t {
                if vs[c.pos].to_bits() != value.to_bits() {
                    stats.conflicts += 1;
                }
                if !advance(c, lists, 1) {
                    cursors.swap_remove(i);
                    continue;
                }
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn run_merge(
        chunks: &[(u32, Vec<(i64, f64)>)],
        lo: i64,
        hi: i64,
    ) -> (Vec<(i64, u64)>, MergeStats) {
        let (mut ts, mut vs, mut runs) = (Vec::new(), Vec::new(), Vec::new());
        for (rank, samples) in chunks {
            let start = ts.len();
            for &(t, v) in samples {
                ts.push(t);
                vs.push(v);
            }
            runs.push(Run {
                start,
                end: ts.len(),
                rank: *rank,
            });
        }
        let (mut ot, mut ov) = (Vec::new(), Vec::new());
        let stats = merge_series(
            &runs,
            &mut ts,
            &mut vs,
            lo,
            hi,
            &mut MergeScratch::default(),
            &mut ot,
            &mut ov,
        );
        (
            ot.into_iter()
                .zip(ov.into_iter().map(f64::to_bits))
                .collect(),
            stats,
        )
    }

    /// The specification: per chunk keep samples that increase; union over chunks;
    /// on equal timestamps the lowest rank wins; clip.
    fn model(chunks: &[(u32, Vec<(i64, f64)>)], lo: i64, hi: i64) -> Vec<(i64, u64)> {
        let mut best: BTreeMap<i64, (u32, u64)> = BTreeMap::new();
        for (rank, samples) in chunks {
            let mut last = None;
            for &(t, v) in samples {
                if last.is_some_and(|l| t <= l) {
                    continue;
                }
                last = Some(t);
                if t < lo || t >= hi {
                    continue;
                }
                let e = best.entry(t).or_insert((*rank, v.to_bits()));
                if *rank < e.0 {
                    *e = (*rank, v.to_bits());
                }
            }
        }
        best.into_iter().map(|(t, (_, v))| (t, v)).collect()
    }

    #[test]
    fn replicas_cut_differently_merge_to_one_stream() {
        let a = (
            0u32,
            (0..10).map(|i| (i * 15, i as f64)).collect::<Vec<_>>(),
        );
        let b = (1u32, (0..4).map(|i| (i * 15, i as f64)).collect::<Vec<_>>());
        let c = (
            2u32,
            (4..10).map(|i| (i * 15, i as f64)).collect::<Vec<_>>(),
        );
        let (out, stats) = run_merge(&[a, b, c], 0, 1000);
        assert_eq!(out.len(), 10);
        assert_eq!(stats.duplicates, 10);
        assert_eq!(stats.conflicts, 0);
    }

    #[test]
    fn lowest_rank_wins_and_conflicts_are_counted() {
        let (out, stats) = run_merge(
            &[(5, vec![(10, 1.0), (20, 2.0)]), (3, vec![(20, 9.0)])],
            0,
            100,
        );
        assert_eq!(out, vec![(10, 1f64.to_bits()), (20, 9f64.to_bits())]);
        assert_eq!(stats.conflicts, 1);
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let (_, stats) = run_merge(&[(0, vec![(1, stale)]), (1, vec![(1, f64::NAN)])], 0, 100);
        assert_eq!(stats.conflicts, 1, "stale marker differs from NaN");
    }

    #[test]
    fn clip_is_half_open() {
        let (out, stats) = run_merge(
            &[(0, vec![(99, 1.0), (100, 2.0), (199, 3.0), (200, 4.0)])],
            100,
            200,
        );
        assert_eq!(out.iter().map(|s| s.0).collect::<Vec<_>>(), vec![100, 199]);
        assert_eq!(stats.outside_window, 2);
    }

    proptest! {
        #[test]
        fn matches_the_model(
            chunks in prop::collection::vec(
                (0u32..8, prop::collection::vec((0i64..300, -3i8..3), 0..60)), 0..8),
            lo in 0i64..100, span in 0i64..300,
        ) {
            let chunks: Vec<(u32, Vec<(i64, f64)>)> = chunks.into_iter().enumerate().map(|(i, (r, s))| {
                // Mostly ascending with occasional disorder, like real (and corrupt) chunks.
                let mut s: Vec<(i64, f64)> = s.into_iter().map(|(t, v)| (t, v as f64)).collect();
                if i % 3 != 0 { s.sort_by_key(|x| x.0); }
                (r * 8 + i as u32, s)
            }).collect();
            let (out, _) = run_merge(&chunks, lo, lo + span);
            prop_assert_eq!(out, model(&chunks, lo, lo + span));
        }
    }
}
