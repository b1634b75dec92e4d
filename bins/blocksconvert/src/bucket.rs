//! `blocksconvert bucket ls|verify`: what a blocks bucket holds per tenant, and blocks
//! that overlap or repeat a range (like `thanos tools bucket ls|verify`).

use anyhow::Context;
use clap::{Args, Subcommand};
use cortex_index::schema::format_day;
use flags::StorageFlags;
use storage::StoreLocation;
use tsdb_block::meta::BlockMeta;

#[derive(Subcommand)]
pub enum BucketCommand {
    /// List every block per tenant: ULID, UTC range, series, samples, who wrote it.
    Ls(BucketArgs),
    /// Find blocks of one tenant whose time ranges overlap (or repeat); exit 1 if any.
    Verify(BucketArgs),
}

#[derive(Args)]
pub struct BucketArgs {
    /// Blocks bucket or directory (`<tenant>/<ULID>/meta.json`).
    #[arg(long, env = "BLOCKSCONVERT_BLOCKS")]
    blocks: String,
    /// Only these tenants (repeat or comma-separate).
    #[arg(long = "tenant", value_delimiter = ',')]
    tenants: Vec<String>,
    /// Object store endpoint, credentials, timeouts.
    #[command(flatten)]
    storage: StorageFlags,
}

/// One block as its meta.json describes it.
struct Listed {
    tenant: String,
    /// The block's directory name: its ULID in the bucket.
    ulid: String,
    meta: BlockMeta,
}

impl Listed {
    /// The ULID, and the meta's own when it disagrees (a copied or renamed block).
    fn name(&self) -> String {
        if self.meta.ulid == self.ulid {
            self.ulid.clone()
        } else {
            format!("{} (meta.json says {})", self.ulid, self.meta.ulid)
        }
    }
}

pub fn run(cmd: BucketCommand) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        BucketCommand::Ls(a) => {
            let blocks = runtime.block_on(list(&a))?;
            for b in &blocks {
                let m = &b.meta;
                println!(
                    "{}\t{}\t{} .. {}\t{} series\t{} samples\t{}",
                    b.tenant,
                    b.name(),
                    range_text(m.min_time),
                    range_text(m.max_time),
                    m.stats.num_series,
                    m.stats.num_samples,
                    if m.thanos.source.is_empty() {
                        "-"
                    } else {
                        &m.thanos.source
                    },
                );
            }
            eprintln!("{} blocks", blocks.len());
            Ok(std::process::ExitCode::SUCCESS)
        }
        BucketCommand::Verify(a) => {
            let blocks = runtime.block_on(list(&a))?;
            let problems = overlaps(&blocks);
            for p in &problems {
                println!("{p}");
            }
            println!(
                "checked {} blocks: {} overlapping pairs",
                blocks.len(),
                problems.len()
            );
            Ok(if problems.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
    }
}

/// `2020-11-19T00:00:00Z`, or the day and the milliseconds into it when not midnight.
fn range_text(ms: i64) -> String {
    let day = ms.div_euclid(cortex_index::DAY_MS);
    match ms.rem_euclid(cortex_index::DAY_MS) {
        0 => format!("{}T00:00:00Z", format_day(day)),
        rest => format!("{} +{rest}ms", format_day(day)),
    }
}

/// Every block's meta, tenant by tenant, in time order.
async fn list(a: &BucketArgs) -> anyhow::Result<Vec<Listed>> {
    let location = StoreLocation::open(&a.blocks, &a.storage.options(), false)
        .with_context(|| format!("--blocks {}", a.blocks))?;
    let mut tenants = location
        .list_dirs("")
        .await
        .context("--blocks: listing tenants")?;
    tenants.retain(|t| a.tenants.is_empty() || a.tenants.contains(t));
    tenants.sort();
    let mut out = Vec::new();
    for tenant in tenants {
        let mut ulids = location
            .list_dirs(&tenant)
            .await
            .with_context(|| format!("--blocks: listing {tenant}"))?;
        ulids.sort();
        let mut metas = Vec::new();
        for ulid in ulids {
            let key = format!("{tenant}/{ulid}/meta.json");
            let bytes = match location.get(&key).await {
                Ok(b) => b,
                // A directory without meta.json is a partial upload, not a block.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {key}")),
            };
            let meta: BlockMeta =
                serde_json::from_slice(&bytes).with_context(|| format!("parsing {key}"))?;
            metas.push(Listed {
                tenant: tenant.clone(),
                ulid,
                meta,
            });
        }
        metas.sort_by(|x, y| (x.meta.min_time, &x.ulid).cmp(&(y.meta.min_time, &y.ulid)));
        out.extend(metas);
    }
    Ok(out)
}

/// Pairs of one tenant's blocks whose `[minTime, maxTime)` ranges intersect.
fn overlaps(blocks: &[Listed]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, a) in blocks.iter().enumerate() {
        for b in blocks[i + 1..].iter().take_while(|b| b.tenant == a.tenant) {
            if b.meta.min_time >= a.meta.max_time {
                break;
            }
            let how = if (a.meta.min_time, a.meta.max_time) == (b.meta.min_time, b.meta.max_time) {
                "same range"
            } else {
                "overlap"
            };
            found.push(format!(
                "{}\t{} and {}\t{how}: {} .. {} and {} .. {}",
                a.tenant,
                a.name(),
                b.name(),
                range_text(a.meta.min_time),
                range_text(a.meta.max_time),
                range_text(b.meta.min_time),
                range_text(b.meta.max_time),
            ));
        }
    }
    found
}
