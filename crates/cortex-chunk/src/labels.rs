//! Label normalisation of chunk metadata (Cortex builder rules, spec chunk-format
//! §7.2): sort by name, drop exact duplicate pairs, reject one name with two values,
//! and require every chunk of a series to carry the same label set.

use crate::LabelPairs;

/// Why a series cannot be written (it is quarantined, not the whole plan failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelConflict {
    /// One label name with two different values in one chunk's metadata.
    #[error("label {name:?} has two values {first:?} and {second:?} in chunk {chunk}")]
    DuplicateName {
        /// Label name.
        name: String,
        /// First value.
        first: String,
        /// Second value.
        second: String,
        /// Chunk ID.
        chunk: String,
    },
    /// Two chunks of one series carry different label sets.
    #[error("chunks for multiple metrics: {first_chunk} has {first}, {other_chunk} has {other}")]
    DifferentSeries {
        /// A chunk with the first label set.
        first_chunk: String,
        /// Its labels, Prometheus text form.
        first: String,
        /// A chunk with another label set.
        other_chunk: String,
        /// Those labels.
        other: String,
    },
}

/// Normalises one chunk's labels in place.
pub fn normalise(labels: &mut LabelPairs, chunk: &str) -> Result<(), LabelConflict> {
    if !labels.is_sorted_by(|a, b| a.0 <= b.0) {
        labels.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut i = 1;
    while i < labels.len() {
        if labels[i].0 == labels[i - 1].0 {
            if labels[i].1 != labels[i - 1].1 {
                return Err(LabelConflict::DuplicateName {
                    name: labels[i].0.clone(),
                    first: labels[i - 1].1.clone(),
                    second: labels[i].1.clone(),
                    chunk: chunk.to_owned(),
                });
            }
            labels.remove(i);
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Prometheus text form `{a="b", c="d"}` for messages and reports.
pub fn to_text(labels: &[(String, String)]) -> String {
    let body: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> LabelPairs {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn sorts_dedupes_and_rejects() {
        let mut x = l(&[("job", "a"), ("__name__", "up"), ("job", "a"), ("e", "")]);
        normalise(&mut x, "c").expect("ok");
        assert_eq!(x, l(&[("__name__", "up"), ("e", ""), ("job", "a")]));
        let mut y = l(&[("job", "a"), ("job", "b")]);
        let err = normalise(&mut y, "t/1:2:3:4").expect_err("conflict");
        assert!(err.to_string().contains("t/1:2:3:4"), "{err}");
    }
}
