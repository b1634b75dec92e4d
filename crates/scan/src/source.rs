//! The `--index` flag group shared by every command that reads the chunk index
//! (the scanner, `blocksconvert convert` and `blocksconvert verify`): a live DynamoDB
//! table set (`dynamodb://<region>`), a live Bigtable instance
//! (`bigtable://<project>/<instance>`) or DynamoDB exports in a directory or bucket.

use std::path::Path;
use std::sync::Arc;

use index_source::IndexSource;
use index_source::bigtable::{BigtableIndexOptions, BigtableSource};
use index_source::dynamo::{DynamoOptions, DynamoSource};
use index_source::export::ExportSource;
use storage::{StorageOptions, StoreLocation};

use crate::ScanError;

/// Where the index is read from, and how DynamoDB is asked.
#[derive(clap::Args, Debug, Clone)]
pub struct IndexFlags {
    /// Index to read: `dynamodb://<region>` or `bigtable://<project>/<instance>` for
    /// the live tables, or a directory / object store URL holding one or more DynamoDB
    /// exports (DYNAMODB_JSON).
    #[arg(long, env = "BLOCKSCONVERT_INDEX")]
    pub index: String,

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
    /// Opens the index; exports are downloaded below `download_dir` when remote.
    pub async fn open(
        &self,
        storage: &StorageOptions,
        download_dir: &Path,
    ) -> Result<Arc<dyn IndexSource>, ScanError> {
        if let Some(region) = self.index.strip_prefix("dynamodb://") {
            let region = region.trim_end_matches('/');
            if region.is_empty() {
                return Err(ScanError::Flag {
                    flag: "--index",
                    reason: "dynamodb://<region>: the region is missing".into(),
                });
            }
            let source = DynamoSource::connect(DynamoOptions {
                region: region.to_owned(),
                endpoint: self.dynamodb_endpoint.clone(),
                segments: self.dynamodb_segments,
                page_size: self.dynamodb_page_size,
                max_attempts: self.dynamodb_max_attempts,
                ..DynamoOptions::default()
            })
            .await?;
            return Ok(Arc::new(source));
        }
        if self.index.starts_with("bigtable://") {
            let client = bigtable::Client::connect(self.bigtable_config(&self.index, storage)?)
                .await
                .map_err(index_source::SourceError::from)?;
            let source = BigtableSource::new(
                client,
                BigtableIndexOptions {
                    segments: self.bigtable_ranges,
                    ..BigtableIndexOptions::default()
                },
            )?;
            return Ok(Arc::new(source));
        }
        let location =
            StoreLocation::open(&self.index, storage, false).map_err(|e| ScanError::Flag {
                flag: "--index",
                reason: e.to_string(),
            })?;
        Ok(Arc::new(ExportSource::open(location, download_dir).await?))
    }

    /// Bigtable settings for `url` (`bigtable://<project>/<instance>`) from these flags.
    pub fn bigtable_config(
        &self,
        url: &str,
        storage: &StorageOptions,
    ) -> Result<bigtable::BigtableConfig, ScanError> {
        let mut cfg = bigtable::BigtableConfig::from_url(url).map_err(|e| ScanError::Flag {
            flag: "--index",
            reason: e.to_string(),
        })?;
        cfg.emulator = storage.bigtable_emulator.clone().filter(|e| !e.is_empty());
        cfg.max_attempts = self.bigtable_max_attempts.max(1);
        cfg.request_timeout = self.bigtable_request_timeout;
        Ok(cfg)
    }
}
