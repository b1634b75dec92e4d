//! `blocksconvert bucket ls|verify|analyze`: what a blocks bucket holds per tenant,
//! blocks that overlap or repeat a range (like `thanos tools bucket ls|verify`), and a
//! block's label cardinality (like `promtool tsdb analyze`).

use anyhow::Context;
use clap::{Args, Subcommand};
use cortex_index::schema::format_day;
use flags::StorageFlags;
use storage::StoreLocation;
use tsdb_block::analyze::{Analysis, analyze};
use tsdb_block::index::IndexReader;
use tsdb_block::meta::BlockMeta;

#[derive(Subcommand)]
pub enum BucketCommand {
    /// List every block per tenant: ULID, UTC range, series, samples, who wrote it.
    Ls(BucketArgs),
    /// Find blocks of one tenant whose time ranges overlap (or repeat); exit 1 if any.
    Verify(BucketArgs),
    /// Label and cardinality analysis of blocks (the figures of `promtool tsdb
    /// analyze`), reading only their index.
    Analyze(AnalyzeArgs),
}

#[derive(Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Only this block (ULID); every block of the selected tenants when absent.
    #[arg(long)]
    block: Option<String>,
    /// Lines per list.
    #[arg(long, default_value_t = 20)]
    limit: usize,
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
        BucketCommand::Analyze(a) => {
            let mut blocks = runtime.block_on(list(&a.bucket))?;
            if let Some(ulid) = &a.block {
                blocks.retain(|b| &b.ulid == ulid);
                if blocks.is_empty() {
                    anyhow::bail!("--block {ulid}: no such block in {}", a.bucket.blocks);
                }
            }
            let location =
                StoreLocation::open(&a.bucket.blocks, &a.bucket.storage.options(), false)
                    .with_context(|| format!("--blocks {}", a.bucket.blocks))?;
            for (i, b) in blocks.iter().enumerate() {
                let key = format!("{}/{}/index", b.tenant, b.ulid);
                let bytes = runtime
                    .block_on(location.get(&key))
                    .with_context(|| format!("reading {}", location.describe(&key)))?;
                let index = IndexReader::from_bytes(bytes.to_vec())
                    .with_context(|| format!("reading {}", location.describe(&key)))?;
                let analysis = analyze(&index, b.meta.min_time, b.meta.max_time)
                    .with_context(|| format!("analysing {}", location.describe(&key)))?;
                if i > 0 {
                    println!();
                }
                print_analysis(b, &analysis, a.limit);
            }
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

/// One block's analysis in `promtool tsdb analyze`'s layout.
fn print_analysis(b: &Listed, a: &Analysis, limit: usize) {
    println!("Block ID: {}", b.name());
    println!("Tenant: {}", b.tenant);
    println!(
        "Range: {} .. {}",
        range_text(b.meta.min_time),
        range_text(b.meta.max_time)
    );
    println!(
        "Duration: {}",
        go_duration(b.meta.max_time.saturating_sub(b.meta.min_time))
    );
    println!("Series: {}", a.series);
    println!("Label names: {}", a.label_names);
    println!("Postings (unique label pairs): {}", a.unique_pairs);
    println!("Postings entries (total label pairs): {}", a.pair_entries);
    for (title, list) in [
        ("Label pairs most involved in churning", &a.churning_pairs),
        ("Label names most involved in churning", &a.churning_names),
        ("Most common label pairs", &a.common_pairs),
        (
            "Label names with highest cumulative label value length",
            &a.value_lengths,
        ),
        ("Highest cardinality labels", &a.cardinality),
        ("Highest cardinality metric names", &a.metric_names),
    ] {
        println!("\n{title}:");
        for (n, key) in list.iter().take(limit) {
            println!("{n} {key}");
        }
    }
}

/// Milliseconds as Go prints a duration (`24h0m0s`, `1h30m0.5s`), as promtool does.
fn go_duration(ms: i64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}", rest / 1000)
    } else {
        format!("{}", rest as f64 / 1000.0)
    };
    match (h, m) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{m}m{seconds}s"),
        _ => format!("{h}h{m}m{seconds}s"),
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
