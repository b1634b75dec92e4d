//! Flags shared by every command that builds blocks (`blocksconvert build`,
//! `blocksconvert-builder`): where chunks come from, where blocks go, build tuning.

use std::path::PathBuf;
use std::time::Duration;

use block_builder::{BuildConfig, ChunkStore, ChunkStores, FetchPolicy};
use clap::Args;
use cortex_index::schema::SchemaConfig;
use storage::{StorageOptions, StoreLocation};

use crate::store::StorageFlags;
use crate::{FlagsError, state_dir};

/// Opens a chunk store a flag names: a directory or object store URL, or
/// `bigtable://<project>/<instance>` for chunks in Cortex's Bigtable chunk tables.
fn open_chunk_store(
    flag: &'static str,
    spec: &str,
    storage: &StorageOptions,
) -> Result<ChunkStore, FlagsError> {
    if spec.starts_with("bigtable://") {
        let mut cfg =
            bigtable::BigtableConfig::from_url(spec).map_err(|e| FlagsError::Invalid {
                flag,
                reason: e.to_string(),
            })?;
        cfg.emulator = storage.bigtable_emulator.clone().filter(|e| !e.is_empty());
        cfg.request_timeout = storage.request_timeout;
        let client = bigtable::Client::new(cfg).map_err(|e| FlagsError::Invalid {
            flag,
            reason: e.to_string(),
        })?;
        return Ok(ChunkStore::from(client));
    }
    // The builder retries every chunk fetch itself (jittered backoff, a deadline per
    // attempt, `--storage.max-retries` retries): the object-store client's own retries
    // under it would multiply the requests for one failing chunk.
    let single_attempt = StorageOptions {
        max_retries: 0,
        ..storage.clone()
    };
    Ok(ChunkStore::Objects(open_flag(
        flag,
        spec,
        &single_attempt,
        false,
    )?))
}

/// Opens the location a flag names; an error names the flag.
fn open_flag(
    flag: &'static str,
    spec: &str,
    storage: &StorageOptions,
    create: bool,
) -> Result<StoreLocation, FlagsError> {
    StoreLocation::open(spec, storage, create)
        .map_err(|source| FlagsError::Location { flag, source })
}

/// The chunk store(s) to read: `--chunks` plus per-period `--chunks-store`.
#[derive(Args, Debug, Clone)]
pub struct ChunkStoreFlags {
    /// Chunk store: directory or URL holding objects at their Cortex keys, or
    /// `bigtable://<project>/<instance>` for chunks in Cortex's Bigtable chunk tables
    /// (needs --schema: its `chunks:` config names the tables).
    #[arg(long, env = "BLOCKSCONVERT_CHUNKS")]
    pub chunks: String,
    /// Extra chunk store for periods whose schema `object_store` is TYPE (TYPE=URL);
    /// needs --schema. Periods without an entry use --chunks.
    #[arg(long = "chunks-store", value_name = "TYPE=URL")]
    pub chunks_store: Vec<String>,
}

impl ChunkStoreFlags {
    /// The chunk stores (one per schema store type, `--chunks` for the rest).
    pub fn open(
        &self,
        schema: Option<SchemaConfig>,
        storage: &StorageOptions,
    ) -> Result<ChunkStores, FlagsError> {
        let mut stores = ChunkStores::new(
            open_chunk_store("--chunks", &self.chunks, storage)?,
            schema.clone(),
        );
        for spec in &self.chunks_store {
            let Some((kind, url)) = spec.split_once('=') else {
                return Err(FlagsError::Invalid {
                    flag: "--chunks-store",
                    reason: format!("{spec:?}: expected TYPE=URL"),
                });
            };
            if schema.is_none() {
                return Err(FlagsError::Invalid {
                    flag: "--chunks-store",
                    reason: format!("needs --schema to know which periods use {kind:?}"),
                });
            }
            stores = stores.with_store(kind, open_chunk_store("--chunks-store", url, storage)?);
        }
        stores.check().map_err(|e| FlagsError::Invalid {
            flag: "--chunks",
            reason: e.to_string(),
        })?;
        Ok(stores)
    }
}

impl ChunkStoreFlags {
    /// The chunk stores beside the index: as [`ChunkStoreFlags::open`], and when an
    /// index is a Bigtable instance (`bigtable_index`), periods that keep chunks in Bigtable
    /// (`object_store: bigtable`, `gcp`, …) without a store of their own read them from
    /// the index's instance, as Cortex did by default.
    pub fn open_beside_index(
        &self,
        schema: Option<SchemaConfig>,
        storage: &StorageOptions,
        bigtable_index: Option<&str>,
    ) -> Result<ChunkStores, FlagsError> {
        let mut stores = self.open(schema.clone(), storage)?;
        let (Some(schema), Some(index)) = (&schema, bigtable_index) else {
            return Ok(stores);
        };
        let given: Vec<&str> = self
            .chunks_store
            .iter()
            .filter_map(|s| s.split_once('=').map(|(kind, _)| kind))
            .collect();
        let mut kinds: Vec<&str> = schema
            .configs
            .iter()
            .filter(|p| p.is_convertible())
            .map(|p| p.chunk_store())
            .filter(|k| block_builder::BIGTABLE_CHUNK_STORES.contains(k) && !given.contains(k))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        if kinds.is_empty() || self.chunks.starts_with("bigtable://") {
            return Ok(stores);
        }
        let instance = open_chunk_store("--index", index, storage)?;
        for kind in kinds {
            stores = stores.with_store(kind, instance.clone());
        }
        stores.check().map_err(|e| FlagsError::Invalid {
            flag: "--schema",
            reason: e.to_string(),
        })?;
        Ok(stores)
    }
}

/// Chunk sources, blocks destination and build tuning.
#[derive(Args, Debug, Clone)]
pub struct BuildFlags {
    /// Where the chunks are.
    #[command(flatten)]
    pub chunk_stores: ChunkStoreFlags,
    /// Blocks bucket or directory; blocks land at <output>/<tenant>/<ULID>/.
    #[arg(long, env = "BLOCKSCONVERT_OUTPUT")]
    pub output: String,
    /// Cortex schema config (selects the chunk store per period).
    #[arg(long, env = "BLOCKSCONVERT_SCHEMA", alias = "schema-config-file")]
    pub schema: Option<PathBuf>,
    /// Local state and scratch (default: below the per-user state directory,
    /// ~/.local/state/blocksconvert, never the current directory).
    #[arg(long, env = "BLOCKSCONVERT_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// CPU worker threads per plan (default: all cores).
    #[arg(long, env = "BLOCKSCONVERT_WORKERS")]
    pub workers: Option<usize>,
    /// Series fetched ahead from remote chunk stores.
    #[arg(long, env = "BLOCKSCONVERT_FETCH_CONCURRENCY", default_value_t = 32)]
    pub fetch_concurrency: usize,
    /// Memory for series records before the sorter spills to disk (e.g. 64MiB).
    #[arg(long, env = "BLOCKSCONVERT_MEMORY_BUDGET", default_value = "64MiB", value_parser = config_file::parse_size)]
    pub memory_budget: usize,
    /// Largest fraction of missing or bad chunks with which a plan still finishes.
    #[arg(
        long,
        env = "BLOCKSCONVERT_MAX_BAD_CHUNK_FRACTION",
        default_value_t = 0.05
    )]
    pub max_bad_chunk_fraction: f64,
    /// Snap timestamps within this distance of a whole second (Cortex
    /// -builder.timestamp-tolerance; 0 = off).
    #[arg(long, env = "BLOCKSCONVERT_TIMESTAMP_TOLERANCE", default_value = "0ms", value_parser = humantime::parse_duration)]
    pub timestamp_tolerance: Duration,
    /// Keep the local block directory under the work dir after upload.
    #[arg(long)]
    pub keep_local_block: bool,
    /// Object store endpoint, credentials, timeouts.
    #[command(flatten)]
    pub storage: StorageFlags,
}

impl BuildFlags {
    /// The chunk stores (one per schema store type, `--chunks` for the rest).
    pub fn chunk_stores(&self) -> Result<ChunkStores, FlagsError> {
        let schema = self.schema.as_deref().map(SchemaConfig::load).transpose()?;
        self.chunk_stores.open(schema, &self.storage.options())
    }

    /// The chunk stores of a command that also reads a Bigtable index
    /// `bigtable_index` (Bigtable chunk periods default to its instance).
    pub fn chunk_stores_beside_index(
        &self,
        bigtable_index: Option<&str>,
    ) -> Result<ChunkStores, FlagsError> {
        let schema = self.schema.as_deref().map(SchemaConfig::load).transpose()?;
        self.chunk_stores
            .open_beside_index(schema, &self.storage.options(), bigtable_index)
    }

    /// The blocks destination.
    pub fn blocks(&self) -> Result<StoreLocation, FlagsError> {
        open_flag("--output", &self.output, &self.storage.options(), true)
    }

    /// `--work-dir`, or `<per-user state dir>/<default_name>`.
    pub fn work_dir_or(&self, default_name: &str) -> Result<PathBuf, FlagsError> {
        match &self.work_dir {
            Some(d) => Ok(d.clone()),
            None => state_dir().map(|d| d.join(default_name)),
        }
    }

    /// The build configuration (work dir `--work-dir` or `<state dir>/builder`).
    pub fn build_config(&self) -> Result<BuildConfig, FlagsError> {
        if !(0.0..=1.0).contains(&self.max_bad_chunk_fraction) {
            return Err(FlagsError::Invalid {
                flag: "--max-bad-chunk-fraction",
                reason: format!("{} must be between 0 and 1", self.max_bad_chunk_fraction),
            });
        }
        Ok(BuildConfig {
            work_dir: self.work_dir_or("builder")?,
            workers: self
                .workers
                .unwrap_or_else(|| BuildConfig::default().workers),
            fetch_concurrency: self.fetch_concurrency,
            memory_budget: self.memory_budget,
            max_bad_chunk_fraction: self.max_bad_chunk_fraction,
            timestamp_tolerance_ms: self.timestamp_tolerance.as_millis() as i64,
            fetch: FetchPolicy {
                retries: self.storage.max_retries,
                timeout: self.storage.request_timeout,
                ..FetchPolicy::default()
            },
            keep_local_block: self.keep_local_block,
            ..BuildConfig::default()
        })
    }
}
