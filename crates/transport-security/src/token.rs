//! The shared bearer token: `authorization: Bearer <token>` on every gRPC call and
//! admin request. The server keeps only its SHA-256 and compares in constant time.

use std::path::Path;
use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::SecurityError;

/// Header carrying the token (HTTP `Authorization`, gRPC metadata `authorization`).
pub const AUTHORIZATION: &str = "authorization";

/// A bearer token. `Debug` never shows it.
#[derive(Clone)]
pub struct BearerToken {
    value: Arc<str>,
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// A token from its text (surrounding whitespace, such as a file's final newline,
    /// is ignored). It must be at least 16 visible ASCII characters.
    pub fn new(text: &str, flag: &'static str) -> Result<Self, SecurityError> {
        let value = text.trim();
        if value.len() < 16 {
            return Err(SecurityError::Invalid {
                flag,
                reason: format!(
                    "the token has {} characters; use at least 16 (e.g. `openssl rand -hex 32`)",
                    value.len()
                ),
            });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecurityError::Invalid {
                flag,
                reason: "the token must be visible ASCII characters without spaces".into(),
            });
        }
        Ok(Self {
            digest: Sha256::digest(value.as_bytes()).into(),
            value: value.into(),
        })
    }

    /// A random token (256 bits), e.g. for a process talking to itself on loopback.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let value = hex::encode(bytes);
        Self {
            digest: Sha256::digest(value.as_bytes()).into(),
            value: value.into(),
        }
    }

    /// The token from `file` (preferred) or from `value` (an environment variable);
    /// `None` when neither is set.
    pub fn load(
        file: Option<&Path>,
        value: Option<&str>,
        file_flag: &'static str,
        value_flag: &'static str,
    ) -> Result<Option<Self>, SecurityError> {
        match (file, value) {
            (Some(_), Some(_)) => Err(SecurityError::Invalid {
                flag: file_flag,
                reason: format!("set either {file_flag} or {value_flag}, not both"),
            }),
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecurityError::Read {
                    flag: file_flag,
                    path: path.to_owned(),
                    source,
                })?;
                Self::new(&text, file_flag).map(Some)
            }
            (None, Some(v)) => Self::new(v, value_flag).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Whether an `Authorization` header value carries this token (constant time in
    /// the presented token's content).
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some(h) = header else { return false };
        let Some((scheme, presented)) = h.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        bool::from(digest.ct_eq(&self.digest))
    }

    /// Whether gRPC metadata carries this token.
    pub fn accepts_metadata(&self, md: &MetadataMap) -> bool {
        self.accepts(md.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
    }

    /// `Bearer <token>`, for clients.
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.value)
    }
}

/// Client interceptor adding the token to every call (no-op without a token).
#[derive(Clone, Debug, Default)]
pub struct AttachToken(Option<AsciiMetadataValue>);

impl AttachToken {
    /// Attaches `token`.
    pub fn new(token: Option<&BearerToken>) -> Self {
        // Tokens are visible ASCII by construction, so the value always parses.
        Self(token.and_then(|t| t.header_value().parse().ok()))
    }
}

impl tonic::service::Interceptor for AttachToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(AUTHORIZATION, v.clone());
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_bearer_token() {
        let t = BearerToken::new("0123456789abcdef-token\n", "--auth.token").expect("token");
        assert!(t.accepts(Some("Bearer 0123456789abcdef-token")));
        assert!(t.accepts(Some("bearer 0123456789abcdef-token")));
        assert!(!t.accepts(Some("Bearer 0123456789abcdef-tokeN")));
        assert!(!t.accepts(Some("Basic 0123456789abcdef-token")));
        assert!(!t.accepts(Some("0123456789abcdef-token")));
        assert!(!t.accepts(None));
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn short_or_blank_tokens_are_refused_without_echoing_them() {
        let e = BearerToken::new("hunter2", "--auth.token").expect_err("short");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(BearerToken::new("with a space in the middle!", "--auth.token").is_err());
        let g = BearerToken::generate();
        assert!(g.accepts(Some(&g.header_value())));
    }
}
