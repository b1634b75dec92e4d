//! Bit-level reader and writer with Prometheus `bstream` semantics (MSB first).

/// Writer that models Prometheus' `bstream` byte for byte.
///
/// Prometheus keeps `count` = free bits in the last byte. Writing a whole byte at
/// an aligned position pushes an extra zero byte that stays in the output, which is
/// why we track `free` exactly instead of a plain bit count.
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    pub(crate) buf: Vec<u8>,
    /// Unused low bits of the last byte of `buf` (0..=8).
    free: u8,
}

impl BitWriter {
    pub(crate) fn with_header(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(2));
        buf.extend_from_slice(&[0, 0]);
        Self { buf, free: 0 }
    }

    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        if bit {
            let last = self.buf.len() - 1;
            self.buf[last] |= 1 << (self.free - 1);
        }
        self.free -= 1;
    }

    #[inline]
    pub(crate) fn write_byte(&mut self, byte: u8) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        let last = self.buf.len() - 1;
        // Shifting in u16 keeps `free == 8` well defined (Go shifts a byte by 8 to 0).
        self.buf[last] |= ((byte as u16) >> (8 - self.free)) as u8;
        self.buf.push(((byte as u16) << self.free) as u8);
    }

    /// Writes the low `n` bits of `value`, most significant first (`n <= 64`).
    #[inline]
    pub(crate) fn write_bits(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        let mut u = value << (64 - n);
        let mut n = n;
        while n >= 8 {
            self.write_byte((u >> 56) as u8);
            u <<= 8;
            n -= 8;
        }
        while n > 0 {
            self.write_bit((u >> 63) == 1);
            u <<= 1;
            n -= 1;
        }
    }
}

/// MSB-first bit reader over a byte slice with a 64-bit left-aligned buffer.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`.
    pos: usize,
    /// Pending bits, left-aligned (bit 63 is the next bit).
    buf: u64,
    /// Number of valid bits in `buf`.
    valid: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            buf: 0,
            valid: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        if self.valid == 0
            && let Some(word) = self.data.get(self.pos..self.pos + 8)
        {
            let mut arr = [0u8; 8];
            arr.copy_from_slice(word);
            self.buf = u64::from_be_bytes(arr);
            self.valid = 64;
            self.pos += 8;
            return;
        }
        while self.valid <= 56 && self.pos < self.data.len() {
            self.buf |= (self.data[self.pos] as u64) << (56 - self.valid);
            self.valid += 8;
            self.pos += 1;
        }
    }

    /// Takes `n <= valid` bits from the buffer.
    #[inline]
    fn take(&mut self, n: u32) -> u64 {
        if n == 0 {
            return 0;
        }
        let v = self.buf >> (64 - n);
        self.buf = self.buf.checked_shl(n).unwrap_or(0);
        self.valid -= n;
        v
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        if self.valid == 0 {
            self.refill();
            if self.valid == 0 {
                return None;
            }
        }
        let bit = self.buf >> 63 == 1;
        self.buf <<= 1;
        self.valid -= 1;
        Some(bit)
    }

    /// Reads `n <= 64` bits as an unsigned integer.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n <= self.valid {
            return Some(self.take(n));
        }
        let have = self.valid;
        let hi = self.take(have);
        self.refill();
        let rest = n - have;
        if rest > self.valid {
            return None;
        }
        let lo = self.take(rest);
        Some(hi.checked_shl(rest).unwrap_or(0) | lo)
    }

    /// Reads up to `max` consecutive one bits, consuming the terminating zero (if any).
    #[inline]
    pub(crate) fn read_ones(&mut self, max: u32) -> Option<u32> {
        if self.valid < max {
            self.refill();
        }
        if self.valid >= max {
            // Fast path: count leading ones within the buffer.
            let ones = (!self.buf).leading_zeros().min(max);
            let consumed = if ones < max { ones + 1 } else { ones };
            self.take(consumed);
            return Some(ones);
        }
        let mut ones = 0;
        while ones < max {
            if self.read_bit()? {
                ones += 1;
            } else {
                break;
            }
        }
        Some(ones)
    }

    #[inline]
    pub(crate) fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|b| b as u8)
    }

    pub(crate) fn read_uvarint(&mut self) -> Option<u64> {
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.read_byte()?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return None; // overflows u64
                }
                return Some(x | (b as u64) << shift);
            }
            x |= ((b & 0x7f) as u64) << shift;
            shift += 7;
        }
        None
    }

    pub(crate) fn read_varint(&mut self) -> Option<i64> {
        let ux = self.read_uvarint()?;
        let x = (ux >> 1) as i64;
        Some(if ux & 1 != 0 { !x } else { x })
    }
}
