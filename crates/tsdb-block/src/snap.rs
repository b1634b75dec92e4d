//! The optional timestamp snapping of Cortex's `-builder.timestamp-tolerance`, minus
//! its two bugs (a snapped sample could land on `dayEnd`, or duplicate the previous
//! one), applied to a merged series before it is cut into 120-sample chunks.

use crate::SAMPLES_PER_CHUNK;

/// Snaps timestamps that are within `tolerance_ms` of a whole second after the
/// previous written sample (Cortex's rule), only from the second sample of each
/// output chunk on, only forward of the previous sample (at least 1 s later), only
/// before `day_end` and only before the next sample, so the stream stays strictly
/// ascending and inside the block. Returns how many timestamps moved.
pub fn snap_timestamps(ts: &mut [i64], tolerance_ms: i64, day_end: i64) -> u64 {
    if tolerance_ms <= 0 {
        return 0;
    }
    let mut moved = 0;
    for i in 1..ts.len() {
        if i % SAMPLES_PER_CHUNK == 0 {
            continue; // first sample of an output chunk is kept as is
        }
        let prev = ts[i - 1];
        let gap = ts[i] - prev;
        let seconds = (gap + 500) / 1000;
        let diff = gap - 1000 * seconds;
        if diff == 0 || diff.abs() > tolerance_ms || seconds < 1 {
            continue;
        }
        let snapped = prev + 1000 * seconds;
        if snapped >= day_end || ts.get(i + 1).is_some_and(|&next| snapped >= next) {
            continue;
        }
        ts[i] = snapped;
        moved += 1;
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapping_fixes_cortex_bugs() {
        // Cortex would snap 1300 → 1000 (duplicate of the previous) and 86_399_900 →
        // 86_400_000 (= dayEnd, outside the block).
        let mut ts = vec![1000, 1300, 2010, 86_399_010, 86_399_990];
        let moved = snap_timestamps(&mut ts, 20, 86_400_000);
        assert_eq!(ts, vec![1000, 1300, 2010, 86_399_010, 86_399_990]);
        assert_eq!(moved, 0);
        // Snapping never passes the next sample.
        let mut ts = vec![0, 1015, 1018];
        snap_timestamps(&mut ts, 20, 100_000);
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
        // The first sample of every output chunk stays.
        let mut ts: Vec<i64> = (0..241).map(|i| i * 1000 + 7).collect();
        snap_timestamps(&mut ts, 10, i64::MAX);
        assert_eq!(ts[0], 7);
        assert_eq!(ts[1], 1007, "gap is exactly 1 s: nothing to snap");
        let mut ts = vec![5, 1012, 2013];
        snap_timestamps(&mut ts, 20, i64::MAX);
        assert_eq!(ts, vec![5, 1005, 2005]);
        assert_eq!(snap_timestamps(&mut [1, 2, 3], 0, 10), 0);
    }
}
