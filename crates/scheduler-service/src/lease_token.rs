//! Per-lease secrets. `Lease` hands the worker a random token; every later call about
//! that lease (heartbeat, completion, failure, release) must present it. The scheduler
//! keeps only its SHA-256 (in memory and in the `.attempt.<n>` marker, so a restarted
//! scheduler can tell the real holder from someone who read a worker name and an
//! attempt number off `/plans`). Comparisons run in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A lease's secret as handed to the worker. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// A fresh random token (256 bits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The value to send to the worker.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the scheduler keeps.
    pub fn proof(&self) -> LeaseProof {
        LeaseProof::of(&self.0)
    }
}

impl std::fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseToken(<redacted>)")
    }
}

/// The SHA-256 of a lease token: enough to check a presented token, useless to forge one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LeaseProof([u8; 32]);

impl LeaseProof {
    /// The proof of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `token` is the lease's secret (constant time in the token's content).
    pub fn accepts(&self, token: &str) -> bool {
        bool::from(Self::of(token).0.ct_eq(&self.0))
    }

    /// Hex form, as stored in the attempt marker.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form; `None` when malformed.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl std::fmt::Debug for LeaseProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseProof(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_accepts_only_its_token() {
        let t = LeaseToken::generate();
        let p = t.proof();
        assert!(p.accepts(t.expose()));
        assert!(!p.accepts(""));
        assert!(!p.accepts(LeaseToken::generate().expose()));
        assert_eq!(LeaseProof::from_hex(&p.to_hex()), Some(p));
        assert_eq!(LeaseProof::from_hex("zz"), None);
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
