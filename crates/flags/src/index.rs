//! `--index` and the `--bigtable.*`/`--dynamodb.*` tuning of every command that reads
//! the chunk index (the scanner, `convert`, `verify`), as [`index_scan::source::IndexConfig`].

use clap::Args;
use index_scan::source::IndexConfig;

/// Where the index is read from, and how DynamoDB is asked.
#[derive(Args, Debug, Clone)]
pub struct IndexFlags {
    /// Index to read: `dynamodb://<region>` or `bigtable://<project>/<instance>` for
    /// the live tables, or a directory / object store URL holding one or more DynamoDB
    /// exports (DYNAMODB_JSON). Repeat it (or comma-separate) when the index moved
    /// between stores: each source reads the periods of its own store.
    #[arg(
        long,
        env = "BLOCKSCONVERT_INDEX",
        value_delimiter = ',',
        required = true
    )]
    pub index: Vec<String>,

    /// Most key ranges (from SampleRowKeys) a Bigtable table is read in, in parallel.
    #[arg(
        long = "bigtable.ranges",
        env = "BLOCKSCONVERT_BIGTABLE_RANGES",
        default_value_t = 16
    )]
    pub bigtable_ranges: usize,

    /// Attempts per Bigtable request on transient gRPC codes.
    #[arg(
        long = "bigtable.max-attempts",
        env = "BLOCKSCONVERT_BIGTABLE_MAX_ATTEMPTS",
        default_value_t = 8
    )]
    pub bigtable_max_attempts: usize,

    /// Deadline of one Bigtable request.
    #[arg(long = "bigtable.request-timeout", env = "BLOCKSCONVERT_BIGTABLE_REQUEST_TIMEOUT",
          default_value = "60s", value_parser = humantime::parse_duration)]
    pub bigtable_request_timeout: std::time::Duration,

    /// DynamoDB endpoint override (dynalite, DynamoDB Local); AWS_ENDPOINT_URL_DYNAMODB works too.
    #[arg(long = "dynamodb.endpoint", env = "BLOCKSCONVERT_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

    /// Parallel Scan segments per table.
    #[arg(
        long = "dynamodb.segments",
        env = "BLOCKSCONVERT_DYNAMODB_SEGMENTS",
        default_value_t = 16
    )]
    pub dynamodb_segments: usize,

    /// Items per Scan request (default: DynamoDB's 1 MB pages).
    #[arg(long = "dynamodb.page-size", env = "BLOCKSCONVERT_DYNAMODB_PAGE_SIZE")]
    pub dynamodb_page_size: Option<i32>,

    /// Attempts per DynamoDB request on throttling and transient errors.
    #[arg(
        long = "dynamodb.max-attempts",
        env = "BLOCKSCONVERT_DYNAMODB_MAX_ATTEMPTS",
        default_value_t = 10
    )]
    pub dynamodb_max_attempts: usize,
}

impl IndexFlags {
    /// The settings these flags describe (every flag has its field: a new flag
    /// without one does not compile).
    pub fn config(&self) -> IndexConfig {
        let IndexFlags {
            index,
            bigtable_ranges,
            bigtable_max_attempts,
            bigtable_request_timeout,
            dynamodb_endpoint,
            dynamodb_segments,
            dynamodb_page_size,
            dynamodb_max_attempts,
        } = self.clone();
        IndexConfig {
            index,
            bigtable_ranges,
            bigtable_max_attempts,
            bigtable_request_timeout,
            dynamodb_endpoint,
            dynamodb_segments,
            dynamodb_page_size,
            dynamodb_max_attempts,
        }
    }
}
