//! `--tenant` and `--ignore-tenants-regex`, as a [`TenantFilter`].

use cortex_index::tenant::{TenantFilter, TenantFilterError};

/// The tenant flags every service takes (`--tenant`, `--ignore-tenants-regex`, with the
/// Cortex scanner's and scheduler's names as aliases).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TenantFlags {
    /// Only these tenants (repeat or comma-separate); all when absent.
    #[arg(
        long = "tenant",
        env = "BLOCKSCONVERT_TENANTS",
        aliases = ["scanner.allowed-users", "scheduler.allowed-users"],
        value_delimiter = ','
    )]
    pub tenants: Vec<String>,
    /// Tenants whose ID matches are ignored (checked after --tenant; rejection wins).
    #[arg(
        long,
        env = "BLOCKSCONVERT_IGNORE_TENANTS_REGEX",
        aliases = ["scanner.ignore-users-regex", "scheduler.ignore-users-regex"]
    )]
    pub ignore_tenants_regex: Option<String>,
}

impl TenantFlags {
    /// The filter these flags describe.
    pub fn filter(&self) -> Result<TenantFilter, TenantFilterError> {
        TenantFilter::new(&self.tenants, self.ignore_tenants_regex.as_deref())
    }
}
