//! XOR chunk encoder, byte-identical to Prometheus' `xorAppender` (v2.x).

use crate::bits::BitWriter;

/// Sentinel for "no value window opened yet" (Prometheus uses 0xff).
const NO_WINDOW: u8 = 0xff;

/// Appends samples to one Prometheus XOR chunk.
///
/// At most 65535 samples fit in a chunk (the header is a u16); [`XorEncoder::append`]
/// refuses more rather than wrapping the count.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    w: BitWriter,
    num: u16,
    t: i64,
    t_delta: u64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// A new empty chunk.
    pub fn new() -> Self {
        Self::with_capacity(128)
    }

    /// A new empty chunk whose buffer starts with `bytes` of capacity.
    pub fn with_capacity(bytes: usize) -> Self {
        Self::from_writer(BitWriter::with_header(bytes))
    }

    /// A new empty chunk written into `buf` (cleared), reusing its allocation.
    pub fn reusing(buf: Vec<u8>) -> Self {
        Self::from_writer(BitWriter::reusing(buf))
    }

    /// A new empty chunk written after the bytes already in `buf`, so consecutive
    /// chunks land in one buffer without a copy; [`XorEncoder::into_bytes`] then
    /// returns `buf` with the chunk appended.
    pub fn appending_to(buf: Vec<u8>) -> Self {
        Self::from_writer(BitWriter::appending(buf))
    }

    fn from_writer(w: BitWriter) -> Self {
        Self {
            w,
            num: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Number of samples appended so far.
    pub fn num_samples(&self) -> usize {
        self.num as usize
    }

    /// Appends one sample. Returns `false` (and appends nothing) when the chunk
    /// already holds 65535 samples.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        let vbits = v.to_bits();
        if self.num >= 2 && self.num < u16::MAX {
            let delta = t.wrapping_sub(self.t) as u64;
            if delta == self.t_delta && vbits == self.v {
                // A repeat (real series have many): `0` for the delta-of-delta and `0`
                // for the value in one write.
                self.w.write_zero_bits(2);
            } else {
                self.write_dod(delta.wrapping_sub(self.t_delta) as i64);
                self.write_value(vbits);
                self.t_delta = delta;
            }
        } else if !self.append_first(t, vbits) {
            return false;
        }
        self.t = t;
        self.v = vbits;
        // The header is written once, when the chunk is closed.
        self.num += 1;
        true
    }

    /// The first two samples (and the full chunk's refusal), off the hot path.
    #[cold]
    fn append_first(&mut self, t: i64, vbits: u64) -> bool {
        match self.num {
            0 => {
                let zz = ((t << 1) ^ (t >> 63)) as u64;
                self.write_uvarint_bytes(zz);
                self.w.write_bits(vbits, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t) as u64;
                self.write_uvarint_bytes(delta);
                self.write_value(vbits);
                self.t_delta = delta;
            }
            _ => return false,
        }
        true
    }

    #[inline(always)]
    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.write_bit(false);
        } else if (-8191..=8192).contains(&dod) {
            self.w.write_prefixed(0b10, 2, dod as u64, 14);
        } else if (-65535..=65536).contains(&dod) {
            self.w.write_prefixed(0b110, 3, dod as u64, 17);
        } else if (-524287..=524288).contains(&dod) {
            self.w.write_prefixed(0b1110, 4, dod as u64, 20);
        } else {
            self.w.write_bits(0b1111, 4);
            self.w.write_bits(dod as u64, 64);
        }
    }

    fn write_uvarint_bytes(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.w.write_byte((x as u8) | 0x80);
            x >>= 7;
        }
        self.w.write_byte(x as u8);
    }

    #[inline]
    fn write_value(&mut self, vbits: u64) {
        let delta = vbits ^ self.v;
        if delta == 0 {
            self.w.write_bit(false);
            return;
        }
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            // `10` then the window's bits.
            let sig = 64 - self.leading as u32 - self.trailing as u32;
            if sig <= 62 {
                self.w.write_prefixed(0b10, 2, delta >> self.trailing, sig);
            } else {
                self.w.write_bits(0b10, 2);
                self.w.write_bits(delta >> self.trailing, sig);
            }
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let sig = 64 - leading as u32 - trailing as u32;
        // `11`, 5 bits leading, 6 bits width (64 is written as 0), then the bits.
        self.w
            .write_prefixed(0b11 << 5 | leading as u64, 7, sig as u64 & 0x3f, 6);
        self.w.write_bits(delta >> trailing, sig);
    }

    /// The chunk as it would be if closed now (a copy of this chunk alone).
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = self.w.start;
        let mut bytes = self.clone().into_bytes();
        bytes.drain(..start);
        bytes
    }

    /// Length in bytes of the chunk if closed now.
    pub fn encoded_len(&self) -> usize {
        self.w.len()
    }

    /// Consumes the encoder and returns its buffer holding the closed chunk (after
    /// whatever [`XorEncoder::appending_to`] was given).
    pub fn into_bytes(self) -> Vec<u8> {
        let (start, num) = (self.w.start, self.num);
        let mut buf = self.w.finish();
        buf[start..start + 2].copy_from_slice(&num.to_be_bytes());
        buf
    }

    /// Timestamp of the last appended sample (meaningless when empty).
    pub fn last_timestamp(&self) -> i64 {
        self.t
    }
}
