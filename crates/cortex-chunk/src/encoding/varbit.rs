//! Varbit (encoding 2): a fixed 1024-byte, big-endian, bit-packed buffer.
//!
//! The decoder follows the state machine of `cortex-chunk-format.md` §4.4 and never
//! reads the writer-only footer.

use super::EncodingError;

const CHUNK_LEN: usize = 1024;
const CHUNK_BITS: usize = CHUNK_LEN * 8;

fn err(msg: impl Into<String>) -> EncodingError {
    EncodingError::Varbit(msg.into())
}

struct Bits<'a> {
    b: &'a [u8; CHUNK_LEN],
    pos: usize,
}

impl Bits<'_> {
    fn bits(&mut self, n: usize) -> Result<u64, EncodingError> {
        if self.pos + n > CHUNK_BITS {
            return Err(err(format!(
                "read of {n} bits at bit {} runs past the chunk",
                self.pos
            )));
        }
        let mut v = 0u64;
        for _ in 0..n {
            let bit = (self.b[self.pos / 8] >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | bit as u64;
            self.pos += 1;
        }
        Ok(v)
    }

    fn signed(&mut self, n: usize) -> Result<i64, EncodingError> {
        let u = self.bits(n)?;
        Ok(if n < 64 && u >= 1 << (n - 1) {
            u as i64 - (1i64 << n)
        } else {
            u as i64
        })
    }

    fn ones(&mut self, max: u32) -> Result<u32, EncodingError> {
        let mut n = 0;
        while n < max {
            if self.bits(1)? == 0 {
                break;
            }
            n += 1;
        }
        // Cortex's bounds check after the loop, kept for identical accept/reject.
        if self.pos / 8 >= CHUNK_LEN {
            return Err(err("control bits reach the end of the chunk"));
        }
        Ok(n)
    }
}

fn be_u64(b: &[u8; CHUNK_LEN], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

pub(super) fn decode(
    data: &[u8],
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
) -> Result<usize, EncodingError> {
    let mut b = [0u8; CHUNK_LEN];
    let copied = data.len().min(CHUNK_LEN);
    b[..copied].copy_from_slice(&data[..copied]);
    let len = u16::from_be_bytes([b[36], b[37]]) as usize;
    let marshal_len = (len.max(304) / 8 + 1).min(CHUNK_LEN);
    if copied != CHUNK_LEN && copied != marshal_len {
        return Err(err(format!(
            "data of {} bytes is neither 1024 nor the {marshal_len} bytes its header needs",
            data.len()
        )));
    }
    let t0 = be_u64(&b, 0) as i64;
    let v0 = be_u64(&b, 8);
    let last_t = be_u64(&b, 16) as i64;
    let last_v = be_u64(&b, 24);
    let first_dt = u32::from_be_bytes([0, b[32], b[33], b[34]]) as i64;
    let flags = b[35];
    let enc = flags & 3;
    let closed = flags & 0x80 != 0;

    let start = ts.len();
    let mut r = Bits { b: &b, pos: 0 };
    let (mut t, mut v) = (0i64, 0u64);
    let (mut dt, mut dv) = (0i64, 0i64);
    let mut repeats = 0u64;
    let (mut leading, mut sig) = (0usize, 1usize);

    let xor_step = |r: &mut Bits<'_>,
                    v: u64,
                    leading: &mut usize,
                    sig: &mut usize|
     -> Result<u64, EncodingError> {
        match r.ones(2)? {
            0 => return Ok(v),
            1 => {}
            _ => {
                *leading = r.bits(5)? as usize;
                *sig = r.bits(6)? as usize + 1;
            }
        }
        if *leading + *sig > 64 {
            return Err(err(format!(
                "XOR window leading {} + width {} exceeds 64",
                leading, sig
            )));
        }
        let x = r.bits(*sig)?;
        Ok(v ^ (x << (64 - *sig - *leading)))
    };

    loop {
        if r.pos > len {
            break;
        }
        if r.pos == len && repeats == 0 {
            if closed {
                ts.push(last_t);
                vs.push(f64::from_bits(last_v));
            }
            break;
        }
        if r.pos == 0 {
            t = t0;
            v = v0;
            r.pos = 1;
            ts.push(t);
            vs.push(f64::from_bits(v));
            continue;
        }
        if r.pos == 1 {
            if len == 304 && !closed {
                r.pos = 305;
                ts.push(last_t);
                vs.push(f64::from_bits(last_v));
                continue;
            }
            dt = first_dt;
            t = t0.wrapping_add(dt);
            match enc {
                0 => r.pos = 304,
                1 => {
                    dv = i32::from_be_bytes([b[38], b[39], b[40], b[41]]) as i64;
                    v = (f64::from_bits(v) + dv as f64).to_bits();
                    r.pos = 336;
                }
                2 => {
                    r.pos = 304;
                    v = xor_step(&mut r, v, &mut leading, &mut sig)?;
                }
                _ => {
                    v = be_u64(&b, 38);
                    r.pos = 368;
                }
            }
            ts.push(t);
            vs.push(f64::from_bits(v));
            continue;
        }
        if repeats > 0 {
            repeats -= 1;
        } else {
            match r.ones(3)? {
                0 => repeats = r.bits(7)?,
                1 => dt = dt.wrapping_add(r.signed(6)?),
                2 => dt = dt.wrapping_add(r.signed(17)?),
                _ => dt = dt.wrapping_add(r.signed(23)?),
            }
        }
        t = t.wrapping_add(dt);
        match enc {
            0 => {}
            1 => {
                let ddv = match r.ones(4)? {
                    0 => 0,
                    1 => r.signed(6)?,
                    2 => r.signed(13)?,
                    3 => r.signed(20)?,
                    _ => r.signed(33)?,
                };
                dv = dv.wrapping_add(ddv);
                v = (f64::from_bits(v) + dv as f64).to_bits();
            }
            2 => v = xor_step(&mut r, v, &mut leading, &mut sig)?,
            _ => v = r.bits(64)?,
        }
        ts.push(t);
        vs.push(f64::from_bits(v));
    }
    Ok(ts.len() - start)
}
