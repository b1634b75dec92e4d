//! TLS configurations from PEM files: the scheduler's (gRPC with optional client
//! certificates, HTTP with the same server certificate) and its clients'. Files are
//! parsed at start, so a wrong path or a key that does not match its certificate
//! stops the process with the flag named, not the first handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::SecurityError;

/// Makes ring the process's TLS crypto provider (tonic's server asks for the process
/// default, and more than one provider is linked). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is installed already: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(path: &Path, flag: &'static str) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}

fn certificates(
    pem: &[u8],
    path: &Path,
    flag: &'static str,
) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SecurityError::Invalid {
            flag,
            reason: format!("{}: {e}", path.display()),
        })?;
    if certs.is_empty() {
        return Err(SecurityError::Invalid {
            flag,
            reason: format!("{}: no PEM certificate in the file", path.display()),
        });
    }
    Ok(certs)
}

fn private_key(
    pem: &[u8],
    path: &Path,
    flag: &'static str,
) -> Result<PrivateKeyDer<'static>, SecurityError> {
    // The error never quotes the file: it holds a private key.
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| SecurityError::Invalid {
        flag,
        reason: format!("{}: no PEM private key in the file", path.display()),
    })
}

/// The scheduler's TLS settings.
#[derive(Clone)]
pub struct ServerTls {
    /// For the gRPC listener (client certificates required when `mutual`).
    pub grpc: ServerTlsConfig,
    /// For the HTTP listener (server certificate only: probes carry no client
    /// certificate; admin actions need the bearer token).
    pub http: Arc<rustls::ServerConfig>,
    /// gRPC clients must present a certificate signed by the client CA.
    pub mutual: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

/// Server TLS from a certificate chain and key, plus a client CA for mutual TLS.
pub fn server_tls(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<ServerTls, SecurityError> {
    install_crypto_provider();
    let cert_pem = read(cert_file, "--tls.cert-file")?;
    let key_pem = read(key_file, "--tls.key-file")?;
    let certs = certificates(&cert_pem, cert_file, "--tls.cert-file")?;
    let key = private_key(&key_pem, key_file, "--tls.key-file")?;
    let mut http = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SecurityError::Invalid {
        flag: "--tls.cert-file",
        reason: e.to_string(),
    })?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| SecurityError::Invalid {
        flag: "--tls.key-file",
        reason: format!(
            "{} does not fit {}: {e}",
            key_file.display(),
            cert_file.display()
        ),
    })?;
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut grpc = ServerTlsConfig::new().identity(Identity::from_pem(&cert_pem, &key_pem));
    if let Some(ca_file) = client_ca_file {
        let ca_pem = read(ca_file, "--tls.client-ca-file")?;
        certificates(&ca_pem, ca_file, "--tls.client-ca-file")?;
        grpc = grpc.client_ca_root(Certificate::from_pem(ca_pem));
    }
    Ok(ServerTls {
        grpc,
        http: Arc::new(http),
        mutual: client_ca_file.is_some(),
    })
}

/// Client TLS trusting `ca_file`, presenting `identity` (certificate, key) when the
/// server demands one, checking the server's name as `server_name` when given.
pub fn client_tls(
    ca_file: &Path,
    identity: Option<(&Path, &Path)>,
    server_name: Option<&str>,
) -> Result<ClientTlsConfig, SecurityError> {
    install_crypto_provider();
    let ca_pem = read(ca_file, "--scheduler.tls-ca-file")?;
    certificates(&ca_pem, ca_file, "--scheduler.tls-ca-file")?;
    let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some((cert_file, key_file)) = identity {
        let cert_pem = read(cert_file, "--scheduler.tls-cert-file")?;
        let key_pem = read(key_file, "--scheduler.tls-key-file")?;
        certificates(&cert_pem, cert_file, "--scheduler.tls-cert-file")?;
        private_key(&key_pem, key_file, "--scheduler.tls-key-file")?;
        cfg = cfg.identity(Identity::from_pem(cert_pem, key_pem));
    }
    if let Some(name) = server_name {
        cfg = cfg.domain_name(name);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_tls_names_the_bad_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let wrong_key = dir.path().join("other.pem");
        std::fs::write(&cert, ca.cert.pem()).expect("write");
        std::fs::write(&key, ca.signing_key.serialize_pem()).expect("write");
        std::fs::write(&wrong_key, other.signing_key.serialize_pem()).expect("write");
        assert!(server_tls(&cert, &key, None).is_ok());
        assert!(server_tls(&cert, &key, Some(&cert)).is_ok_and(|t| t.mutual));
        let e = server_tls(&cert, &wrong_key, None).expect_err("mismatch");
        assert!(e.to_string().contains("--tls.key-file"), "{e}");
        let e = server_tls(&key, &key, None).expect_err("no cert");
        assert!(e.to_string().contains("--tls.cert-file"), "{e}");
        let e = server_tls(&dir.path().join("missing"), &key, None).expect_err("missing");
        assert!(e.to_string().contains("missing"), "{e}");
        let e = client_tls(&key, None, None).expect_err("not a CA");
        assert!(e.to_string().contains("--scheduler.tls-ca-file"), "{e}");
    }
}
