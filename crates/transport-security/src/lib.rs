//! Transport security of the control plane: TLS (optionally mutual) on the scheduler's
//! gRPC and HTTP listeners and on its clients, and a shared bearer token checked on
//! every gRPC call and on the admin endpoints. Secrets never reach a log line, an
//! error message or a `Debug` output.

pub mod tls;
pub mod token;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use tls::{ServerTls, client_tls, server_tls};
pub use token::{AttachToken, BearerToken};

/// Why a credential or certificate could not be loaded. Messages name the flag and
/// file, never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A file could not be read.
    #[error("{flag} {path}: {source}")]
    Read {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file or value has the wrong content.
    #[error("{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong (without the value).
        reason: String,
    },
}

/// Logs a prominent warning when a listener is reachable beyond loopback without TLS
/// or without a token: anyone who reaches the port could then lease, cancel or
/// complete plans.
pub fn warn_if_exposed(what: &str, addr: SocketAddr, tls: bool, token: bool) {
    if addr.ip().is_loopback() || (tls && token) {
        return;
    }
    let missing = match (tls, token) {
        (false, false) => "without TLS and without a bearer token",
        (false, true) => "without TLS (the token crosses the network in clear)",
        _ => "without a bearer token",
    };
    tracing::warn!(
        listen = %addr,
        "!!! {what} listens on {addr} {missing}: anyone who reaches this port can control the migration. \
         Set --auth.token-file and --tls.cert-file/--tls.key-file (see the README's security section)."
    );
}
