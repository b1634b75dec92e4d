//! `blocksconvert load-index`: restores DynamoDB exports into a DynamoDB(-compatible)
//! endpoint with Cortex's index key schema — for dry runs of the live scanner against
//! DynamoDB Local or dynalite, and for the live-path benchmark.

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
    #[arg(long)]
    export: PathBuf,
    /// DynamoDB endpoint (e.g. http://127.0.0.1:8000); the AWS chain provides credentials.
    #[arg(long = "dynamodb.endpoint", env = "BLOCKSCONVERT_DYNAMODB_ENDPOINT")]
    endpoint: String,
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
    runtime.block_on(async {
        let dynamo = DynamoSource::connect(DynamoOptions {
            region: a.region.clone(),
            endpoint: Some(a.endpoint.clone()),
            ..DynamoOptions::default()
        })
        .await?;
        let started = Instant::now();
        for export in find_exports(&a.export)? {
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
