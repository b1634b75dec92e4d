//! `--auth.*`, `--tls.*` and `--scheduler.tls-*`: the security settings of the scheduler (server side) and of
//! its clients (builders). Values may come from files or environment variables; the
//! token itself is best kept in a file (a Kubernetes Secret) or `BLOCKSCONVERT_AUTH_TOKEN`.

use std::path::PathBuf;

use clap::Args;
use tonic::transport::ClientTlsConfig;

use transport_security::token::BearerToken;
use transport_security::{SecurityError, ServerTls, client_tls, server_tls};

/// The shared bearer token, from a file or the environment (scheduler and clients
/// read the same flags, so one Secret serves both).
#[derive(Args, Debug, Clone, Default)]
pub struct TokenFlags {
    /// File holding the bearer token every gRPC call and admin request carries.
    #[arg(long = "auth.token-file", env = "BLOCKSCONVERT_AUTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The bearer token itself (prefer --auth.token-file; a command line is visible to
    /// every local user).
    #[arg(
        long = "auth.token",
        env = "BLOCKSCONVERT_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl TokenFlags {
    /// The bearer token, if configured.
    pub fn load(&self) -> Result<Option<BearerToken>, SecurityError> {
        BearerToken::load(
            self.token_file.as_deref(),
            self.token.as_deref(),
            "--auth.token-file",
            "--auth.token",
        )
    }
}

/// The scheduler's listeners: TLS certificate, optional client CA, bearer token.
#[derive(Args, Debug, Clone, Default)]
pub struct ServerSecurityFlags {
    /// Bearer token.
    #[command(flatten)]
    pub auth: TokenFlags,
    /// PEM certificate chain: serve gRPC and HTTP over TLS.
    #[arg(
        long = "tls.cert-file",
        env = "BLOCKSCONVERT_TLS_CERT_FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls.cert-file.
    #[arg(
        long = "tls.key-file",
        env = "BLOCKSCONVERT_TLS_KEY_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA: gRPC clients must present a certificate it signed (mutual TLS).
    #[arg(
        long = "tls.client-ca-file",
        env = "BLOCKSCONVERT_TLS_CLIENT_CA_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_client_ca_file: Option<PathBuf>,
}

impl ServerSecurityFlags {
    /// The bearer token, if configured.
    pub fn token(&self) -> Result<Option<BearerToken>, SecurityError> {
        self.auth.load()
    }

    /// The TLS settings, if a certificate is configured.
    pub fn tls(&self) -> Result<Option<ServerTls>, SecurityError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => {
                server_tls(cert, key, self.tls_client_ca_file.as_deref()).map(Some)
            }
            (None, None) => Ok(None),
            _ => Err(SecurityError::Invalid {
                flag: "--tls.cert-file",
                reason: "--tls.cert-file and --tls.key-file go together".into(),
            }),
        }
    }
}

/// A client of the scheduler: bearer token, CA to trust, client certificate.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientSecurityFlags {
    /// Bearer token.
    #[command(flatten)]
    pub auth: TokenFlags,
    /// PEM CA that signed the scheduler's certificate: connect over TLS.
    #[arg(
        long = "scheduler.tls-ca-file",
        env = "BLOCKSCONVERT_SCHEDULER_TLS_CA_FILE"
    )]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate (for a scheduler that requires mutual TLS).
    #[arg(
        long = "scheduler.tls-cert-file",
        env = "BLOCKSCONVERT_SCHEDULER_TLS_CERT_FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --scheduler.tls-cert-file.
    #[arg(
        long = "scheduler.tls-key-file",
        env = "BLOCKSCONVERT_SCHEDULER_TLS_KEY_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
    /// Name to expect in the scheduler's certificate (default: the host of --scheduler).
    #[arg(
        long = "scheduler.tls-server-name",
        env = "BLOCKSCONVERT_SCHEDULER_TLS_SERVER_NAME"
    )]
    pub tls_server_name: Option<String>,
}

impl ClientSecurityFlags {
    /// The bearer token, if configured.
    pub fn token(&self) -> Result<Option<BearerToken>, SecurityError> {
        self.auth.load()
    }

    /// Client TLS, when a CA is given (required for an `https://` scheduler).
    pub fn tls(&self, https: bool) -> Result<Option<ClientTlsConfig>, SecurityError> {
        let Some(ca) = &self.tls_ca_file else {
            if https || self.tls_cert_file.is_some() {
                return Err(SecurityError::Invalid {
                    flag: "--scheduler.tls-ca-file",
                    reason: "TLS to the scheduler needs the CA that signed its certificate".into(),
                });
            }
            return Ok(None);
        };
        let identity = self
            .tls_cert_file
            .as_deref()
            .zip(self.tls_key_file.as_deref());
        client_tls(ca, identity, self.tls_server_name.as_deref()).map(Some)
    }
}
