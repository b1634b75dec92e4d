//! The JSON metadata line inside a chunk object, with Cortex's decoding rules:
//! case-insensitive keys, times in (fractional) seconds, duplicate label names kept.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::LabelPairs;

/// Decoded chunk metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkMetadata {
    /// Series fingerprint (opaque).
    pub fingerprint: u64,
    /// Tenant.
    pub user_id: String,
    /// First sample time in ms.
    pub from: i64,
    /// Last sample time in ms.
    pub through: i64,
    /// Labels as stored, sorted by name (stably); duplicates are kept for the caller to judge.
    pub labels: LabelPairs,
    /// Raw encoding byte (0 and absent both mean DoubleDelta).
    pub encoding: u8,
}

impl ChunkMetadata {
    /// Writes the metadata line exactly as Cortex's writer lays it out (with `\n`).
    pub fn to_json_line(&self) -> String {
        let mut labels: Vec<&(String, String)> = self.labels.iter().collect();
        labels.sort();
        let mut s = String::with_capacity(128);
        s.push_str("{\"fingerprint\":");
        s.push_str(&self.fingerprint.to_string());
        s.push_str(",\"userID\":");
        push_json_string(&mut s, &self.user_id);
        s.push_str(",\"from\":");
        s.push_str(&ms_to_seconds_text(self.from));
        s.push_str(",\"through\":");
        s.push_str(&ms_to_seconds_text(self.through));
        s.push_str(",\"metric\":{");
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_json_string(&mut s, k);
            s.push(':');
            push_json_string(&mut s, v);
        }
        s.push_str("},\"encoding\":");
        s.push_str(&self.encoding.to_string());
        s.push_str("}\n");
        s
    }
}

fn push_json_string(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires and leaves HTML characters alone,
    // like Go's encoder with SetEscapeHTML(false).
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// Cortex's `model.Time` JSON form: whole seconds, then `.mmm` when not a whole second.
pub fn ms_to_seconds_text(t: i64) -> String {
    let a = t.unsigned_abs();
    let sign = if t < 0 { "-" } else { "" };
    match a % 1000 {
        0 => format!("{sign}{}", a / 1000),
        r => format!("{sign}{}.{r:03}", a / 1000),
    }
}

/// Cortex's decode: `trunc(f64(text) * 1000)` (single IEEE multiplication).
fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

impl<'de> de::Deserialize<'de> for ChunkMetadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MetadataVisitor)
    }
}

struct MetadataVisitor;

impl<'de> Visitor<'de> for MetadataVisitor {
    type Value = ChunkMetadata;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk metadata object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChunkMetadata, A::Error> {
        let mut m = ChunkMetadata::default();
        while let Some(key) = map.next_key::<String>()? {
            // json-iterator matches struct fields case-insensitively.
            match key.to_ascii_lowercase().as_str() {
                "fingerprint" => m.fingerprint = map.next_value()?,
                "userid" => m.user_id = map.next_value()?,
                "from" => m.from = seconds_to_ms(map.next_value::<f64>()?),
                "through" => m.through = seconds_to_ms(map.next_value::<f64>()?),
                "metric" => m.labels = map.next_value::<LabelList>()?.0,
                "encoding" => m.encoding = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // Cortex sorts labels by name after reading; a stable sort keeps duplicates in
        // their stored order, which makes the later conflict check deterministic.
        m.labels.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(m)
    }
}

/// A JSON object read as a list of pairs so duplicate names survive.
struct LabelList(LabelPairs);

impl<'de> de::Deserialize<'de> for LabelList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LabelList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of label names to values")
            }
            fn visit_unit<E: de::Error>(self) -> Result<LabelList, E> {
                Ok(LabelList(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LabelList, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    pairs.push((k, v));
                }
                Ok(LabelList(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_text_matches_cortex() {
        assert_eq!(ms_to_seconds_text(1600000001005), "1600000001.005");
        assert_eq!(ms_to_seconds_text(1600000000000), "1600000000");
        assert_eq!(ms_to_seconds_text(-1500), "-1.500");
        for t in [
            1600000001005i64,
            1605741120872,
            1099511627776,
            2147483647999,
        ] {
            let f: f64 = ms_to_seconds_text(t).parse().expect("number");
            assert_eq!(seconds_to_ms(f), t);
        }
    }

    #[test]
    fn keys_are_case_insensitive_and_duplicates_kept() {
        let m: ChunkMetadata = serde_json::from_str(
            r#"{"FINGERPRINT":7,"userid":"u","From":1.5,"through":2,"metric":{"b":"1","a":"x","a":"y"},"extra":[1]}"#,
        )
        .expect("parses");
        assert_eq!(m.fingerprint, 7);
        assert_eq!(m.user_id, "u");
        assert_eq!((m.from, m.through), (1500, 2000));
        assert_eq!(m.encoding, 0);
        let names: Vec<&str> = m.labels.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(names, ["a", "a", "b"]);
    }
}
