//! `blocksconvert load-index`: restores DynamoDB exports into a DynamoDB(-compatible)
//! endpoint with Cortex's index key schema, or into a Bigtable instance in one of
//! Cortex's Bigtable layouts — for dry runs of the live scanner against DynamoDB
//! Local, dynalite or the Bigtable emulator, and for the live-path benchmarks.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use cortex_index::dynamo_export::find_exports;
use index_source::dynamo::{DynamoOptions, DynamoSource};

/// Flags of `load-index`.
#[derive(Args, Debug)]
pub struct LoadIndexArgs {
    /// Directory holding one or more DynamoDB exports (DYNAMODB_JSON).
    #[arg(long, required_unless_present = "dump")]
    export: Option<PathBuf>,
    /// With --bigtable: a directory of raw table dumps (`<table>.jsonl.gz`, every cell
    /// as stored, e.g. the corpus's `bigtable/<variant>/`) to load as they are.
    #[arg(long, conflicts_with = "export", requires = "bigtable")]
    dump: Option<PathBuf>,
    /// DynamoDB endpoint (e.g. http://127.0.0.1:8000); the AWS chain provides credentials.
    #[arg(
        long = "dynamodb.endpoint",
        env = "BLOCKSCONVERT_DYNAMODB_ENDPOINT",
        required_unless_present = "bigtable"
    )]
    endpoint: Option<String>,
    /// Load into this Bigtable instance (`bigtable://<project>/<instance>`) instead.
    #[arg(long, conflicts_with = "endpoint")]
    bigtable: Option<String>,
    /// Cortex's Bigtable layout to write: gcp, gcp-columnkey, bigtable, bigtable-hashed.
    #[arg(long = "bigtable.layout", default_value = "bigtable-hashed")]
    layout: String,
    /// Bigtable emulator `host:port` (default: `BIGTABLE_EMULATOR_HOST`).
    #[arg(long = "bigtable.emulator", env = "BIGTABLE_EMULATOR_HOST")]
    emulator: Option<String>,
    /// Region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Items written per BatchWriteItem wave (25 per request).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
}

pub fn run(a: LoadIndexArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if let Some(url) = &a.bigtable {
        return runtime.block_on(load_bigtable(&a, url));
    }
    runtime.block_on(async {
        let dynamo = DynamoSource::connect(DynamoOptions {
            region: a.region.clone(),
            endpoint: a.endpoint.clone(),
            ..DynamoOptions::default()
        })
        .await?;
        let started = Instant::now();
        let export_dir = a
            .export
            .as_deref()
            .context("--export is required for DynamoDB")?;
        for export in find_exports(export_dir)? {
            dynamo.create_index_table(&export.table).await?;
            let mut batch = Vec::with_capacity(a.batch);
            let mut result = Ok(());
            let mut loaded = 0u64;
            // Items arrive through a callback; flush waves of `batch` items.
            export.for_each_item(|item| {
                if result.is_err() {
                    return;
                }
                batch.push(item);
                if batch.len() >= a.batch.max(25) {
                    result = tokio::task::block_in_place(|| {
                        tokio::runtime::Handle::current()
                            .block_on(dynamo.put_items(&export.table, &batch))
                    });
                    loaded += batch.len() as u64;
                    batch.clear();
                }
            })?;
            result?;
            dynamo.put_items(&export.table, &batch).await?;
            loaded += batch.len() as u64;
            println!("{}: {loaded} items", export.table);
        }
        println!("loaded in {:.1}s", started.elapsed().as_secs_f64());
        anyhow::Ok(())
    })
}

/// Writes every export item as Cortex's Bigtable client of `--bigtable.layout` does
/// (family `f`, timestamp 0, the item's value or empty).
async fn load_bigtable(a: &LoadIndexArgs, url: &str) -> anyhow::Result<()> {
    use index_source::bigtable::Layout;
    let layout = Layout::from_store(&a.layout).with_context(|| {
        format!(
            "--bigtable.layout {:?}: expected gcp, gcp-columnkey, bigtable or bigtable-hashed",
            a.layout
        )
    })?;
    let mut cfg = bigtable::BigtableConfig::from_url(url)?;
    cfg.emulator = a.emulator.clone();
    let client = bigtable::Client::connect(cfg).await?;
    let started = Instant::now();
    if let Some(dir) = &a.dump {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("--dump {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let table = name.trim_end_matches(".jsonl.gz");
            let cells = bigtable::dump::load_dump(&client, table, &path).await?;
            println!("{table}: {cells} cells");
        }
        println!("loaded in {:.1}s", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let export_dir = a
        .export
        .as_deref()
        .context("--export or --dump is required")?;
    for export in find_exports(export_dir)? {
        client.create_table(&export.table, &["f"]).await?;
        let mut rows = Vec::new();
        export.for_each_item(|item| {
            let (key, qualifier) = layout.cell_for(&item.hash, &item.range);
            rows.push(bigtable::Row {
                key: key.into(),
                cells: vec![bigtable::Cell {
                    family: "f".into(),
                    qualifier: qualifier.into(),
                    timestamp_micros: 0,
                    value: item.value.unwrap_or_default().into(),
                }],
            });
        })?;
        let loaded = rows.len();
        for batch in rows.chunks(a.batch.max(1)) {
            client.write_rows(&export.table, batch).await?;
        }
        println!("{}: {loaded} items", export.table);
    }
    println!("loaded in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
