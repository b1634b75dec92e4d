//! Output chunking: a series' samples → Prometheus XOR chunks of
//! [`SAMPLES_PER_CHUNK`] samples, as Cortex's builder and Prometheus' head cut them.

use prom_xor::XorEncoder;

/// Samples per output chunk (Cortex's builder and Prometheus' head both use 120).
pub const SAMPLES_PER_CHUNK: usize = 120;

/// One encoded chunk, stored in an [`EncodedSeries`] byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedChunk {
    /// First timestamp.
    pub min_time: i64,
    /// Last timestamp.
    pub max_time: i64,
    /// Byte length of the XOR data.
    pub len: u32,
}

/// The chunks of one series: metas plus their concatenated data.
#[derive(Debug, Clone, Default)]
pub struct EncodedSeries {
    /// Chunk metas in time order.
    pub chunks: Vec<EncodedChunk>,
    /// XOR data of all chunks, back to back.
    pub data: Vec<u8>,
}

impl EncodedSeries {
    /// The data slices of the chunks, in order.
    pub fn chunk_data(&self) -> impl ExactSizeIterator<Item = &[u8]> + Clone {
        let mut offset = 0usize;
        self.chunks.iter().map(move |c| {
            let s = &self.data[offset..offset + c.len as usize];
            offset += c.len as usize;
            s
        })
    }
}

/// Encodes strictly ascending samples into 120-sample XOR chunks (replacing what `out`
/// held). Chunks are written straight into `out.data`, reusing its allocation.
pub fn encode_series(ts: &[i64], vs: &[f64], out: &mut EncodedSeries) {
    out.chunks.clear();
    out.data.clear();
    for (t, v) in ts
        .chunks(SAMPLES_PER_CHUNK)
        .zip(vs.chunks(SAMPLES_PER_CHUNK))
    {
        let start = out.data.len();
        let mut enc = XorEncoder::appending_to(std::mem::take(&mut out.data));
        for (&t, &v) in t.iter().zip(v) {
            enc.append(t, v);
        }
        out.data = enc.into_bytes();
        out.chunks.push(EncodedChunk {
            min_time: t[0],
            max_time: t[t.len() - 1],
            len: (out.data.len() - start) as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_120_round_trip() {
        let ts: Vec<i64> = (0..250).map(|i| i * 15_000).collect();
        let vs: Vec<f64> = (0..250).map(|i| i as f64 * 0.5).collect();
        let mut out = EncodedSeries::default();
        encode_series(&ts, &vs, &mut out);
        assert_eq!(out.chunks.len(), 3);
        assert_eq!(out.chunks[1].min_time, 120 * 15_000);
        assert_eq!(out.chunks[2].max_time, 249 * 15_000);
        let mut got_t = Vec::new();
        for data in out.chunk_data() {
            let (t, _) = prom_xor::decode_xor(data).expect("decode");
            got_t.extend(t);
        }
        assert_eq!(got_t, ts);
    }
}
