//! Plan files (`<user>/<day>.plan[.gz|.snappy]`): a header `{"user","day_index"}`,
//! one `{"sid","cs"}` entry per series, and a footer `{"complete":true}`.
//!
//! The reader enforces Cortex's rules and is stricter where Cortex lost data: a plan
//! without footer, with entries after the footer, or with malformed JSON is an error
//! before anything is built (W18); entries repeating a series are merged (W11).

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};

use serde::{Deserialize, Serialize};

/// Compression, chosen by the object name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.plan`
    None,
    /// `.plan.gz`
    Gzip,
    /// `.plan.snappy` (snappy framing format)
    Snappy,
}

impl Compression {
    /// From an object name (`.plan.gz`, `.plan.snappy`, `.plan`), or `None` for a non-plan.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.ends_with(".plan.gz") {
            Some(Self::Gzip)
        } else if name.ends_with(".plan.snappy") {
            Some(Self::Snappy)
        } else if name.ends_with(".plan") {
            Some(Self::None)
        } else {
            None
        }
    }

    /// The file suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::None => ".plan",
            Self::Gzip => ".plan.gz",
            Self::Snappy => ".plan.snappy",
        }
    }
}

/// A plan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Decompression or I/O failed.
    #[error("plan {name}: {source}")]
    Io {
        /// Plan name.
        name: String,
        /// The error.
        source: std::io::Error,
    },
    /// Bad JSON at the given record.
    #[error("plan {name}: record {record}: {reason}")]
    Malformed {
        /// Plan name.
        name: String,
        /// 1-based record number.
        record: usize,
        /// What is wrong.
        reason: String,
    },
    /// The stream ended without the footer (truncated plan).
    #[error("plan {name}: plan is not complete (no footer after {records} records)")]
    Incomplete {
        /// Plan name.
        name: String,
        /// Records read.
        records: usize,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    day_index: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cs: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    complete: bool,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// A fully read plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Tenant.
    pub user: String,
    /// UTC day index.
    pub day_index: i64,
    /// Series ID → chunk IDs (duplicates merged, first-seen order kept).
    pub series: BTreeMap<String, Vec<String>>,
    /// Entries that repeated an already-seen series (merged, reported).
    pub duplicate_entries: usize,
}

/// Reads a whole plan (decompressing per `compression`), validating structure.
pub fn read_plan(
    name: &str,
    input: impl Read,
    compression: Compression,
) -> Result<Plan, PlanError> {
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Snappy => Box::new(snap::read::FrameDecoder::new(input)),
    };
    let mut stream =
        serde_json::Deserializer::from_reader(BufReader::new(reader)).into_iter::<Record>();
    let malformed = |record, reason: String| PlanError::Malformed {
        name: name.to_owned(),
        record,
        reason,
    };
    let to_err = |record: usize, e: serde_json::Error| {
        if e.is_io() {
            PlanError::Io {
                name: name.to_owned(),
                source: e.into(),
            }
        } else if e.is_eof() {
            PlanError::Incomplete {
                name: name.to_owned(),
                records: record - 1,
            }
        } else {
            malformed(record, e.to_string())
        }
    };
    let header = match stream.next() {
        None => {
            return Err(PlanError::Incomplete {
                name: name.to_owned(),
                records: 0,
            });
        }
        Some(r) => r.map_err(|e| to_err(1, e))?,
    };
    if header.user.is_empty() || header.day_index == 0 {
        return Err(malformed(
            1,
            "header needs a non-empty user and a non-zero day_index".into(),
        ));
    }
    let mut plan = Plan {
        user: header.user,
        day_index: header.day_index,
        series: BTreeMap::new(),
        duplicate_entries: 0,
    };
    let mut record = 1;
    let mut footer = false;
    for r in stream {
        record += 1;
        let r = r.map_err(|e| to_err(record, e))?;
        if r.complete {
            footer = true;
            continue;
        }
        if footer {
            return Err(malformed(
                record,
                "plan entries found after plan footer".into(),
            ));
        }
        if r.sid.is_empty() || r.cs.is_empty() {
            continue; // Cortex skips such records
        }
        match plan.series.get_mut(&r.sid) {
            Some(existing) => {
                plan.duplicate_entries += 1;
                for c in r.cs {
                    if !existing.contains(&c) {
                        existing.push(c);
                    }
                }
            }
            None => {
                plan.series.insert(r.sid, r.cs);
            }
        }
    }
    if !footer {
        return Err(PlanError::Incomplete {
            name: name.to_owned(),
            records: record,
        });
    }
    Ok(plan)
}

/// Writes a plan in Cortex's layout (Go `json.Encoder` with HTML escaping off).
pub fn write_plan<'a>(
    out: impl Write,
    compression: Compression,
    user: &str,
    day_index: i64,
    entries: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> std::io::Result<()> {
    let mut w: Box<dyn Write> = match compression {
        Compression::None => Box::new(std::io::BufWriter::new(out)),
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            out,
            flate2::Compression::default(),
        )),
        Compression::Snappy => Box::new(snap::write::FrameEncoder::new(out)),
    };
    let line = |w: &mut Box<dyn Write>, r: &Record| -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, r)?;
        w.write_all(b"\n")
    };
    line(
        &mut w,
        &Record {
            user: user.to_owned(),
            day_index,
            ..Default::default()
        },
    )?;
    for (sid, cs) in entries {
        line(
            &mut w,
            &Record {
                sid: sid.to_owned(),
                cs: cs.to_vec(),
                ..Default::default()
            },
        )?;
    }
    line(
        &mut w,
        &Record {
            complete: true,
            ..Default::default()
        },
    )?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(c: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        let a = ["u/1:2:3:4".to_string()];
        let b = ["u/1:5:6:7".to_string()];
        write_plan(
            &mut out,
            c,
            "u",
            18584,
            [("s1", &a[..]), ("s2", &b[..]), ("s1", &b[..])],
        )
        .expect("write");
        out
    }

    #[test]
    fn round_trip_all_compressions_and_merge_duplicates() {
        for c in [Compression::None, Compression::Gzip, Compression::Snappy] {
            let plan = read_plan("p", &sample(c)[..], c).expect("read");
            assert_eq!(plan.user, "u");
            assert_eq!(plan.day_index, 18584);
            assert_eq!(plan.series["s1"], vec!["u/1:2:3:4", "u/1:5:6:7"]);
            assert_eq!(plan.duplicate_entries, 1);
        }
        let text = String::from_utf8(sample(Compression::None)).expect("utf8");
        assert!(text.starts_with(
            "{\"user\":\"u\",\"day_index\":18584}\n{\"sid\":\"s1\",\"cs\":[\"u/1:2:3:4\"]}\n"
        ));
        assert!(text.ends_with("{\"complete\":true}\n"));
    }

    #[test]
    fn truncated_and_malformed_plans_are_rejected() {
        let full = sample(Compression::None);
        let text = String::from_utf8(full.clone()).expect("utf8");
        let without_footer = text.replace("{\"complete\":true}\n", "");
        assert!(matches!(
            read_plan("p", without_footer.as_bytes(), Compression::None),
            Err(PlanError::Incomplete { .. })
        ));
        for cut in [5, 40, full.len() - 3] {
            assert!(
                read_plan("p", &full[..cut], Compression::None).is_err(),
                "cut {cut}"
            );
        }
        let after = format!("{text}{{\"sid\":\"s9\",\"cs\":[\"x\"]}}\n");
        assert!(matches!(
            read_plan("p", after.as_bytes(), Compression::None),
            Err(PlanError::Malformed { .. })
        ));
        let gz = sample(Compression::Gzip);
        assert!(read_plan("p", &gz[..gz.len() / 2], Compression::Gzip).is_err());
        assert!(
            read_plan(
                "p",
                &b"{\"user\":\"u\"}\n{\"complete\":true}"[..],
                Compression::None
            )
            .is_err()
        );
    }
}
