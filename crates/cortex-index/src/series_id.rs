//! Series IDs: `base64(sha256(labelString))`, and the helpers built on the same hash.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use sha2::{Digest, Sha256};

/// Prometheus' `labels.String()` form used by Cortex: `name{a="x", b="y"}`
/// (just `name` when `__name__` is the only label). Values are Go-quoted.
pub fn label_string(labels: &[(String, String)]) -> String {
    let name = labels
        .iter()
        .find(|(n, _)| n == "__name__")
        .map(|(_, v)| v.as_str());
    let others: Vec<&(String, String)> = labels.iter().filter(|(n, _)| n != "__name__").collect();
    if others.is_empty()
        && let Some(name) = name
    {
        return name.to_owned();
    }
    let mut s = String::from(name.unwrap_or(""));
    s.push('{');
    for (i, (n, v)) in others.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n);
        s.push('=');
        go_quote(&mut s, v);
    }
    s.push('}');
    s
}

/// Go `strconv.Quote`. Printability follows Go's `unicode.IsPrint` for ASCII and for
/// the common invisible code points; other non-ASCII text is copied, which matches
/// Go for every letter, mark, number, punctuation and symbol.
fn go_quote(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
}

fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return true; // control characters were handled by the caller
    }
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(u, 0xad | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0xfeff | 0xfff9..=0xfffb)
        || (0xe000..=0xf8ff).contains(&u)
        || u >= 0xf0000)
}

/// `base64_std_nopad(sha256(bytes))`.
pub fn sha256_b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(Sha256::digest(bytes))
}

/// The series ID of a (normalised, name-sorted) label set.
pub fn series_id(labels: &[(String, String)]) -> String {
    sha256_b64(label_string(labels).as_bytes())
}

/// The value hash used by label→series rows.
pub fn value_hash(value: &str) -> String {
    sha256_b64(value.as_bytes())
}

/// The v10/v11 row shard of a series: first four ASCII bytes of its ID, BE, mod shards.
pub fn shard(series_id: &str, row_shards: u32) -> u32 {
    let b = series_id.as_bytes();
    let word = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    word % row_shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn spec_vectors() {
        let up = l(&[("__name__", "up"), ("job", "node")]);
        assert_eq!(label_string(&up), "up{job=\"node\"}");
        assert_eq!(
            series_id(&up),
            "Uu1K7DI7IcXNgNR3d4psYf/gxT4sEM4W5tIsjrXXXSc"
        );
        assert_eq!(
            value_hash("node"),
            "VF6lOEYQA+/cjIHCRFMbAD9vJs/M9sAHOzI5/e30lEY"
        );
        assert_eq!(shard("Uu1K7DI7IcXNgNR3d4psYf/gxT4sEM4W5tIsjrXXXSc", 16), 11);
        let tricky = l(&[
            ("__name__", "http_requests_total"),
            ("method", "GET"),
            ("path", "/a \"b\"\n"),
        ]);
        assert_eq!(
            label_string(&tricky),
            r#"http_requests_total{method="GET", path="/a \"b\"\n"}"#
        );
        assert_eq!(
            series_id(&tricky),
            "KMvLCMJEeOTSQXBAuQdgRB1Jdm7YiCkMFgFk1OK3R+8"
        );
        assert_eq!(
            label_string(&l(&[("a", "é\u{a0}\u{1}")])),
            r#"{a="é\u00a0\x01"}"#
        );
        assert_eq!(label_string(&l(&[("__name__", "up")])), "up");
    }
}
