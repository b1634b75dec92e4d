//! Metric names of the builder. Cortex's `cortex_blocksconvert_builder_*` families
//! keep their names and meaning; the rest is what an operator needs for an ETA.
//! Counters are updated once per series or per phase, never per sample.

use std::sync::atomic::{AtomicU64, Ordering};

/// Chunks fetched (Cortex).
pub const FETCHED_CHUNKS: &str = "cortex_blocksconvert_builder_fetched_chunks_total";
/// Bytes of chunks fetched (Cortex).
pub const FETCHED_CHUNK_BYTES: &str = "cortex_blocksconvert_builder_fetched_chunks_bytes_total";
/// Plans answered with a block already in the bucket for their tenant-day.
pub const KEPT_EXISTING_BLOCKS: &str = "cortex_blocksconvert_builder_kept_existing_blocks_total";
/// Series processed (Cortex).
pub const SERIES: &str = "cortex_blocksconvert_builder_series_total";
/// Samples written into blocks (Cortex).
pub const WRITTEN_SAMPLES: &str = "cortex_blocksconvert_builder_written_samples_total";
/// 1 while a plan is being built (Cortex).
pub const IN_PROGRESS: &str = "cortex_blocksconvert_builder_in_progress";
/// Start of the current plan's day, Unix seconds (Cortex).
pub const PLAN_START_TIME: &str = "cortex_blocksconvert_builder_plan_start_time_seconds";
/// Bytes of the plan file read (Cortex).
pub const PLAN_FILE_POSITION: &str = "cortex_blocksconvert_builder_plan_file_position";
/// Size of the plan file (Cortex).
pub const PLAN_SIZE: &str = "cortex_blocksconvert_builder_plan_size";
/// Chunks not found (Cortex).
pub const CHUNKS_NOT_FOUND: &str = "cortex_blocksconvert_builder_chunks_not_found_total";
/// Bytes of blocks written (Cortex).
pub const BLOCK_SIZE: &str = "cortex_blocksconvert_builder_block_size_bytes_total";
/// Series records held in memory by the sorter (Cortex).
pub const SERIES_IN_MEMORY: &str = "cortex_blocksconvert_builder_series_in_memory";
/// Bad chunks by `kind` (missing, checksum, corrupt, undecodable, invalid_id).
pub const BAD_CHUNKS: &str = "cortex_blocksconvert_builder_bad_chunks_total";
/// Series quarantined for inconsistent labels.
pub const QUARANTINED_SERIES: &str = "cortex_blocksconvert_builder_quarantined_series_total";
/// Samples decoded from chunks (before dedup).
pub const DECODED_SAMPLES: &str = "cortex_blocksconvert_builder_decoded_samples_total";
/// Replica samples with equal timestamps but different values.
pub const CONFLICTING_SAMPLES: &str = "cortex_blocksconvert_builder_conflicting_samples_total";
/// Bytes spilled by the series sorter.
pub const SPILL_BYTES: &str = "cortex_blocksconvert_builder_spill_bytes_total";
/// Chunk fetch retries.
pub use chunk_store::FETCH_RETRIES;
/// Series of the current plan (for an ETA together with the series counter).
pub const PLAN_SERIES: &str = "cortex_blocksconvert_builder_plan_series";
/// Series of the current plan done.
pub const PLAN_SERIES_DONE: &str = "cortex_blocksconvert_builder_plan_series_done";
/// Plans by outcome (`complete`, `finished_with_gaps`, `failed`).
pub const PLANS: &str = "cortex_blocksconvert_builder_plans_total";
/// Duration of each build phase (`validate`, `convert`, `upload`), per plan.
pub const PHASE_SECONDS: &str = "cortex_blocksconvert_builder_phase_duration_seconds";

/// One build's share of the plan gauges above. Several plans can build at once in
/// one process (`convert`, a builder with `--concurrency`), so each gauge is the sum
/// over the plans in flight: a build moves its own contribution as it goes and takes
/// it all back when dropped (`IN_PROGRESS` counts the builds).
#[derive(Debug)]
pub struct PlanGauges {
    size: AtomicU64,
    series: AtomicU64,
    series_done: AtomicU64,
    file_position: AtomicU64,
    series_in_memory: AtomicU64,
}

impl PlanGauges {
    /// A build starts.
    pub fn start() -> Self {
        metrics::gauge!(IN_PROGRESS).increment(1.0);
        Self {
            size: AtomicU64::new(0),
            series: AtomicU64::new(0),
            series_done: AtomicU64::new(0),
            file_position: AtomicU64::new(0),
            series_in_memory: AtomicU64::new(0),
        }
    }

    fn move_to(cell: &AtomicU64, gauge: &'static str, value: u64) {
        let old = cell.swap(value, Ordering::Relaxed);
        metrics::gauge!(gauge).increment(value as f64 - old as f64);
    }

    /// The plan file's size.
    pub fn plan_size(&self, bytes: u64) {
        Self::move_to(&self.size, PLAN_SIZE, bytes);
    }

    /// The plan's series.
    pub fn plan_series(&self, series: u64) {
        Self::move_to(&self.series, PLAN_SERIES, series);
    }

    /// Bytes of the plan file read so far.
    pub fn file_position(&self, bytes: u64) {
        Self::move_to(&self.file_position, PLAN_FILE_POSITION, bytes);
    }

    /// Series records the block writer holds in memory now.
    pub fn series_in_memory(&self, records: u64) {
        Self::move_to(&self.series_in_memory, SERIES_IN_MEMORY, records);
    }

    /// One more series done.
    pub fn series_done(&self) {
        self.series_done.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(PLAN_SERIES_DONE).increment(1.0);
    }
}

impl Drop for PlanGauges {
    fn drop(&mut self) {
        for (cell, gauge) in [
            (&self.size, PLAN_SIZE),
            (&self.series, PLAN_SERIES),
            (&self.series_done, PLAN_SERIES_DONE),
            (&self.file_position, PLAN_FILE_POSITION),
            (&self.series_in_memory, SERIES_IN_MEMORY),
        ] {
            Self::move_to(cell, gauge, 0);
        }
        metrics::gauge!(IN_PROGRESS).decrement(1.0);
    }
}

/// Registers help texts (call once after installing a recorder).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(FETCHED_CHUNKS, "Fetched chunks");
    describe_counter!(FETCHED_CHUNK_BYTES, "Fetched chunks bytes");
    describe_counter!(SERIES, "Processed series");
    describe_counter!(WRITTEN_SAMPLES, "Written samples");
    describe_gauge!(IN_PROGRESS, "Build in progress");
    describe_gauge!(
        PLAN_START_TIME,
        "Start time of current plan's time range (unix timestamp)."
    );
    describe_gauge!(PLAN_FILE_POSITION, "Read bytes from the plan file.");
    describe_gauge!(PLAN_SIZE, "Total size of plan file.");
    describe_counter!(
        CHUNKS_NOT_FOUND,
        "Number of chunks that were not found on the storage."
    );
    describe_counter!(
        BLOCK_SIZE,
        "Total size of blocks generated by this builder."
    );
    describe_gauge!(
        SERIES_IN_MEMORY,
        "Number of series kept in memory at the moment."
    );
    describe_counter!(BAD_CHUNKS, "Chunks that contributed no samples, by kind.");
    describe_counter!(
        KEPT_EXISTING_BLOCKS,
        "Plans answered with a converted block already in the bucket for their tenant-day (no second block written)."
    );
    metrics::counter!(KEPT_EXISTING_BLOCKS).increment(0);
    describe_counter!(
        QUARANTINED_SERIES,
        "Series left out of a block because of inconsistent labels."
    );
    describe_counter!(
        DECODED_SAMPLES,
        "Samples decoded from chunks, before deduplication."
    );
    describe_counter!(
        CONFLICTING_SAMPLES,
        "Replica samples with equal timestamps and different values."
    );
    describe_counter!(SPILL_BYTES, "Bytes the series sorter spilled to disk.");
    describe_counter!(FETCH_RETRIES, "Chunk fetch attempts that were retried.");
    describe_gauge!(PLAN_SERIES, "Series in the plan being built.");
    describe_gauge!(
        PLAN_SERIES_DONE,
        "Series of the plan being built that are done."
    );
    describe_counter!(PLANS, "Plans built, by status.");
    metrics::describe_histogram!(PHASE_SECONDS, "Duration of each build phase, per plan.");
    // Counters exist from the start at 0 (see the scheduler's metrics for why).
    for name in [
        FETCHED_CHUNKS,
        FETCHED_CHUNK_BYTES,
        SERIES,
        WRITTEN_SAMPLES,
        CHUNKS_NOT_FOUND,
        BLOCK_SIZE,
        QUARANTINED_SERIES,
        DECODED_SAMPLES,
        CONFLICTING_SAMPLES,
        SPILL_BYTES,
        FETCH_RETRIES,
    ] {
        metrics::counter!(name).increment(0);
    }
    use crate::report::{BadChunkKind, PlanStatus};
    for kind in [
        BadChunkKind::Missing,
        BadChunkKind::Checksum,
        BadChunkKind::Corrupt,
        BadChunkKind::Undecodable,
        BadChunkKind::InvalidId,
    ] {
        metrics::counter!(BAD_CHUNKS, "kind" => kind.as_str()).increment(0);
    }
    for status in [
        PlanStatus::Complete,
        PlanStatus::FinishedWithGaps,
        PlanStatus::Failed,
    ] {
        metrics::counter!(PLANS, "status" => status.as_str()).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn builds_at_once_add_up_and_each_takes_its_share_back() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let a = PlanGauges::start();
            let b = PlanGauges::start();
            a.plan_series(10);
            b.plan_series(5);
            a.series_done();
            b.series_done();
            b.series_done();
            a.series_in_memory(7);
            a.series_in_memory(3);
            b.series_in_memory(4);
            let text = handle.render();
            assert_eq!(value(&text, IN_PROGRESS), 2.0, "{text}");
            assert_eq!(value(&text, PLAN_SERIES), 15.0, "{text}");
            assert_eq!(value(&text, PLAN_SERIES_DONE), 3.0, "{text}");
            assert_eq!(value(&text, SERIES_IN_MEMORY), 7.0, "{text}");
            drop(a);
            let text = handle.render();
            assert_eq!(value(&text, IN_PROGRESS), 1.0, "{text}");
            assert_eq!(value(&text, PLAN_SERIES), 5.0, "{text}");
            assert_eq!(value(&text, PLAN_SERIES_DONE), 2.0, "{text}");
            assert_eq!(value(&text, SERIES_IN_MEMORY), 4.0, "{text}");
            drop(b);
            let text = handle.render();
            for g in [IN_PROGRESS, PLAN_SERIES, PLAN_SERIES_DONE, SERIES_IN_MEMORY] {
                assert_eq!(value(&text, g), 0.0, "{g}: {text}");
            }
        });
    }
}
