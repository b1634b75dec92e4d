//! Chunk segment files (`chunks/000001`, …): an 8-byte header, then records
//! `uvarint len | encoding | data | CRC32C(encoding ‖ data)`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::BlockError;
use crate::varint::put_uvarint;

/// Segment file magic.
pub const MAGIC: u32 = 0x85BD_40DD;
/// Size of the segment header (magic, version, padding).
pub const HEADER_LEN: u64 = 8;
/// Prometheus' default maximum segment size (512 MiB).
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;
/// Encoding byte of XOR chunks.
pub const ENCODING_XOR: u8 = 1;

/// The size Prometheus budgets for a chunk when deciding to cut a segment.
fn estimate(data_len: usize) -> u64 {
    (5 + 1 + data_len + 4) as u64
}

/// Segment file name for a 0-based sequence number.
pub fn segment_name(seq: u32) -> String {
    format!("{:06}", seq + 1)
}

/// Writes chunk segment files into a `chunks/` directory.
pub struct SegmentWriter {
    dir: PathBuf,
    max_size: u64,
    current: Option<BufWriter<File>>,
    /// Bytes in the current segment (0 when none is open).
    size: u64,
    /// 0-based sequence number of the current segment.
    seq: u32,
    /// Sizes of closed and current segments, in order.
    sizes: Vec<u64>,
    scratch: Vec<u8>,
    /// fsyncs of closed segments, running beside the writer (joined by `finish`).
    syncing: Vec<(PathBuf, std::thread::JoinHandle<std::io::Result<()>>)>,
}

impl SegmentWriter {
    /// A writer creating segments in `dir` (created if missing).
    pub fn new(dir: &Path, max_size: u64) -> Result<Self, BlockError> {
        std::fs::create_dir_all(dir).map_err(BlockError::io(dir))?;
        Ok(Self {
            dir: dir.to_owned(),
            max_size,
            current: None,
            size: 0,
            seq: 0,
            sizes: Vec::new(),
            scratch: Vec::with_capacity(4096),
            syncing: Vec::new(),
        })
    }

    fn open_next(&mut self) -> Result<(), BlockError> {
        self.close_current()?;
        if !self.sizes.is_empty() {
            self.seq += 1;
        }
        let path = self.dir.join(segment_name(self.seq));
        let file = File::create(&path).map_err(BlockError::io(&path))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = 1;
        w.write_all(&header).map_err(BlockError::io(&path))?;
        self.current = Some(w);
        self.size = HEADER_LEN;
        self.sizes.push(HEADER_LEN);
        Ok(())
    }

    /// Flushes the open segment and starts its fsync on a thread of its own: writing
    /// half a GiB to disk would otherwise stall the writer, and with it every worker
    /// waiting to hand it a series. [`SegmentWriter::finish`] waits for every sync.
    pub fn close_current(&mut self) -> Result<(), BlockError> {
        if let Some(mut w) = self.current.take() {
            let path = self.dir.join(segment_name(self.seq));
            w.flush().map_err(BlockError::io(&path))?;
            let file = w.into_inner().map_err(|e| BlockError::Io {
                path: path.clone(),
                source: e.into_error(),
            })?;
            // Shared so that the file is still here to sync inline if no thread starts.
            let file = std::sync::Arc::new(file);
            let for_thread = std::sync::Arc::clone(&file);
            match std::thread::Builder::new()
                .name("segment-sync".into())
                .spawn(move || for_thread.sync_all())
            {
                Ok(handle) => self.syncing.push((path, handle)),
                Err(_) => file.sync_all().map_err(BlockError::io(&path))?,
            }
        }
        Ok(())
    }

    /// Writes the chunks of one series (XOR data, in order) and returns their refs.
    ///
    /// Segments are cut with Prometheus' exact per-call rule so that file
    /// boundaries match what Prometheus/Cortex would write for the same input.
    pub fn write_series<'c>(
        &mut self,
        chunks: impl ExactSizeIterator<Item = &'c [u8]> + Clone,
    ) -> Result<Vec<u64>, BlockError> {
        // Plan the batches first (Prometheus' WriteChunks), then write them.
        let mut cut_before = Vec::new();
        let (mut batch, mut first_batch) = (0u64, true);
        let n = self.size;
        for (i, data) in chunks.clone().enumerate() {
            let est = estimate(data.len());
            batch += est;
            let mut cut = i != 0 && batch + HEADER_LEN > self.max_size;
            if first_batch && n > HEADER_LEN {
                cut = batch + n > self.max_size;
                if cut {
                    first_batch = false;
                }
            }
            if cut {
                cut_before.push(i);
                batch = est;
            }
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let mut refs = Vec::with_capacity(chunks.len());
        let mut cuts = cut_before.into_iter().peekable();
        for (i, data) in chunks.enumerate() {
            if cuts.peek() == Some(&i) {
                cuts.next();
                self.open_next()?;
            }
            refs.push(self.write_chunk(data)?);
        }
        Ok(refs)
    }

    fn write_chunk(&mut self, data: &[u8]) -> Result<u64, BlockError> {
        let offset = self.size;
        if offset > u32::MAX as u64 {
            return Err(BlockError::Invalid(format!(
                "segment offset {offset} exceeds 4 GiB"
            )));
        }
        self.scratch.clear();
        put_uvarint(&mut self.scratch, data.len() as u64);
        self.scratch.push(ENCODING_XOR);
        let mut crc = crc32c::crc32c(&[ENCODING_XOR]);
        crc = crc32c::crc32c_append(crc, data);
        let w = self
            .current
            .as_mut()
            .ok_or_else(|| BlockError::Invalid("no open segment".into()))?;
        // The segment's path is built only for an error: this runs once per chunk.
        w.write_all(&self.scratch)
            .and_then(|()| w.write_all(data))
            .and_then(|()| w.write_all(&crc.to_be_bytes()))
            .map_err(|source| BlockError::Io {
                path: self.dir.join(segment_name(self.seq)),
                source,
            })?;
        let len = (self.scratch.len() + data.len() + 4) as u64;
        self.size += len;
        if let Some(last) = self.sizes.last_mut() {
            *last = self.size;
        }
        Ok(((self.seq as u64) << 32) | offset)
    }

    /// Flushes, and waits until every segment is synced; returns `(file name, size)`
    /// of every segment written.
    pub fn finish(mut self) -> Result<Vec<(String, u64)>, BlockError> {
        self.close_current()?;
        for (path, handle) in self.syncing.drain(..) {
            let synced = handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the fsync thread panicked")));
            synced.map_err(BlockError::io(&path))?;
        }
        Ok(self
            .sizes
            .iter()
            .enumerate()
            .map(|(i, s)| (segment_name(i as u32), *s))
            .collect())
    }
}

/// All segment files of a block, held in memory, with validated chunk access.
#[derive(Debug)]
pub struct SegmentReader {
    segments: Vec<(String, Vec<u8>)>,
}

impl SegmentReader {
    /// Reads `dir/000001…` (contiguous names) and checks their headers.
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(BlockError::io(dir))? {
            let entry = entry.map_err(BlockError::io(dir))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for (i, name) in names.into_iter().enumerate() {
            let file = format!("chunks/{name}");
            if name != segment_name(i as u32) {
                return Err(BlockError::corrupt(
                    &file,
                    0,
                    "segment names are not contiguous from 000001",
                ));
            }
            let path = dir.join(&name);
            let bytes = std::fs::read(&path).map_err(BlockError::io(&path))?;
            if bytes.len() < HEADER_LEN as usize || bytes[..4] != MAGIC.to_be_bytes() {
                return Err(BlockError::corrupt(&file, 0, "bad segment magic"));
            }
            if bytes[4] != 1 {
                return Err(BlockError::corrupt(
                    &file,
                    4,
                    format!("unsupported version {}", bytes[4]),
                ));
            }
            segments.push((file, bytes));
        }
        Ok(Self { segments })
    }

    /// The XOR data of the chunk at `reference`, CRC-checked.
    pub fn chunk(&self, reference: u64) -> Result<&[u8], BlockError> {
        let seq = (reference >> 32) as usize;
        let offset = (reference & 0xffff_ffff) as usize;
        let (file, bytes) = self.segments.get(seq).ok_or_else(|| {
            BlockError::corrupt(
                "chunks",
                reference,
                format!("segment {} does not exist", seq + 1),
            )
        })?;
        let bad = |reason: &str| BlockError::corrupt(file, offset as u64, reason.to_owned());
        if offset < HEADER_LEN as usize || offset + 5 > bytes.len() {
            return Err(bad("chunk reference outside the segment"));
        }
        let mut d = crate::varint::Decbuf::new(&bytes[offset..]);
        let len = d.uvarint().ok_or_else(|| bad("bad chunk length"))? as usize;
        let enc = d.bytes(1).ok_or_else(|| bad("missing encoding byte"))?;
        let data = d
            .bytes(len)
            .ok_or_else(|| bad("chunk runs past the end of the segment"))?;
        let crc = d.be32().ok_or_else(|| bad("missing chunk checksum"))?;
        if enc[0] != ENCODING_XOR {
            return Err(bad(&format!("unsupported chunk encoding {}", enc[0])));
        }
        if crc32c::crc32c_append(crc32c::crc32c(enc), data) != crc {
            return Err(bad("chunk checksum mismatch"));
        }
        Ok(data)
    }
}
