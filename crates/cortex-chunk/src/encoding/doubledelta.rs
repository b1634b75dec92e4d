//! DoubleDelta (encoding 1): a fixed 1024-byte buffer of little-endian fields.
//!
//! Header: `used u16 | tb u8 | vb u8 | isInt u8 | baseT i64 | baseV f64 | baseΔT | baseΔV`
//! (37 bytes), then `(tb + vb)`-byte records for samples 2…

use super::EncodingError;

const CHUNK_LEN: usize = 1024;
const HEADER_LEN: usize = 37;
const ONE_SAMPLE_LEN: usize = 21;

fn err(msg: impl Into<String>) -> EncodingError {
    EncodingError::DoubleDelta(msg.into())
}

fn le_u64(b: &[u8; CHUNK_LEN], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Little-endian sign-extended integer of `width` (1, 2, 4 or 8) bytes.
fn le_signed(b: &[u8; CHUNK_LEN], off: usize, width: usize) -> i64 {
    match width {
        1 => b[off] as i8 as i64,
        2 => i16::from_le_bytes([b[off], b[off + 1]]) as i64,
        4 => i32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as i64,
        _ => le_u64(b, off) as i64,
    }
}

pub(super) fn decode(
    data: &[u8],
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
) -> Result<usize, EncodingError> {
    // Cortex copies the data into a zeroed 1 KiB buffer (truncating longer input).
    let mut b = [0u8; CHUNK_LEN];
    let n = data.len().min(CHUNK_LEN);
    b[..n].copy_from_slice(&data[..n]);
    let used = u16::from_le_bytes([b[0], b[1]]) as usize;
    if !(ONE_SAMPLE_LEN..=CHUNK_LEN).contains(&used) {
        return Err(err(format!("used length {used} outside 21..=1024")));
    }
    let (tb, vb, is_int) = (b[2] as usize, b[3] as usize, b[4] == 1);
    if ![1, 2, 4, 8].contains(&tb) {
        return Err(err(format!("invalid time delta width {tb}")));
    }
    if ![0, 1, 2, 4, 8].contains(&vb) {
        return Err(err(format!("invalid value delta width {vb}")));
    }
    let base_t = le_u64(&b, 5) as i64;
    let base_v = f64::from_bits(le_u64(&b, 13));
    let count = match used {
        ONE_SAMPLE_LEN => 1,
        u if u < HEADER_LEN => return Err(err(format!("used length {u} is between 22 and 36"))),
        u => (u - HEADER_LEN) / (tb + vb) + 2,
    };
    if count > 2 && ((is_int && vb == 8) || (!is_int && vb != 4 && vb != 8)) {
        let mode = if is_int { "integer" } else { "float" };
        return Err(err(format!("value width {vb} is invalid in {mode} mode")));
    }
    ts.reserve(count);
    vs.reserve(count);
    ts.push(base_t);
    vs.push(base_v);
    if count == 1 {
        return Ok(1);
    }
    let base_dt = le_u64(&b, 21) as i64;
    let base_dv_bits = le_u64(&b, 29);
    let base_dv = f64::from_bits(base_dv_bits);
    ts.push(if tb == 8 {
        base_dt
    } else {
        base_t.wrapping_add(base_dt)
    });
    vs.push(if vb == 8 { base_dv } else { base_v + base_dv });
    for i in 2..count {
        let off = HEADER_LEN + (i - 2) * (tb + vb);
        let t = if tb == 8 {
            le_u64(&b, off) as i64
        } else {
            base_t
                .wrapping_add((i as i64).wrapping_mul(base_dt))
                .wrapping_add(le_signed(&b, off, tb))
        };
        let voff = off + tb;
        // The order of operations is Cortex's (no fused multiply-add).
        let v = if is_int {
            let base = base_v + (i as f64) * base_dv;
            if vb == 0 {
                base
            } else {
                base + le_signed(&b, voff, vb) as f64
            }
        } else if vb == 4 {
            let d = f32::from_bits(le_signed(&b, voff, 4) as u32);
            (base_v + (i as f64) * base_dv) + d as f64
        } else {
            f64::from_bits(le_u64(&b, voff))
        };
        ts.push(t);
        vs.push(v);
    }
    Ok(count)
}

/// Value storage modes, cheapest first: (is_int, value bytes).
const MODES: [(bool, usize); 6] = [
    (true, 0),
    (true, 1),
    (true, 2),
    (true, 4),
    (false, 4),
    (false, 8),
];

/// Builds one DoubleDelta chunk sample by sample, choosing the narrowest field
/// widths that reproduce every sample bit for bit, and refusing samples that would
/// not fit in the 1 KiB buffer (the caller then starts a new chunk, as Cortex does).
#[derive(Debug, Clone, Default)]
pub struct DoubleDeltaEncoder {
    ts: Vec<i64>,
    vs: Vec<f64>,
    tb: usize,
    /// Bit i set = `MODES[i]` reproduces every value so far.
    modes: u8,
}

impl DoubleDeltaEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        Self {
            ts: Vec::new(),
            vs: Vec::new(),
            tb: 1,
            modes: 0b11_1111,
        }
    }

    /// Samples held so far.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether no sample was added.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    fn size(n: usize, tb: usize, modes: u8) -> usize {
        match n {
            0 | 1 => ONE_SAMPLE_LEN,
            _ => {
                let vb = MODES[modes.trailing_zeros() as usize].1;
                HEADER_LEN + (n - 2) * (tb + vb)
            }
        }
    }

    /// Adds a sample if it fits; returns `false` (chunk full) otherwise.
    pub fn try_push(&mut self, t: i64, v: f64) -> bool {
        let i = self.ts.len();
        let (mut tb, mut modes) = (self.tb, self.modes);
        if i == 1 {
            let dv = v - self.vs[0];
            let exact =
                !v.is_nan() && !self.vs[0].is_nan() && (self.vs[0] + dv).to_bits() == v.to_bits();
            if !exact {
                modes = 1 << 5;
            }
        } else if i >= 2 {
            let (t0, v0) = (self.ts[0], self.vs[0]);
            let dt = self.ts[1].wrapping_sub(t0);
            let d = t.wrapping_sub(t0.wrapping_add((i as i64).wrapping_mul(dt)));
            let need = if i8::try_from(d).is_ok() {
                1
            } else if i16::try_from(d).is_ok() {
                2
            } else if i32::try_from(d).is_ok() {
                4
            } else {
                8
            };
            tb = tb.max(need);
            modes &= Self::value_modes(v0, self.vs[1] - v0, i, v);
        }
        if Self::size(i + 1, tb, modes) > CHUNK_LEN {
            return false;
        }
        self.tb = tb;
        self.modes = modes;
        self.ts.push(t);
        self.vs.push(v);
        true
    }

    /// Which modes reproduce `v` exactly as sample `i` (NaN only survives raw storage).
    fn value_modes(v0: f64, dv: f64, i: usize, v: f64) -> u8 {
        let mut ok = 1 << 5;
        if v.is_nan() || v0.is_nan() || dv.is_nan() {
            return ok;
        }
        let base = v0 + (i as f64) * dv;
        if base.to_bits() == v.to_bits() {
            ok |= 1;
        }
        let delta = v - base;
        if delta.fract() == 0.0 {
            for (bit, limit) in [
                (1u8, i8::MAX as f64),
                (2, i16::MAX as f64),
                (3, i32::MAX as f64),
            ] {
                if delta.abs() <= limit && (base + (delta as i64) as f64).to_bits() == v.to_bits() {
                    ok |= 1 << bit;
                }
            }
        }
        if (base + (delta as f32) as f64).to_bits() == v.to_bits() {
            ok |= 1 << 4;
        }
        ok
    }

    /// The 1024-byte chunk data.
    pub fn finish(&self) -> Vec<u8> {
        let mut b = vec![0u8; CHUNK_LEN];
        let n = self.ts.len();
        let (is_int, vb) = MODES[self.modes.trailing_zeros() as usize];
        let tb = self.tb;
        // An empty chunk gets `used = 0`, which readers reject like Cortex does.
        let used = if n == 0 {
            0
        } else {
            Self::size(n, tb, self.modes)
        };
        b[0..2].copy_from_slice(&(used as u16).to_le_bytes());
        b[2] = tb as u8;
        b[3] = vb as u8;
        b[4] = is_int as u8;
        if n == 0 {
            return b;
        }
        let (t0, v0) = (self.ts[0], self.vs[0]);
        b[5..13].copy_from_slice(&t0.to_le_bytes());
        b[13..21].copy_from_slice(&v0.to_bits().to_le_bytes());
        if n == 1 {
            return b;
        }
        let dt = self.ts[1].wrapping_sub(t0);
        let dv = self.vs[1] - v0;
        let base_dt = if tb == 8 { self.ts[1] } else { dt };
        let base_dv = if vb == 8 {
            self.vs[1].to_bits()
        } else {
            dv.to_bits()
        };
        b[21..29].copy_from_slice(&base_dt.to_le_bytes());
        b[29..37].copy_from_slice(&base_dv.to_le_bytes());
        for i in 2..n {
            let off = HEADER_LEN + (i - 2) * (tb + vb);
            let (t, v) = (self.ts[i], self.vs[i]);
            let tval = if tb == 8 {
                t
            } else {
                t.wrapping_sub(t0.wrapping_add((i as i64).wrapping_mul(dt)))
            };
            b[off..off + tb].copy_from_slice(&tval.to_le_bytes()[..tb]);
            let voff = off + tb;
            let base = v0 + (i as f64) * dv;
            match (is_int, vb) {
                (true, 0) => {}
                (true, w) => {
                    b[voff..voff + w].copy_from_slice(&((v - base) as i64).to_le_bytes()[..w]);
                }
                (false, 4) => {
                    let d = (v - base) as f32;
                    b[voff..voff + 4].copy_from_slice(&d.to_bits().to_le_bytes());
                }
                _ => b[voff..voff + 8].copy_from_slice(&v.to_bits().to_le_bytes()),
            }
        }
        b
    }
}
