//! XOR chunk decoder into columnar `(i64, f64)` buffers.

use crate::bits::BitReader;

/// Why an XOR chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XorDecodeError {
    /// Fewer than two bytes: no sample-count header.
    #[error("XOR chunk of {len} bytes is shorter than its 2-byte header")]
    MissingHeader {
        /// Length of the input.
        len: usize,
    },
    /// The bit stream ended before the number of samples in the header was read.
    #[error("XOR chunk truncated: header says {expected} samples, stream ends after {decoded}")]
    Truncated {
        /// Samples announced by the header.
        expected: usize,
        /// Samples decoded before the stream ran out.
        decoded: usize,
    },
}

/// The sample count announced by the chunk header.
pub fn xor_sample_count(chunk: &[u8]) -> Result<usize, XorDecodeError> {
    match chunk {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b]) as usize),
        _ => Err(XorDecodeError::MissingHeader { len: chunk.len() }),
    }
}

/// Decodes a whole chunk into new vectors.
pub fn decode_xor(chunk: &[u8]) -> Result<(Vec<i64>, Vec<f64>), XorDecodeError> {
    let mut ts = Vec::new();
    let mut vs = Vec::new();
    decode_xor_into(chunk, &mut ts, &mut vs)?;
    Ok((ts, vs))
}

/// Appends every sample of `chunk` to `ts`/`vs` and returns how many were added.
///
/// Bytes after the last announced sample are ignored (as Prometheus does). On error
/// the buffers are restored to their original length, so a caller never sees a
/// partial chunk.
pub fn decode_xor_into(
    chunk: &[u8],
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
) -> Result<usize, XorDecodeError> {
    let n = xor_sample_count(chunk)?;
    let (ts0, vs0) = (ts.len(), vs.len());
    // The count is bounded by u16, so sizing by it is safe even for hostile input.
    // Writing by index into pre-sized buffers avoids a capacity check per push.
    ts.resize(ts0 + n, 0);
    vs.resize(vs0 + n, 0.0);
    // The fast pass checks for a stream that ended too early once, at the end; only
    // then does a checking pass find how many samples were whole.
    let decoded = match decode_body::<false>(&chunk[2..], &mut ts[ts0..], &mut vs[vs0..]) {
        Ok(()) => Ok(()),
        Err(_) => decode_body::<true>(&chunk[2..], &mut ts[ts0..], &mut vs[vs0..]),
    };
    match decoded {
        Ok(()) => Ok(n),
        Err(decoded) => {
            ts.truncate(ts0);
            vs.truncate(vs0);
            Err(XorDecodeError::Truncated {
                expected: n,
                decoded,
            })
        }
    }
}

/// Fills `ts`/`vs` (one slot per announced sample); on failure returns how many
/// samples were decoded. Without `CHECK_EACH` a stream that ends early is found only
/// after the last sample (reads past the end give zeros), and the count is `n`.
#[inline]
fn decode_body<const CHECK_EACH: bool>(
    body: &[u8],
    ts: &mut [i64],
    vs: &mut [f64],
) -> Result<(), usize> {
    let n = ts.len().min(vs.len());
    let Some(mut s) = XorStream::start(body, ts, vs)? else {
        return Ok(());
    };
    if !CHECK_EACH {
        return if s.run(&mut ts[2..n], &mut vs[2..n]) {
            Ok(())
        } else {
            Err(n)
        };
    }
    for (i, (ts_i, vs_i)) in ts[2..n].iter_mut().zip(&mut vs[2..n]).enumerate() {
        let (t, v) = s.next();
        if s.r.overran() {
            return Err(i + 2);
        }
        *ts_i = t;
        *vs_i = f64::from_bits(v);
    }
    Ok(())
}

/// One XOR chunk being decoded past its first two samples: the bit reader and the
/// running timestamp, delta, value and value window.
#[derive(Clone)]
struct XorStream<'a> {
    r: BitReader<'a>,
    t: i64,
    delta: u64,
    v: u64,
    leading: u32,
    trailing: u32,
}

impl<'a> XorStream<'a> {
    /// Reads the first two samples (as many as `ts` has room for, up to two) into
    /// `ts`/`vs`; `None` when the chunk holds no more. On a stream that ends early,
    /// how many samples were read.
    #[inline(always)]
    fn start(body: &'a [u8], ts: &mut [i64], vs: &mut [f64]) -> Result<Option<Self>, usize> {
        let n = ts.len().min(vs.len());
        if n == 0 {
            return Ok(None);
        }
        let mut r = BitReader::new(body);
        let t = r.read_varint().ok_or(0usize)?;
        let v = r.read_bits(64);
        if r.overran() {
            return Err(0);
        }
        ts[0] = t;
        vs[0] = f64::from_bits(v);
        if n == 1 {
            return Ok(None);
        }
        let delta = r.read_uvarint().ok_or(1usize)?;
        let mut s = Self {
            r,
            t: t.wrapping_add(delta as i64),
            delta,
            v,
            leading: 0,
            trailing: 0,
        };
        s.v = read_value(&mut s.r, s.v, &mut s.leading, &mut s.trailing);
        if s.r.overran() {
            return Err(1);
        }
        ts[1] = s.t;
        vs[1] = f64::from_bits(s.v);
        Ok((n > 2).then_some(s))
    }

    /// The next sample (timestamp, value bits). Past the end of the data it reads
    /// zeros; the caller checks [`BitReader::overran`] when it chooses.
    #[inline(always)]
    fn next(&mut self) -> (i64, u64) {
        let w = self.r.peek_wide();
        self.next_from(w)
    }

    /// Decodes sample `i` (`i < ts.len() == vs.len()`) and, when it repeats the one
    /// before (same interval, same value: the two bits `00`), the whole run of repeats
    /// that follows; returns the index after them. Real series repeat a lot (idle
    /// counters, flat gauges): a run then costs one count of leading zeros instead of a
    /// branchy decode per sample. The check sits on the unchanged-value path, so
    /// series whose values always change pay nothing (which is why this repeats
    /// [`XorStream::next_from`] rather than calling it: a repeat test after it cost
    /// the random whole-plan bench 3 % CPU). Past the end of the data it reads zeros,
    /// like [`XorStream::next`].
    #[inline(always)]
    fn advance(&mut self, ts: &mut [i64], vs: &mut [f64], i: usize) -> usize {
        let w = self.r.peek_wide();
        let Some((dod, dod_len)) = wide_dod((w >> 64) as u64) else {
            let (next, t, v) = self.clone().next_escaped();
            *self = next;
            ts[i] = t;
            vs[i] = f64::from_bits(v);
            return i + 1;
        };
        self.delta = self.delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.delta as i64);
        let value = w << dod_len;
        if value >> 127 != 0 {
            let (xor, value_len) = wide_value(value, &mut self.leading, &mut self.trailing);
            self.v ^= xor;
            self.r.skip(dod_len + value_len);
            ts[i] = self.t;
            vs[i] = f64::from_bits(self.v);
            return i + 1;
        }
        // The value is unchanged (`0`).
        self.r.skip(dod_len + 1);
        let v = f64::from_bits(self.v);
        ts[i] = self.t;
        vs[i] = v;
        if dod_len != 1 {
            return i + 1;
        }
        // A repeat: take the run of `00` pairs that follows. `peek` holds at least 57
        // real bits; zeros below them are filler.
        let (ts, vs) = (&mut ts[i + 1..], &mut vs[i + 1..]);
        let run = ((self.r.peek().leading_zeros().min(57) / 2) as usize)
            .min(ts.len())
            .min(vs.len());
        let delta = self.delta as i64;
        let mut t = self.t;
        for (ts_j, vs_j) in ts[..run].iter_mut().zip(&mut vs[..run]) {
            t = t.wrapping_add(delta);
            *ts_j = t;
            *vs_j = v;
        }
        self.t = t;
        self.r.skip(2 * run as u32);
        i + 1 + run
    }

    #[inline(always)]
    fn next_from(&mut self, w: u128) -> (i64, u64) {
        // One 128-bit load holds a whole sample unless its timestamp needs the
        // 64-bit escape (`1111`), which takes the field-by-field path.
        let Some((dod, dod_len)) = wide_dod((w >> 64) as u64) else {
            // By value, so the state's address never escapes and it stays in registers.
            let (next, t, v) = self.clone().next_escaped();
            *self = next;
            return (t, v);
        };
        self.delta = self.delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.delta as i64);
        let (xor, value_len) = wide_value(w << dod_len, &mut self.leading, &mut self.trailing);
        self.v ^= xor;
        self.r.skip(dod_len + value_len);
        (self.t, self.v)
    }

    #[cold]
    #[inline(never)]
    fn next_escaped(mut self) -> (Self, i64, u64) {
        self.delta = self.delta.wrapping_add(read_dod(&mut self.r) as u64);
        self.t = self.t.wrapping_add(self.delta as i64);
        self.v = read_value(&mut self.r, self.v, &mut self.leading, &mut self.trailing);
        let (t, v) = (self.t, self.v);
        (self, t, v)
    }

    /// Fills `ts`/`vs` with the following samples; false when the stream ended early.
    #[inline(always)]
    fn run(&mut self, ts: &mut [i64], vs: &mut [f64]) -> bool {
        let n = ts.len().min(vs.len());
        let (ts, vs) = (&mut ts[..n], &mut vs[..n]);
        let mut i = 0;
        while i < n {
            i = self.advance(ts, vs, i);
        }
        !self.r.overran()
    }
}

/// The delta-of-delta at the top of `hi` and its length in bits, or `None` for the
/// 64-bit escape. Tested prefix by prefix, most common first: direct branches predict
/// better than the jump table a `match` on the count of leading ones compiles to (and
/// baseline x86-64 has no single instruction for that count).
#[inline(always)]
fn wide_dod(hi: u64) -> Option<(i64, u32)> {
    if hi >> 63 == 0 {
        Some((0, 1))
    } else if hi >> 62 == 0b10 {
        Some((dod_field((hi >> (64 - 16)) & 0x3fff, 14), 16))
    } else if hi >> 61 == 0b110 {
        Some((dod_field((hi >> (64 - 20)) & 0x1_ffff, 17), 20))
    } else if hi >> 60 == 0b1110 {
        Some((dod_field((hi >> (64 - 24)) & 0xf_ffff, 20), 24))
    } else {
        None
    }
}

/// The value XOR at the top of `w` (at least 97 valid bits: 13 control bits and up
/// to 64 significant ones) and its length in bits; updates the window. (Branches
/// measured faster here than selects computing all three cases.)
///
/// Only constant shifts of `w`: a 128-bit shift by a variable count costs a
/// double-word shift, a test and a select on this serial path. The significant width
/// is 1..=64 and the trailing count 0..=63 in every stream, hostile ones included (a
/// new window's trailing count saturates at 0, its width is at least 1), so the
/// 64-bit shifts below never overflow; the masks only keep that provable to the
/// compiler.
#[inline(always)]
fn wide_value(w: u128, leading: &mut u32, trailing: &mut u32) -> (u64, u32) {
    let hi = (w >> 64) as u64;
    if hi >> 63 == 0 {
        return (0, 1);
    }
    if hi >> 62 == 0b10 {
        let sig = 64 - *leading - *trailing;
        let field = ((w << 2) >> 64) as u64;
        return ((field >> ((64 - sig) & 63)) << (*trailing & 63), 2 + sig);
    }
    // `11`: new window: 5 bits leading, 6 bits significant (0 means 64).
    *leading = ((hi >> 57) & 0x1f) as u32;
    let mut sig = ((hi >> 51) & 0x3f) as u32;
    if sig == 0 {
        sig = 64;
    }
    // A hostile stream can claim leading + sig > 64; clamp instead of panicking
    // (the chunk then decodes to garbage, never to a crash).
    *trailing = 64u32.saturating_sub(*leading + sig);
    let field = ((w << 13) >> 64) as u64;
    ((field >> ((64 - sig) & 63)) << (*trailing & 63), 13 + sig)
}

/// Sign-extends an `n`-bit field the Prometheus way: `100…0` is +2^(n-1).
#[inline(always)]
fn dod_field(u: u64, n: u32) -> i64 {
    if u > 1 << (n - 1) {
        u as i64 - (1i64 << n)
    } else {
        u as i64
    }
}

#[inline(always)]
fn read_dod(r: &mut BitReader<'_>) -> i64 {
    let w = r.peek();
    let ones = (!w).leading_zeros().min(4);
    match ones {
        0 => {
            r.skip(1);
            0
        }
        1 => {
            r.skip(16);
            dod_field((w >> (64 - 16)) & 0x3fff, 14)
        }
        2 => {
            r.skip(20);
            dod_field((w >> (64 - 20)) & 0x1_ffff, 17)
        }
        3 => {
            r.skip(24);
            dod_field((w >> (64 - 24)) & 0xf_ffff, 20)
        }
        _ => {
            r.skip(4);
            r.read_bits(64) as i64
        }
    }
}

#[inline(always)]
fn read_value(r: &mut BitReader<'_>, v: u64, leading: &mut u32, trailing: &mut u32) -> u64 {
    let w = r.peek();
    if w >> 63 == 0 {
        r.skip(1);
        return v;
    }
    if w >> 62 == 0b10 {
        r.skip(2);
        let sig = 64 - *leading - *trailing;
        return v ^ (r.read_bits(sig) << *trailing);
    }
    // `11`: new window: 5 bits leading, 6 bits significant (0 means 64).
    *leading = ((w >> 57) & 0x1f) as u32;
    let mut sig = ((w >> 51) & 0x3f) as u32;
    if sig == 0 {
        sig = 64;
    }
    r.skip(13);
    // A hostile stream can claim leading + sig > 64; clamp instead of panicking
    // (the chunk then decodes to garbage, never to a crash).
    *trailing = 64u32.saturating_sub(*leading + sig);
    v ^ r.read_bits(sig).checked_shl(*trailing).unwrap_or(0)
}
