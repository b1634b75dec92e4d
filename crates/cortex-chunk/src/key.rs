//! External chunk keys: the new checksummed hex form and the legacy decimal form.

use std::fmt;

/// Why a chunk key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Wrong number of `/`- or `:`-separated parts.
    #[error("chunk key {key:?}: {reason}")]
    Shape {
        /// The key as given.
        key: String,
        /// What is wrong with its structure.
        reason: &'static str,
    },
    /// A numeric field did not parse.
    #[error("chunk key {key:?}: field {field} ({text:?}) is not a valid number")]
    Field {
        /// The key as given.
        key: String,
        /// Which field.
        field: &'static str,
        /// The field's text.
        text: String,
    },
    /// The key's user part is not the tenant being processed.
    #[error("chunk key {key:?} belongs to user {key_user:?}, expected {expected:?}")]
    WrongUser {
        /// The key as given.
        key: String,
        /// User found in the key.
        key_user: String,
        /// Tenant of the plan.
        expected: String,
    },
}

/// Identity of one chunk object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkKey {
    /// Tenant.
    pub user: String,
    /// Opaque series fingerprint.
    pub fingerprint: u64,
    /// First sample time, ms, inclusive.
    pub from: i64,
    /// Last sample time, ms, inclusive.
    pub through: i64,
    /// CRC-32C of the whole object; `None` for legacy keys.
    pub checksum: Option<u32>,
}

impl ChunkKey {
    /// Parses a chunk ID as found in the index or a plan. Legacy (decimal, user-less)
    /// keys take their user from `user`; new keys must name the same user.
    pub fn parse_for_user(id: &str, user: &str) -> Result<Self, KeyError> {
        if id.contains('/') {
            let key = Self::parse_new(id)?;
            if key.user != user {
                return Err(KeyError::WrongUser {
                    key: id.to_owned(),
                    key_user: key.user,
                    expected: user.to_owned(),
                });
            }
            Ok(key)
        } else {
            Self::parse_legacy(id, user)
        }
    }

    /// Parses a new-format key `<user>/<fp>:<from>:<through>:<crc>` (hex).
    pub fn parse_new(id: &str) -> Result<Self, KeyError> {
        let shape = |reason| KeyError::Shape {
            key: id.to_owned(),
            reason,
        };
        let mut parts = id.split('/');
        let (Some(user), Some(rest), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(shape(
                "expected exactly one '/' between user and chunk fields",
            ));
        };
        let fields: Vec<&str> = rest.split(':').collect();
        let [fp, from, through, crc] = fields[..] else {
            return Err(shape("expected 4 ':'-separated fields after the user"));
        };
        Ok(Self {
            user: user.to_owned(),
            fingerprint: parse_unsigned(id, "fingerprint", fp, 16)?,
            from: parse_signed(id, "from", from, 16)?,
            through: parse_signed(id, "through", through, 16)?,
            checksum: Some(
                parse_unsigned(id, "checksum", crc, 16)?
                    .try_into()
                    .map_err(|_| KeyError::Field {
                        key: id.to_owned(),
                        field: "checksum",
                        text: crc.to_owned(),
                    })?,
            ),
        })
    }

    /// Parses a legacy key `<fp>:<from>:<through>` (decimal) for `user`.
    pub fn parse_legacy(id: &str, user: &str) -> Result<Self, KeyError> {
        let fields: Vec<&str> = id.split(':').collect();
        let [fp, from, through] = fields[..] else {
            return Err(KeyError::Shape {
                key: id.to_owned(),
                reason: "legacy key needs 3 ':'-separated decimal fields",
            });
        };
        Ok(Self {
            user: user.to_owned(),
            fingerprint: parse_unsigned(id, "fingerprint", fp, 10)?,
            from: parse_signed(id, "from", from, 10)?,
            through: parse_signed(id, "through", through, 10)?,
            checksum: None,
        })
    }

    /// Parses an object-store path `<user>/<rest>` in either key form.
    pub fn parse_object_path(path: &str) -> Result<Self, KeyError> {
        let (user, rest) = path.split_once('/').ok_or_else(|| KeyError::Shape {
            key: path.to_owned(),
            reason: "object path needs a '<user>/' prefix",
        })?;
        if rest.split(':').count() == 4 {
            Self::parse_new(path)
        } else {
            Self::parse_legacy(rest, user)
        }
    }

    /// Whether this is a legacy (checksum-less) key.
    pub fn is_legacy(&self) -> bool {
        self.checksum.is_none()
    }

    /// The chunk ID as written in the index (`Chunk.ExternalKey()`).
    pub fn external_key(&self) -> String {
        self.to_string()
    }

    /// The object-store key: the external key, with the user prepended for legacy keys.
    pub fn object_path(&self) -> String {
        match self.checksum {
            Some(_) => self.to_string(),
            None => format!("{}/{}", self.user, self),
        }
    }
}

impl fmt::Display for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.checksum {
            Some(crc) => write!(
                f,
                "{}/{:x}:{}:{}:{:x}",
                self.user,
                self.fingerprint,
                SignedHex(self.from),
                SignedHex(self.through),
                crc
            ),
            None => write!(f, "{}:{}:{}", self.fingerprint, self.from, self.through),
        }
    }
}

/// Go's `%x` of a signed integer: `-` then the magnitude's hex.
struct SignedHex(i64);

impl fmt::Display for SignedHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            write!(f, "-{:x}", self.0.unsigned_abs())
        } else {
            write!(f, "{:x}", self.0)
        }
    }
}

fn field_err(key: &str, field: &'static str, text: &str) -> KeyError {
    KeyError::Field {
        key: key.to_owned(),
        field,
        text: text.to_owned(),
    }
}

/// Go `strconv.ParseUint`: no sign, at least one digit.
fn parse_unsigned(key: &str, field: &'static str, text: &str, radix: u32) -> Result<u64, KeyError> {
    if text.is_empty() || text.starts_with('+') {
        return Err(field_err(key, field, text));
    }
    u64::from_str_radix(text, radix).map_err(|_| field_err(key, field, text))
}

/// Go `strconv.ParseInt`: optional sign, at least one digit.
fn parse_signed(key: &str, field: &'static str, text: &str, radix: u32) -> Result<i64, KeyError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(field_err(key, field, text));
    }
    i64::from_str_radix(text, radix).map_err(|_| field_err(key, field, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_key_round_trips_without_zero_padding() {
        let id = "user1/1a2b3c4d5e6f7081:174876e8000:174876ef530:50e90e4";
        let k = ChunkKey::parse_for_user(id, "user1").expect("parses");
        assert_eq!(k.fingerprint, 0x1a2b3c4d5e6f7081);
        assert_eq!(k.from, 1600000000000);
        assert_eq!(k.through, 1600000030000);
        assert_eq!(k.checksum, Some(0x050e90e4));
        assert_eq!(k.to_string(), id);
        assert_eq!(k.object_path(), id);
    }

    #[test]
    fn legacy_key_takes_the_plan_user() {
        let k =
            ChunkKey::parse_for_user("12841356518008576258:1605781935009:1605783719988", "acme")
                .expect("parses");
        assert_eq!(k.user, "acme");
        assert!(k.is_legacy());
        assert_eq!(
            k.object_path(),
            "acme/12841356518008576258:1605781935009:1605783719988"
        );
        let again = ChunkKey::parse_object_path(&k.object_path()).expect("path parses");
        assert_eq!(again, k);
    }

    #[test]
    fn negative_times_and_upper_case_are_accepted() {
        let k = ChunkKey::parse_new("u/FF:-10:0A:00000001").expect("parses");
        assert_eq!(
            (k.fingerprint, k.from, k.through, k.checksum),
            (255, -16, 10, Some(1))
        );
        assert_eq!(k.to_string(), "u/ff:-10:a:1");
    }

    #[test]
    fn malformed_keys_are_errors() {
        for bad in [
            "u/1:2:3",
            "u/1:2:3:4:5",
            "a/b/1:2:3:4",
            "u/0x1:2:3:4",
            "u/+1:2:3:4",
            "u/1:2:3:100000000",
            "u/:2:3:4",
            "u/1:--2:3:4",
        ] {
            assert!(ChunkKey::parse_new(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            ChunkKey::parse_for_user("other/1:2:3:4", "u"),
            Err(KeyError::WrongUser { .. })
        ));
        assert!(ChunkKey::parse_legacy("1:2", "u").is_err());
        assert!(ChunkKey::parse_legacy("a:2:3", "u").is_err());
    }
}
