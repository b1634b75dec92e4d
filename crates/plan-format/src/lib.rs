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

/// One series of a plan: its ID and the chunk IDs to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    /// Series ID (base64 SHA-256 of the label string).
    pub sid: String,
    /// Chunk IDs as found in the index.
    pub chunks: Vec<String>,
}

type RecordStream<'a> = serde_json::StreamDeserializer<
    'a,
    serde_json::de::IoRead<BufReader<Box<dyn Read + 'a>>>,
    Record,
>;

/// Streams a plan entry by entry with bounded memory.
///
/// [`PlanReader::next_entry`] yields `None` only after the footer was seen and nothing
/// but whitespace follows it; a truncated or malformed plan ends in an error instead,
/// so a caller that finishes its work only on `None` never builds from half a plan.
pub struct PlanReader<'a> {
    name: String,
    user: String,
    day_index: i64,
    stream: RecordStream<'a>,
    record: usize,
    footer: bool,
}

impl std::fmt::Debug for PlanReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanReader")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("day_index", &self.day_index)
            .field("record", &self.record)
            .finish()
    }
}

impl<'a> PlanReader<'a> {
    /// Opens a plan and reads its header (decompressing per `compression`).
    pub fn open(
        name: &str,
        input: impl Read + 'a,
        compression: Compression,
    ) -> Result<Self, PlanError> {
        let reader: Box<dyn Read + 'a> = match compression {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Compression::Snappy => Box::new(snap::read::FrameDecoder::new(input)),
        };
        let mut stream =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(256 << 10, reader))
                .into_iter::<Record>();
        let mut this_name = name.to_owned();
        let header = match stream.next() {
            None => {
                return Err(PlanError::Incomplete {
                    name: this_name,
                    records: 0,
                });
            }
            Some(r) => r.map_err(|e| json_error(&mut this_name, 1, e))?,
        };
        if header.user.is_empty() || header.day_index == 0 {
            return Err(PlanError::Malformed {
                name: this_name,
                record: 1,
                reason: "header needs a non-empty user and a non-zero day_index".into(),
            });
        }
        Ok(Self {
            name: this_name,
            user: header.user,
            day_index: header.day_index,
            stream,
            record: 1,
            footer: false,
        })
    }

    /// Tenant from the header.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Day index from the header.
    pub fn day_index(&self) -> i64 {
        self.day_index
    }

    /// Records read so far (header included).
    pub fn records(&self) -> usize {
        self.record
    }

    /// The next entry, `Ok(None)` at a correctly terminated end, or an error.
    pub fn next_entry(&mut self) -> Result<Option<PlanEntry>, PlanError> {
        loop {
            let Some(r) = self.stream.next() else {
                if self.footer {
                    return Ok(None);
                }
                return Err(PlanError::Incomplete {
                    name: self.name.clone(),
                    records: self.record,
                });
            };
            self.record += 1;
            let r = r.map_err(|e| json_error(&mut self.name.clone(), self.record, e))?;
            if r.complete {
                self.footer = true;
                continue;
            }
            if self.footer {
                return Err(PlanError::Malformed {
                    name: self.name.clone(),
                    record: self.record,
                    reason: "plan entries found after plan footer".into(),
                });
            }
            if r.sid.is_empty() || r.cs.is_empty() {
                continue; // Cortex skips such records
            }
            return Ok(Some(PlanEntry {
                sid: r.sid,
                chunks: r.cs,
            }));
        }
    }
}

fn json_error(name: &mut String, record: usize, e: serde_json::Error) -> PlanError {
    let name = std::mem::take(name);
    if e.is_io() {
        PlanError::Io {
            name,
            source: e.into(),
        }
    } else if e.is_eof() {
        PlanError::Incomplete {
            name,
            records: record - 1,
        }
    } else {
        PlanError::Malformed {
            name,
            record,
            reason: e.to_string(),
        }
    }
}

/// Reads a whole plan (decompressing per `compression`), validating structure and
/// merging entries that repeat a series.
pub fn read_plan(
    name: &str,
    input: impl Read,
    compression: Compression,
) -> Result<Plan, PlanError> {
    let mut reader = PlanReader::open(name, input, compression)?;
    let mut plan = Plan {
        user: reader.user().to_owned(),
        day_index: reader.day_index(),
        series: BTreeMap::new(),
        duplicate_entries: 0,
    };
    while let Some(entry) = reader.next_entry()? {
        match plan.series.get_mut(&entry.sid) {
            Some(existing) => {
                plan.duplicate_entries += 1;
                for c in entry.chunks {
                    if !existing.contains(&c) {
                        existing.push(c);
                    }
                }
            }
            None => {
                plan.series.insert(entry.sid, entry.chunks);
            }
        }
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
