//! `--s3.*`, `--gcs.*`, `--azure.*`, `--bigtable.emulator` and `--storage.*`: the
//! object-store settings every command takes, as [`storage::StorageOptions`].

use std::time::Duration;

use clap::Args;
use storage::StorageOptions;

/// Settings shared by every remote location a process opens.
///
/// Credentials and region also come from the standard cloud environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT`, `GOOGLE_SERVICE_ACCOUNT`,
/// `AZURE_STORAGE_ACCOUNT_NAME`, …); flags given here win.
#[derive(Args, Debug, Clone)]
pub struct StorageFlags {
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (default: AWS).
    #[arg(
        long = "s3.endpoint",
        env = "BLOCKSCONVERT_S3_ENDPOINT",
        alias = "blocks-storage.s3.endpoint"
    )]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: from the environment, else us-east-1).
    #[arg(
        long = "s3.region",
        env = "BLOCKSCONVERT_S3_REGION",
        alias = "blocks-storage.s3.region"
    )]
    pub s3_region: Option<String>,
    /// S3 access key (default: `AWS_ACCESS_KEY_ID`, instance/IRSA credentials).
    #[arg(
        long = "s3.access-key-id",
        env = "BLOCKSCONVERT_S3_ACCESS_KEY_ID",
        alias = "blocks-storage.s3.access-key-id"
    )]
    pub s3_access_key_id: Option<String>,
    /// S3 secret key (default: `AWS_SECRET_ACCESS_KEY`).
    #[arg(
        long = "s3.secret-access-key",
        env = "BLOCKSCONVERT_S3_SECRET_ACCESS_KEY",
        alias = "blocks-storage.s3.secret-access-key",
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// Allow plain-HTTP endpoints (local S3-compatible servers).
    #[arg(
        long = "s3.insecure",
        env = "BLOCKSCONVERT_S3_INSECURE",
        alias = "blocks-storage.s3.insecure"
    )]
    pub s3_insecure: bool,
    /// GCS endpoint, e.g. a local emulator `http://127.0.0.1:4443` (default: Google;
    /// `STORAGE_EMULATOR_HOST`, as Google's clients read it, works too). Without
    /// Google credentials in the environment, requests to it are not signed.
    #[arg(long = "gcs.endpoint", env = "BLOCKSCONVERT_GCS_ENDPOINT")]
    pub gcs_endpoint: Option<String>,
    /// Azure storage account (default: `AZURE_STORAGE_ACCOUNT_NAME`).
    #[arg(
        long = "azure.account-name",
        env = "BLOCKSCONVERT_AZURE_ACCOUNT_NAME",
        alias = "blocks-storage.azure.account-name"
    )]
    pub azure_account_name: Option<String>,
    /// Azure storage account key (default: `AZURE_STORAGE_ACCOUNT_KEY`, SAS or a
    /// managed identity).
    #[arg(
        long = "azure.account-key",
        env = "BLOCKSCONVERT_AZURE_ACCOUNT_KEY",
        alias = "blocks-storage.azure.account-key",
        hide_env_values = true
    )]
    pub azure_account_key: Option<String>,
    /// Azure Blob account URL, e.g. Azurite's `http://127.0.0.1:10000/devstoreaccount1`
    /// (default: `https://<account>.blob.core.windows.net`).
    #[arg(long = "azure.endpoint", env = "BLOCKSCONVERT_AZURE_ENDPOINT")]
    pub azure_endpoint: Option<String>,
    /// Bigtable emulator `host:port` for `bigtable://` locations (default:
    /// `BIGTABLE_EMULATOR_HOST`, as Google's clients read it; unset = Google with
    /// application default credentials).
    #[arg(long = "bigtable.emulator", env = "BIGTABLE_EMULATOR_HOST")]
    pub bigtable_emulator: Option<String>,
    /// Per-request timeout for remote object stores.
    #[arg(long = "storage.request-timeout", env = "BLOCKSCONVERT_STORAGE_REQUEST_TIMEOUT",
          default_value = "60s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Retries of transient errors (5xx, resets, timeouts) per request.
    #[arg(
        long = "storage.max-retries",
        env = "BLOCKSCONVERT_STORAGE_MAX_RETRIES",
        default_value_t = 5
    )]
    pub max_retries: usize,
}

impl StorageFlags {
    /// The settings these flags describe (every flag has its field: a new flag
    /// without one does not compile).
    pub fn options(&self) -> StorageOptions {
        let StorageFlags {
            s3_endpoint,
            s3_region,
            s3_access_key_id,
            s3_secret_access_key,
            s3_insecure,
            gcs_endpoint,
            azure_account_name,
            azure_account_key,
            azure_endpoint,
            bigtable_emulator,
            request_timeout,
            max_retries,
        } = self.clone();
        StorageOptions {
            s3_endpoint,
            s3_region,
            s3_access_key_id,
            s3_secret_access_key,
            s3_insecure,
            gcs_endpoint,
            azure_account_name,
            azure_account_key,
            azure_endpoint,
            bigtable_emulator,
            request_timeout,
            max_retries,
        }
    }
}
