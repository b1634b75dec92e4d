//! Opening the index sources of every command that reads the chunk index (the
//! scanner, `blocksconvert convert` and `blocksconvert verify`): a live DynamoDB
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
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// Index to read: `dynamodb://<region>` or `bigtable://<project>/<instance>` for
    /// the live tables, or a directory / object store URL holding one or more DynamoDB
    /// exports (DYNAMODB_JSON). Repeat it (or comma-separate) when the index moved
    /// between stores: each source reads the periods of its own store.
    pub index: Vec<String>,

    /// Most key ranges (from SampleRowKeys) a Bigtable table is read in, in parallel.
    pub bigtable_ranges: usize,

    /// Attempts per Bigtable request on transient gRPC codes.
    pub bigtable_max_attempts: usize,

    /// Deadline of one Bigtable request.
    pub bigtable_request_timeout: std::time::Duration,

    /// DynamoDB endpoint override (dynalite, DynamoDB Local); AWS_ENDPOINT_URL_DYNAMODB works too.
    pub dynamodb_endpoint: Option<String>,

    /// Parallel Scan segments per table.
    pub dynamodb_segments: usize,

    /// Items per Scan request (default: DynamoDB's 1 MB pages).
    pub dynamodb_page_size: Option<i32>,

    /// Attempts per DynamoDB request on throttling and transient errors.
    pub dynamodb_max_attempts: usize,
}

impl IndexConfig {
    /// Every `--index` location, comma-joined (for names and digests).
    pub fn describe(&self) -> String {
        self.index.join(",")
    }

    /// The first Bigtable `--index`, if any.
    pub fn bigtable(&self) -> Option<&str> {
        self.index
            .iter()
            .map(String::as_str)
            .find(|i| i.starts_with("bigtable://"))
    }

    /// Opens every index source; exports are downloaded below `download_dir` (one
    /// folder per source) when remote.
    pub async fn open(
        &self,
        storage: &StorageOptions,
        download_dir: &Path,
    ) -> Result<Vec<Arc<dyn IndexSource>>, ScanError> {
        let mut sources = Vec::with_capacity(self.index.len());
        for (i, index) in self.index.iter().enumerate() {
            let dir = if i == 0 {
                download_dir.to_owned()
            } else {
                download_dir.join(format!("index-{i}"))
            };
            sources.push(self.open_one(index, storage, &dir).await?);
        }
        Ok(sources)
    }

    async fn open_one(
        &self,
        index: &str,
        storage: &StorageOptions,
        download_dir: &Path,
    ) -> Result<Arc<dyn IndexSource>, ScanError> {
        if let Some(region) = index.strip_prefix("dynamodb://") {
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
        if index.starts_with("bigtable://") {
            let client = bigtable::Client::connect(self.bigtable_config(index, storage)?)
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
        let location = StoreLocation::open(index, storage, false).map_err(|e| ScanError::Flag {
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
