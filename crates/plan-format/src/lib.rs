//! Plan files (`<user>/<day>.plan[.gz|.snappy]`): a header `{"user","day_index"}`,
//! one `{"sid","cs"}` entry per series, and a footer `{"complete":true}`.
//!
//! The reader enforces Cortex's rules and is stricter where Cortex lost data: a plan
//! without footer, with entries after the footer, or with malformed JSON is an error
//! before anything is built (W18); entries repeating a series are merged (W11).

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Header extension (W8): the content digest of the entries, so a re-scan that
    /// produced different content is a new generation. Ignored by Cortex readers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    generation: String,
    /// Footer extension (W17): number of entries written.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    entries: u64,
    /// Footer extension (W17): [`PlanDigest`] of every entry, verified by [`PlanReader`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    checksum: String,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// Longest plan record (one JSON line) read: about 200,000 chunk IDs. A real series
/// lists tens to a few thousand chunks a day; a longer line is a damaged or hostile
/// plan and is refused before it can take the builder's memory.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// A reader that fails once a line grows past `max` bytes (newline-delimited JSON:
/// one record per line), so no single record is ever buffered whole beyond the limit.
struct LineLimit<R> {
    inner: R,
    max: usize,
    line: usize,
}

impl<R> LineLimit<R> {
    fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            line: 0,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.line = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(last) => n - last - 1,
            None => self.line + n,
        };
        // Checked per read, so a line ending inside this read may pass the limit by up
        // to one read (the 256 KiB buffer): bounded all the same.
        if self.line > self.max {
            return Err(record_too_long());
        }
        Ok(n)
    }
}

/// Digest of a plan's entries in order: SHA-256 over each series ID and its chunk IDs,
/// each followed by a newline, entries separated by a NUL byte. The scanner uses it as
/// the plan's generation (header) and its checksum (footer).
#[derive(Debug, Clone, Default)]
pub struct PlanDigest {
    hasher: Sha256,
    entries: u64,
}

impl PlanDigest {
    /// Adds one entry.
    pub fn add(&mut self, sid: &str, chunks: &[impl AsRef<str>]) {
        self.hasher.update(sid.as_bytes());
        self.hasher.update(b"\n");
        for c in chunks {
            self.hasher.update(c.as_ref().as_bytes());
            self.hasher.update(b"\n");
        }
        self.hasher.update([0u8]);
        self.entries += 1;
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The digest as 32 lowercase hex digits (the first 128 bits of the SHA-256).
    pub fn hex(&self) -> String {
        let d = self.hasher.clone().finalize();
        d[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// One entry line (JSON and a newline) into `line`, exactly as [`PlanWriter::entry`]
/// writes it: for writers that stage entries before the header (which carries their
/// digest) can be written.
pub fn encode_entry(sid: &str, chunks: &[String], line: &mut Vec<u8>) -> std::io::Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, &EntryRef { sid, cs: chunks })?;
    line.push(b'\n');
    Ok(())
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

/// A plan's records, read a line at a time and parsed from the line's bytes:
/// serde_json's slice parser is several times faster than its byte-at-a-time reader.
/// Records may still share a line or span several, as Go's `json.Decoder` allows: a
/// record cut at a line end waits for more input, which is read in growing steps so
/// a record spread over many lines is not parsed again per line.
struct RecordStream<'a> {
    input: BufReader<Box<dyn Read + 'a>>,
    /// Input not parsed yet starts at `start`.
    buf: Vec<u8>,
    start: usize,
    eof: bool,
}

impl<'a> RecordStream<'a> {
    fn new(input: Box<dyn Read + 'a>) -> Self {
        Self {
            input: BufReader::with_capacity(256 << 10, input),
            buf: Vec::new(),
            start: 0,
            eof: false,
        }
    }

    fn next(&mut self) -> Option<Result<Record, serde_json::Error>> {
        let mut want = 0usize;
        loop {
            let rest = &self.buf[self.start..];
            if !rest.trim_ascii_start().is_empty() {
                let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Record>();
                match values.next() {
                    Some(Ok(r)) => {
                        self.start += values.byte_offset();
                        return Some(Ok(r));
                    }
                    Some(Err(e)) if e.is_eof() && !self.eof => {
                        if rest.len() > MAX_RECORD_BYTES {
                            return Some(Err(serde_json::Error::io(record_too_long())));
                        }
                        want = rest.len().max(64 << 10);
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => {}
                }
            } else if self.eof {
                return None;
            }
            if let Err(e) = self.read_more(want) {
                return Some(Err(serde_json::Error::io(e)));
            }
        }
    }

    /// Appends at least one more line, or whole lines until `want` bytes were added.
    fn read_more(&mut self, want: usize) -> std::io::Result<()> {
        use std::io::BufRead;
        self.buf.drain(..self.start);
        self.start = 0;
        let before = self.buf.len();
        loop {
            if self.input.read_until(b'\n', &mut self.buf)? == 0 {
                self.eof = true;
                return Ok(());
            }
            if self.buf.len() - before >= want {
                return Ok(());
            }
        }
    }
}

fn record_too_long() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "a record is longer than {} MiB; refusing the plan",
            MAX_RECORD_BYTES >> 20
        ),
    )
}

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
    generation: String,
    digest: PlanDigest,
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
        let limited: Box<dyn Read + 'a> = Box::new(LineLimit::new(reader, MAX_RECORD_BYTES));
        let mut stream = RecordStream::new(limited);
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
            generation: header.generation,
            digest: PlanDigest::default(),
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

    /// The header's `generation` (empty for plans written by Cortex).
    pub fn generation(&self) -> &str {
        &self.generation
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
                if !self.footer {
                    self.check_footer(&r)?;
                }
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
            self.digest.add(&r.sid, &r.cs);
            return Ok(Some(PlanEntry {
                sid: r.sid,
                chunks: r.cs,
            }));
        }
    }

    /// Verifies the footer's optional entry count and checksum (W17) against what was read.
    fn check_footer(&self, footer: &Record) -> Result<(), PlanError> {
        let bad = |reason: String| PlanError::Malformed {
            name: self.name.clone(),
            record: self.record,
            reason,
        };
        if footer.entries != 0 && footer.entries != self.digest.entries() {
            return Err(bad(format!(
                "footer says {} entries, the plan has {}",
                footer.entries,
                self.digest.entries()
            )));
        }
        if !footer.checksum.is_empty() && footer.checksum != self.digest.hex() {
            return Err(bad(format!(
                "footer checksum {} does not match the entries ({})",
                footer.checksum,
                self.digest.hex()
            )));
        }
        Ok(())
    }
}

/// Writes a plan entry by entry: header on creation, footer with entry count and
/// checksum (W17) on [`PlanWriter::finish`].
pub struct PlanWriter<'a> {
    out: Sink<'a>,
    digest: PlanDigest,
    line: Vec<u8>,
}

impl std::fmt::Debug for PlanWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanWriter")
            .field("entries", &self.digest.entries())
            .finish()
    }
}

impl<'a> PlanWriter<'a> {
    /// Writes the header; `generation` is the W8 extension (empty to omit it).
    pub fn new(
        out: impl Write + 'a,
        compression: Compression,
        user: &str,
        day_index: i64,
        generation: &str,
    ) -> std::io::Result<Self> {
        let out: Box<dyn Write + 'a> = Box::new(out);
        let out = match compression {
            Compression::None => Sink::Plain(std::io::BufWriter::new(out)),
            Compression::Gzip => Sink::Gzip(Box::new(flate2::write::GzEncoder::new(
                std::io::BufWriter::new(out),
                flate2::Compression::default(),
            ))),
            Compression::Snappy => Sink::Snappy(Box::new(snap::write::FrameEncoder::new(out))),
        };
        let mut w = Self {
            out,
            digest: PlanDigest::default(),
            line: Vec::with_capacity(4096),
        };
        w.record(&Record {
            user: user.to_owned(),
            day_index,
            generation: generation.to_owned(),
            ..Default::default()
        })?;
        Ok(w)
    }

    fn record(&mut self, r: &Record) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, r)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// Appends one entry.
    pub fn entry(&mut self, sid: &str, chunks: &[String]) -> std::io::Result<()> {
        self.digest.add(sid, chunks);
        encode_entry(sid, chunks, &mut self.line)?;
        self.out.write_all(&self.line)
    }

    /// Appends entry lines staged with [`encode_entry`] before the header was known,
    /// copied as bytes (no parsing, no second digest), whose digest is `digest`;
    /// [`PlanWriter::finish`] writes that digest's footer. Only on a writer without
    /// entries. A reader checks the footer against the entries it reads, so a staged
    /// body that disagrees with `digest` is caught by reading the plan back.
    pub fn append_staged(
        &mut self,
        body: &mut impl std::io::Read,
        digest: PlanDigest,
    ) -> std::io::Result<()> {
        if self.digest.entries() != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "staged entries appended to a plan that already has entries",
            ));
        }
        // Line by line, as `entry` writes: the compressor cuts its blocks where the
        // writes fall, and the same writes keep the plan's bytes the same.
        let mut lines = std::io::BufReader::with_capacity(256 << 10, body);
        loop {
            self.line.clear();
            if std::io::BufRead::read_until(&mut lines, b'\n', &mut self.line)? == 0 {
                break;
            }
            self.out.write_all(&self.line)?;
        }
        self.digest = digest;
        Ok(())
    }

    /// Writes Cortex's plain footer `{"complete":true}` (no W17 extension) and flushes.
    pub fn finish_as_cortex(mut self) -> std::io::Result<()> {
        self.record(&Record {
            complete: true,
            ..Default::default()
        })?;
        self.out.finish()
    }

    /// Writes the footer and flushes; returns the entries' digest.
    pub fn finish(mut self) -> std::io::Result<PlanDigest> {
        let footer = Record {
            complete: true,
            entries: self.digest.entries(),
            checksum: self.digest.hex(),
            ..Default::default()
        };
        self.record(&footer)?;
        self.out.finish()?;
        Ok(self.digest)
    }
}

/// The compressed output; an enum rather than `dyn Write` because gzip needs an
/// explicit `finish` to write its trailer (a dropped encoder swallows that error).
enum Sink<'a> {
    Plain(std::io::BufWriter<Box<dyn Write + 'a>>),
    Gzip(Box<flate2::write::GzEncoder<std::io::BufWriter<Box<dyn Write + 'a>>>>),
    Snappy(Box<snap::write::FrameEncoder<Box<dyn Write + 'a>>>),
}

impl Sink<'_> {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(w) => w.write_all(buf),
            Self::Gzip(w) => w.write_all(buf),
            Self::Snappy(w) => w.write_all(buf),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Plain(mut w) => w.flush(),
            Self::Gzip(w) => w.finish()?.flush(),
            Self::Snappy(mut w) => w.flush(),
        }
    }
}

#[derive(Serialize)]
struct EntryRef<'a> {
    sid: &'a str,
    cs: &'a [String],
}

fn json_error(name: &mut String, record: usize, e: serde_json::Error) -> PlanError {
    let name = std::mem::take(name);
    if e.is_io() {
        let source = std::io::Error::from(e);
        if source.kind() == std::io::ErrorKind::InvalidData {
            // Over-long record (see LineLimit) or undecodable compressed data.
            return PlanError::Malformed {
                name,
                record,
                reason: source.to_string(),
            };
        }
        PlanError::Io { name, source }
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
    let mut w = PlanWriter::new(out, compression, user, day_index, "")?;
    for (sid, cs) in entries {
        w.entry(sid, cs)?;
    }
    w.finish_as_cortex()
}

#[cfg(test)]
mod line_limit_tests {
    use super::*;

    #[test]
    fn an_over_long_record_is_refused_with_its_number() {
        let mut plan = Vec::new();
        plan.extend_from_slice(b"{\"user\":\"acme\",\"day_index\":18584}\n");
        plan.extend_from_slice(b"{\"sid\":\"s\",\"cs\":[");
        let id = b"\"acme/0123456789abcdef:1:2:3\",";
        // Well past the limit: a line ending inside the read that crosses it may pass.
        while plan.len() < MAX_RECORD_BYTES + (1 << 20) {
            plan.extend_from_slice(id);
        }
        plan.extend_from_slice(b"\"x\"]}\n{\"complete\":true}\n");
        let mut r = PlanReader::open("p", &plan[..], Compression::None).expect("header");
        match r.next_entry() {
            Err(PlanError::Malformed { record, reason, .. }) => {
                assert_eq!(record, 2);
                assert!(reason.contains("longer than"), "{reason}");
            }
            Err(e) => panic!("expected a refusal of record 2, got {e}"),
            Ok(_) => panic!("expected a refusal, the over-long record was read"),
        }
    }
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

    /// Entries staged with `encode_entry` and appended as bytes give the same plan,
    /// byte for byte, as entries written one by one (lines past the compressor's
    /// 64 KiB block included), in every compression.
    #[test]
    fn staged_entries_give_the_same_bytes() {
        let entries: Vec<(String, Vec<String>)> = (0..300)
            .map(|i| {
                let n = if i == 7 { 4000 } else { 1 + i % 5 };
                let cs = (0..n)
                    .map(|k| format!("u/{i:x}:{k:x}:{:x}:0", k + 1))
                    .collect();
                (format!("s{i:04}"), cs)
            })
            .collect();
        for c in [Compression::None, Compression::Gzip, Compression::Snappy] {
            let mut direct = Vec::new();
            let mut w = PlanWriter::new(&mut direct, c, "u", 18584, "g").expect("writer");
            for (sid, cs) in &entries {
                w.entry(sid, cs).expect("entry");
            }
            let want = w.finish().expect("finish").hex();

            let (mut body, mut line, mut digest) = (Vec::new(), Vec::new(), PlanDigest::default());
            for (sid, cs) in &entries {
                digest.add(sid, cs);
                encode_entry(sid, cs, &mut line).expect("encode");
                body.extend_from_slice(&line);
            }
            let mut staged = Vec::new();
            let mut w = PlanWriter::new(&mut staged, c, "u", 18584, "g").expect("writer");
            w.append_staged(&mut &body[..], digest).expect("append");
            assert_eq!(w.finish().expect("finish").hex(), want);
            assert!(staged == direct, "{c:?}: staged plan differs");
        }
        // A staged body cannot follow entries (its digest would not cover them).
        let mut out = Vec::new();
        let mut w = PlanWriter::new(&mut out, Compression::None, "u", 18584, "").expect("w");
        w.entry("s", &["c".to_owned()]).expect("entry");
        assert!(
            w.append_staged(&mut &b""[..], PlanDigest::default())
                .is_err()
        );
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
    fn generation_and_footer_checksum() {
        let a = ["u/1:2:3:4".to_string(), "u/1:5:6:7".to_string()];
        let mut digest = PlanDigest::default();
        digest.add("s1", &a);
        digest.add("s2", &a[..1]);
        for c in [Compression::None, Compression::Gzip, Compression::Snappy] {
            let mut out = Vec::new();
            let mut w = PlanWriter::new(&mut out, c, "u", 18584, &digest.hex()).expect("new");
            w.entry("s1", &a).expect("entry");
            w.entry("s2", &a[..1]).expect("entry");
            assert_eq!(w.finish().expect("finish").hex(), digest.hex());
            let mut r = PlanReader::open("p", &out[..], c).expect("open");
            assert_eq!(r.generation(), digest.hex());
            while r.next_entry().expect("entry").is_some() {}
        }
        let mut out = Vec::new();
        let mut w = PlanWriter::new(&mut out, Compression::None, "u", 7, "g").expect("new");
        w.entry("s1", &a).expect("entry");
        w.finish().expect("finish");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("{\"user\":\"u\",\"day_index\":7,\"generation\":\"g\"}\n"));
        // A changed chunk ID or a dropped entry no longer matches the footer.
        for tampered in [
            text.replace("u/1:5:6:7", "u/1:5:6:8"),
            text.replace("\"entries\":1", "\"entries\":2"),
        ] {
            let err = read_plan("p", tampered.as_bytes(), Compression::None).expect_err("tampered");
            assert!(matches!(err, PlanError::Malformed { .. }), "{err}");
        }
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

    /// Go's `json.Decoder` reads values, not lines: records sharing a line, spread over
    /// several lines or between blank lines read the same as one record per line, and a
    /// record cut at the end is an incomplete plan, whichever line it started on.
    #[test]
    fn records_read_the_same_in_any_line_layout() {
        let want = read_plan("p", &sample(Compression::None)[..], Compression::None)
            .expect("one record per line");
        let layouts = [
            "{\"user\":\"u\",\"day_index\":18584} {\"sid\":\"s1\",\"cs\":[\"u/1:2:3:4\"]}\n\n\
             {\"sid\":\"s2\",\"cs\":[\"u/1:5:6:7\"]}{\"sid\":\"s1\",\"cs\":[\"u/1:5:6:7\"]}\n\
             {\"complete\":true}",
            "{\"user\":\"u\",\n\"day_index\":\n18584}\n{\"sid\":\"s1\",\"cs\":[\n\"u/1:2:3:4\"\n]}\n\
             {\"sid\":\"s2\",\"cs\":[\"u/1:5:6:7\"]}\n{\"sid\":\"s1\",\n\"cs\":[\"u/1:5:6:7\"]}\n\
             {\"complete\"\n:\ntrue}\n\n  \n",
        ];
        for text in layouts {
            let got = read_plan("p", text.as_bytes(), Compression::None).expect(text);
            assert_eq!(got, want, "{text}");
        }
        let cut = "{\"user\":\"u\",\"day_index\":18584}\n{\"sid\":\"s1\",\n\"cs\":[\"u/1";
        assert!(matches!(
            read_plan("p", cut.as_bytes(), Compression::None),
            Err(PlanError::Incomplete { records: 1, .. })
        ));
    }
}
