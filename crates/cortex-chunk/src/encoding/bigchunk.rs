//! Bigchunk (encoding 3): `count u16 LE`, then `count` × (`len u16 LE`, XOR chunk).

use super::EncodingError;

/// Samples per sub-chunk, as Cortex's writer cuts them.
const SAMPLES_PER_SUBCHUNK: usize = 120;

pub(super) fn decode(
    data: &[u8],
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
) -> Result<usize, EncodingError> {
    let Some((count, mut rest)) = data.split_first_chunk::<2>() else {
        return Err(EncodingError::Bigchunk(format!(
            "{} bytes, no sub-chunk count",
            data.len()
        )));
    };
    let count = u16::from_le_bytes(*count) as usize;
    let mut total = 0;
    for i in 0..count {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(EncodingError::Bigchunk(format!(
                "sub-chunk {i} of {count}: length field missing"
            )));
        };
        let len = u16::from_le_bytes(*len) as usize;
        let Some(sub) = tail.get(..len) else {
            return Err(EncodingError::Bigchunk(format!(
                "sub-chunk {i} of {count}: length {len} exceeds the {} bytes left",
                tail.len()
            )));
        };
        total += prom_xor::decode_xor_into(sub, ts, vs).map_err(|source| EncodingError::Xor {
            context: format!("bigchunk sub-chunk {i} of {count}"),
            source,
        })?;
        rest = &tail[len..];
    }
    // Trailing bytes are ignored, as in Cortex.
    Ok(total)
}

/// Encodes samples as Bigchunk data, cutting a sub-chunk every 120 samples.
pub fn encode_bigchunk(ts: &[i64], vs: &[f64]) -> Result<Vec<u8>, EncodingError> {
    let subchunks = ts.len().div_ceil(SAMPLES_PER_SUBCHUNK);
    let count = u16::try_from(subchunks)
        .map_err(|_| EncodingError::Bigchunk(format!("{subchunks} sub-chunks exceed 65535")))?;
    let mut out = Vec::with_capacity(2 + ts.len() * 2);
    out.extend_from_slice(&count.to_le_bytes());
    for (t, v) in ts
        .chunks(SAMPLES_PER_SUBCHUNK)
        .zip(vs.chunks(SAMPLES_PER_SUBCHUNK))
    {
        let mut e = prom_xor::XorEncoder::with_capacity(t.len() * 2 + 16);
        for (&t, &v) in t.iter().zip(v) {
            e.append(t, v);
        }
        let bytes = e.into_bytes();
        let len = u16::try_from(bytes.len())
            .map_err(|_| EncodingError::Bigchunk("sub-chunk over 65535 bytes".into()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}
