//! Scanner metric names (Cortex's `cortex_blocksconvert_scanner_*` families plus ours).
//! Counters are bumped per page or per plan, never per row.

/// Rows read (Cortex's name; its DynamoDB reader used the BigTable family too).
pub const CORTEX_READ_ROWS: &str = "cortex_blocksconvert_bigtable_read_rows_total";
/// Rows read from the source.
pub const ROWS_READ: &str = "cortex_blocksconvert_scanner_rows_read_total";
/// Index entries by `type` (series-to-chunk, metric-to-series, …, unknown-XXXX).
pub const SCANNED_ENTRIES: &str = "cortex_blocksconvert_scanner_scanned_index_entries_total";
/// Series→chunk entries not converted, by `reason` (tenant, schema).
pub const IGNORED_ENTRIES: &str = "cortex_blocksconvert_scanner_ignored_index_entries_total";
/// Series→chunk entries that could not be parsed.
pub const BAD_ENTRIES: &str = "cortex_blocksconvert_scanner_bad_index_entries_total";
/// Series written to plans.
pub const SERIES_WRITTEN: &str = "cortex_blocksconvert_scanner_series_written_total";
/// Plan files open for writing.
pub const OPEN_FILES: &str = "cortex_blocksconvert_scanner_open_files";
/// Tables left after all filters.
pub const FOUND_TABLES: &str = "cortex_blocksconvert_scanner_found_tables_total";
/// Tables processed (including ones skipped as already done).
pub const PROCESSED_TABLES: &str = "cortex_blocksconvert_scanner_processed_tables_total";
/// Segments of the table being scanned.
pub const SEGMENTS: &str = "cortex_blocksconvert_scanner_segments";
/// Segments finished.
pub const SEGMENTS_DONE: &str = "cortex_blocksconvert_scanner_segments_done_total";
/// Checkpoints written.
pub const CHECKPOINTS: &str = "cortex_blocksconvert_scanner_checkpoints_total";
/// Bytes spilled to sorted runs.
pub const SPILLED_BYTES: &str = "cortex_blocksconvert_scanner_spilled_bytes_total";
/// Plans written locally and verified.
pub const PLANS_WRITTEN: &str = "cortex_blocksconvert_scanner_plans_written_total";
/// Plans uploaded.
pub const PLANS_UPLOADED: &str = "cortex_blocksconvert_scanner_plans_uploaded_total";
/// Plans already present with the same generation (not uploaded again).
pub const PLANS_UNCHANGED: &str = "cortex_blocksconvert_scanner_plans_unchanged_total";
/// Plans whose content changed after the scheduler had started them, by `action`.
pub const PLAN_CONFLICTS: &str = "cortex_blocksconvert_scanner_plan_conflicts_total";
/// DynamoDB read capacity consumed (a gauge that only grows: capacity is fractional).
pub const CONSUMED_CAPACITY: &str = "cortex_blocksconvert_scanner_consumed_read_capacity_units";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        CORTEX_READ_ROWS,
        "Index rows read (Cortex-compatible name)."
    );
    describe_counter!(ROWS_READ, "Index rows read from the source.");
    describe_counter!(SCANNED_ENTRIES, "Index entries scanned, by type.");
    describe_counter!(
        IGNORED_ENTRIES,
        "Series-to-chunk entries ignored, by reason."
    );
    describe_counter!(
        BAD_ENTRIES,
        "Series-to-chunk entries that could not be parsed."
    );
    describe_counter!(SERIES_WRITTEN, "Series written to plan files.");
    describe_gauge!(OPEN_FILES, "Plan files open for writing.");
    describe_counter!(FOUND_TABLES, "Index tables selected for scanning.");
    describe_counter!(PROCESSED_TABLES, "Index tables processed.");
    describe_gauge!(SEGMENTS, "Segments of the table being scanned.");
    describe_counter!(SEGMENTS_DONE, "Segments scanned to the end.");
    describe_counter!(CHECKPOINTS, "Segment checkpoints written.");
    describe_counter!(
        SPILLED_BYTES,
        "Bytes of sorted runs spilled to the work dir."
    );
    describe_counter!(PLANS_WRITTEN, "Plans written and verified locally.");
    describe_counter!(PLANS_UPLOADED, "Plans uploaded.");
    describe_counter!(
        PLANS_UNCHANGED,
        "Plans already uploaded with the same generation."
    );
    describe_counter!(
        PLAN_CONFLICTS,
        "Changed plans whose day was already started or finished."
    );
    describe_gauge!(CONSUMED_CAPACITY, "DynamoDB read capacity units consumed.");
    describe_counter!(
        "cortex_blocksconvert_scanner_dynamodb_retries_total",
        "DynamoDB requests retried."
    );
    describe_counter!(
        "cortex_blocksconvert_scanner_dynamodb_throttled_total",
        "DynamoDB requests throttled."
    );
}
