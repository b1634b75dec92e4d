//! Certificates made at test time (rcgen): a CA, a server certificate for `localhost`
//! and `127.0.0.1`, and a client certificate, written as PEM files; plus an HTTPS
//! client that trusts the CA and can send the scheduler's bearer token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// PEM files of a test PKI.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// CA certificate (trust anchor for both sides).
    pub ca: PathBuf,
    /// Server certificate and key.
    pub server_cert: PathBuf,
    /// Server key.
    pub server_key: PathBuf,
    /// Client certificate signed by the CA.
    pub client_cert: PathBuf,
    /// Client key.
    pub client_key: PathBuf,
    /// A client certificate from another, untrusted CA.
    pub rogue_cert: PathBuf,
    /// Its key.
    pub rogue_key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA cert");
    (params, key, cert.pem())
}

fn leaf(issuer: &Issuer<'_, KeyPair>, names: &[&str], cn: &str) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

impl TestPki {
    /// Generates everything into `dir`.
    pub fn generate(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("pki dir");
        let (ca_params, ca_key, ca_pem) = ca("blocksconvert test CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let (server_cert, server_key) = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            "blocksconvert-scheduler",
        );
        let (client_cert, client_key) = leaf(&issuer, &[], "blocksconvert-builder");
        let (rogue_params, rogue_ca_key, _) = ca("someone else's CA");
        let rogue_issuer = Issuer::new(rogue_params, rogue_ca_key);
        let (rogue_cert, rogue_key) = leaf(&rogue_issuer, &[], "intruder");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write pem");
            p
        };
        Self {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server-key.pem", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client-key.pem", &client_key),
            rogue_cert: write("rogue.pem", &rogue_cert),
            rogue_key: write("rogue-key.pem", &rogue_key),
        }
    }

    /// Scheduler flags serving TLS (with mutual TLS when `mutual`).
    pub fn server_flags(&self, mutual: bool) -> Vec<String> {
        let mut f = vec![
            "--tls.cert-file".to_owned(),
            self.server_cert.display().to_string(),
            "--tls.key-file".to_owned(),
            self.server_key.display().to_string(),
        ];
        if mutual {
            f.extend([
                "--tls.client-ca-file".to_owned(),
                self.ca.display().to_string(),
            ]);
        }
        f
    }

    /// Builder flags trusting the CA and presenting the client certificate.
    pub fn client_flags(&self, with_client_cert: bool) -> Vec<String> {
        let mut f = vec![
            "--scheduler.tls-ca-file".to_owned(),
            self.ca.display().to_string(),
        ];
        if with_client_cert {
            f.extend([
                "--scheduler.tls-cert-file".to_owned(),
                self.client_cert.display().to_string(),
                "--scheduler.tls-key-file".to_owned(),
                self.client_key.display().to_string(),
            ]);
        }
        f
    }

    /// An HTTP client trusting the CA.
    pub fn https_agent(&self) -> ureq::Agent {
        let pem = std::fs::read(&self.ca).expect("ca");
        let cert = ureq::tls::Certificate::from_pem(&pem)
            .expect("ca pem")
            .to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .build()
            .into()
    }
}

/// A GET or POST answer: status and body (`None` when the connection failed).
pub fn http_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
) -> Option<(u16, String)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let resp = if method == "POST" {
        let mut req = agent.post(url);
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        req.send_empty()
    } else {
        let mut req = agent.get(url);
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        req.call()
    };
    let mut resp = resp.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.body_mut().read_to_string().unwrap_or_default()))
}
