//! `blocksconvert plans retry|rebuild`: the operator's way back from a quarantined or
//! wrongly converted tenant-day, for `convert`'s plans (in its work dir) and for a
//! scheduler's plans bucket alike, without touching marker files by hand.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use flags::StorageFlags;
use scheduler_service::admin;
use storage::StoreLocation;

/// `blocksconvert plans …`.
#[derive(Subcommand)]
pub enum PlansCommand {
    /// Queue quarantined tenant-days again with a fresh set of attempts (a running
    /// scheduler or the next `convert` picks them up).
    Retry(RetryArgs),
    /// Delete the block of finished tenant-days and queue them to be built again.
    Rebuild(RebuildArgs),
}

/// Where the plans are and which tenant-days.
#[derive(Args)]
pub struct Selection {
    /// Plans location (a scheduler's --plans, or `convert`'s <work-dir>/plans).
    #[arg(long, env = "BLOCKSCONVERT_PLANS")]
    plans: String,
    /// Tenant-days as <tenant>/<YYYY-MM-DD> or <tenant>/<day index>.
    #[arg(long = "plan", value_delimiter = ',')]
    tenant_days: Vec<String>,
    /// Object store endpoint and credentials.
    #[command(flatten)]
    storage: StorageFlags,
}

/// Flags of `plans retry`.
#[derive(Args)]
pub struct RetryArgs {
    #[command(flatten)]
    selection: Selection,
    /// Every quarantined tenant-day of the plans location.
    #[arg(long, conflicts_with = "tenant_days")]
    all_failed: bool,
}

/// Flags of `plans rebuild`.
#[derive(Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    selection: Selection,
    /// The blocks bucket or directory the tenant-days were converted into.
    #[arg(long, env = "BLOCKSCONVERT_OUTPUT")]
    output: String,
}

/// `<tenant>/<date or day index>` → plan base `<tenant>/<day index>`.
fn plan_base(spec: &str) -> anyhow::Result<String> {
    let Some((tenant, day)) = spec.rsplit_once('/') else {
        bail!("--plan {spec:?}: expected <tenant>/<YYYY-MM-DD>");
    };
    let day = match day.parse::<i64>() {
        Ok(d) => d,
        Err(_) => {
            index_scan::select::parse_day_arg(day).map_err(|e| anyhow::anyhow!("--plan {e}"))?
        }
    };
    if let Some(why) = cortex_index::tenant::tenant_id_problem(tenant)
        .or_else(|| cortex_index::tenant::day_index_problem(day))
    {
        bail!("--plan {spec:?}: {why}");
    }
    Ok(format!("{tenant}/{day}"))
}

pub fn run(cmd: PlansCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        match cmd {
            PlansCommand::Retry(a) => {
                let plans =
                    StoreLocation::open(&a.selection.plans, &a.selection.storage.options(), false)
                        .context("--plans")?;
                let bases = if a.all_failed {
                    admin::quarantined(&plans).await?
                } else {
                    selected(&a.selection)?
                };
                if bases.is_empty() {
                    println!("no quarantined tenant-days in {plans}");
                }
                for base in bases {
                    println!("{}", admin::retry(&plans, &base).await?);
                }
            }
            PlansCommand::Rebuild(a) => {
                let plans =
                    StoreLocation::open(&a.selection.plans, &a.selection.storage.options(), false)
                        .context("--plans")?;
                let blocks = StoreLocation::open(&a.output, &a.selection.storage.options(), false)
                    .context("--output")?;
                for base in selected(&a.selection)? {
                    println!("{}", admin::rebuild(&plans, &blocks, &base).await?);
                }
            }
        }
        Ok(())
    })
}

fn selected(s: &Selection) -> anyhow::Result<Vec<String>> {
    if s.tenant_days.is_empty() {
        bail!("name the tenant-days with --plan <tenant>/<YYYY-MM-DD>[,…]");
    }
    s.tenant_days.iter().map(|p| plan_base(p)).collect()
}
