//! Spec test vectors (tsdb-block-format.md §10.1) and round-trip properties.

use prom_xor::{XorDecodeError, XorEncoder, decode_xor};
use proptest::prelude::*;

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = XorEncoder::new();
    for &(t, v) in samples {
        assert!(e.append(t, v));
    }
    e.into_bytes()
}

#[test]
fn three_sample_vector_is_byte_exact() {
    let bytes = encode(&[(1000, 1.0), (2000, 1.0), (3005, 2.5)]);
    let want: [u8; 20] = [
        0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x40, 0x02, 0xe1, 0x37,
        0xff, 0xa0,
    ];
    assert_eq!(bytes, want);
    let (ts, vs) = decode_xor(&bytes).expect("decodes");
    assert_eq!(ts, vec![1000, 2000, 3005]);
    assert_eq!(vs, vec![1.0, 1.0, 2.5]);
}

#[test]
fn one_sample_chunk_keeps_the_trailing_zero_byte() {
    let bytes = encode(&[(1000, 1.0)]);
    assert_eq!(
        bytes,
        [0x00, 0x01, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn two_sample_chunk_vector() {
    let bytes = encode(&[(1000, 1.0), (2000, 1.0)]);
    assert_eq!(
        bytes,
        [
            0x00, 0x02, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x00
        ]
    );
}

#[test]
fn cortex_bigchunk_subchunk_vector_decodes() {
    // Sub-chunk of the Bigchunk vector in cortex-chunk-format.md §9.2.
    let sub = [
        0x00, 0x03, 0x80, 0x80, 0xf4, 0xf6, 0x90, 0x5d, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x98, 0x75,
        0x30, 0x97, 0xff, 0xc0,
    ];
    let (ts, vs) = decode_xor(&sub).expect("decodes");
    assert_eq!(ts, vec![1600000000000, 1600000015000, 1600000030000]);
    assert_eq!(vs, vec![1.0, 1.0, 2.0]);
}

#[test]
fn dod_boundaries_use_the_asymmetric_ranges() {
    // +8192 fits 14 bits, -8192 does not; +2^(n-1) must decode as positive.
    for dod in [
        8192i64,
        -8191,
        -8192,
        65536,
        -65535,
        -65536,
        524288,
        -524287,
        -524288,
        1 << 40,
    ] {
        let s = [(0, 0.0), (1000, 0.0), (2000 + dod, 0.0)];
        let (ts, _) = decode_xor(&encode(&s)).expect("decodes");
        assert_eq!(ts, vec![0, 1000, 2000 + dod], "dod {dod}");
    }
}

#[test]
fn truncated_and_headerless_chunks_are_errors() {
    assert_eq!(
        decode_xor(&[0x00]),
        Err(XorDecodeError::MissingHeader { len: 1 })
    );
    let full = encode(&[(1000, 1.0), (2000, 1.0), (3005, 2.5)]);
    for cut in 2..full.len() - 1 {
        assert!(
            matches!(
                decode_xor(&full[..cut]),
                Err(XorDecodeError::Truncated { expected: 3, .. })
            ),
            "cut at {cut}"
        );
    }
    assert_eq!(decode_xor(&[0, 0]).expect("empty chunk"), (vec![], vec![]));
}

#[test]
fn a_header_announcing_more_repeats_than_the_bits_hold_is_truncated() {
    // 65535 samples announced, 20 zero bytes of body: the first sample takes 72 bits,
    // the second 9, and each repeat (`00`) 2 of the 79 left, so 2 + 39 are whole.
    let mut chunk = vec![0xff, 0xff];
    chunk.extend_from_slice(&[0; 20]);
    assert_eq!(
        decode_xor(&chunk),
        Err(XorDecodeError::Truncated {
            expected: 65_535,
            decoded: 41
        })
    );
}

proptest! {
    #[test]
    fn round_trip_any_bits(
        start in any::<i64>(),
        deltas in proptest::collection::vec(prop_oneof![
            0i64..30_000, -5_000i64..5_000, any::<i32>().prop_map(i64::from), any::<i64>()
        ], 0..300),
        values in proptest::collection::vec(any::<u64>(), 300),
    ) {
        let mut t = start;
        let mut samples = vec![];
        for (i, d) in std::iter::once(0).chain(deltas).enumerate() {
            t = t.wrapping_add(d);
            samples.push((t, f64::from_bits(values[i % values.len()])));
        }
        let bytes = encode(&samples);
        let (ts, vs) = decode_xor(&bytes).expect("round trip decodes");
        prop_assert_eq!(ts, samples.iter().map(|s| s.0).collect::<Vec<_>>());
        let got: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
        let want: Vec<u64> = samples.iter().map(|s| s.1.to_bits()).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn chunks_appended_to_one_buffer_equal_chunks_written_alone(
        prefix in proptest::collection::vec(any::<u8>(), 0..20),
        values in proptest::collection::vec(any::<u64>(), 1..200),
        split in 0usize..200,
    ) {
        let samples: Vec<(i64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 15_000 + (v % 7) as i64, f64::from_bits(v)))
            .collect();
        let (first, second) = samples.split_at(split.min(samples.len()));
        let mut buf = prefix.clone();
        let mut want = prefix.clone();
        for part in [first, second] {
            let mut e = XorEncoder::appending_to(buf);
            for &(t, v) in part {
                e.append(t, v);
            }
            let alone = encode(part);
            prop_assert_eq!(e.encoded_len(), alone.len());
            prop_assert_eq!(&e.to_bytes(), &alone);
            buf = e.into_bytes();
            want.extend_from_slice(&alone);
        }
        prop_assert_eq!(buf, want);
    }

    #[test]
    fn a_cut_chunk_reports_exactly_the_samples_it_holds_whole(
        values in proptest::collection::vec(any::<u64>(), 2..150),
        jitter in proptest::collection::vec(0i64..40_000, 150),
        cut_at in any::<proptest::sample::Index>(),
    ) {
        let samples: Vec<(i64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 60_000 + jitter[i], f64::from_bits(v)))
            .collect();
        let full = encode(&samples);
        let cut = 2 + cut_at.index(full.len() - 2);
        let with_count = |n: usize| {
            let mut b = full[..cut].to_vec();
            b[..2].copy_from_slice(&(n as u16).to_be_bytes());
            decode_xor(&b)
        };
        match decode_xor(&full[..cut]) {
            // Only padding was cut.
            Ok((ts, _)) => prop_assert_eq!(ts.len(), samples.len()),
            Err(XorDecodeError::Truncated { expected, decoded }) => {
                prop_assert_eq!(expected, samples.len());
                let (ts, vs) = with_count(decoded).expect("the samples said to be whole");
                let want: Vec<i64> = samples[..decoded].iter().map(|s| s.0).collect();
                prop_assert_eq!(ts, want);
                let got: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
                let want: Vec<u64> = samples[..decoded].iter().map(|s| s.1.to_bits()).collect();
                prop_assert_eq!(got, want);
                prop_assert!(with_count(decoded + 1).is_err(), "one more is not whole");
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_xor(&bytes);
    }

    /// Runs of repeats (same interval, same value) are decoded many samples at a time:
    /// runs of any length (longer than one 64-bit look-ahead, up to the chunk's last
    /// sample, next to the zero padding) decode exactly, and a cut chunk still reports
    /// exactly the samples it holds whole.
    #[test]
    fn runs_of_repeats_decode_exactly_whole_or_cut(
        segments in proptest::collection::vec((0usize..80, any::<u64>(), 0i64..3), 1..12),
        cut_at in any::<proptest::sample::Index>(),
    ) {
        let mut samples = vec![];
        let mut t = 1_605_657_600_000i64;
        for (repeats, value, jitter) in segments {
            for _ in 0..=repeats {
                t += 15_000;
                samples.push((t, f64::from_bits(value)));
            }
            // A changed interval ends the run too.
            t += jitter;
        }
        samples.truncate(u16::MAX as usize);
        let full = encode(&samples);
        let (ts, vs) = decode_xor(&full).expect("whole chunk");
        prop_assert_eq!(ts, samples.iter().map(|s| s.0).collect::<Vec<_>>());
        let got: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(got, samples.iter().map(|s| s.1.to_bits()).collect::<Vec<_>>());

        let cut = 2 + cut_at.index(full.len() - 1);
        match decode_xor(&full[..cut]) {
            Ok((ts, _)) => prop_assert_eq!(ts.len(), samples.len()),
            Err(XorDecodeError::Truncated { expected, decoded }) => {
                prop_assert_eq!(expected, samples.len());
                let mut b = full[..cut].to_vec();
                b[..2].copy_from_slice(&(decoded as u16).to_be_bytes());
                let (ts, vs) = decode_xor(&b).expect("the samples said to be whole");
                let want: Vec<i64> = samples[..decoded].iter().map(|s| s.0).collect();
                prop_assert_eq!(ts, want);
                let got: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
                let want: Vec<u64> = samples[..decoded].iter().map(|s| s.1.to_bits()).collect();
                prop_assert_eq!(got, want);
                b[..2].copy_from_slice(&(decoded as u16 + 1).to_be_bytes());
                prop_assert!(decode_xor(&b).is_err(), "one more is not whole");
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

/// A literal, bit-at-a-time model of Prometheus' `bstream` and `xorAppender`
/// (tsdb-block-format.md §3), used as the reference for the optimised encoder.
mod reference {
    pub struct Stream {
        pub buf: Vec<u8>,
        free: u8,
    }

    impl Stream {
        pub fn new() -> Self {
            Self {
                buf: vec![0, 0],
                free: 0,
            }
        }
        fn bit(&mut self, b: bool) {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            if b {
                let l = self.buf.len() - 1;
                self.buf[l] |= 1 << (self.free - 1);
            }
            self.free -= 1;
        }
        fn byte(&mut self, x: u8) {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let l = self.buf.len() - 1;
            self.buf[l] |= ((x as u16) >> (8 - self.free)) as u8;
            self.buf.push(((x as u16) << self.free) as u8);
        }
        fn bits(&mut self, u: u64, n: u32) {
            let mut u = if n == 0 { 0 } else { u << (64 - n) };
            let mut n = n;
            while n >= 8 {
                self.byte((u >> 56) as u8);
                u <<= 8;
                n -= 8;
            }
            while n > 0 {
                self.bit(u >> 63 == 1);
                u <<= 1;
                n -= 1;
            }
        }
    }

    pub fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut s = Stream::new();
        let (mut t, mut v, mut td, mut lead, mut trail) = (0i64, 0u64, 0u64, 0xffu8, 0u8);
        for (i, &(ts, val)) in samples.iter().enumerate() {
            let vb = val.to_bits();
            let mut value = |s: &mut Stream, v: u64| {
                let d = vb ^ v;
                if d == 0 {
                    return s.bit(false);
                }
                s.bit(true);
                let l = (d.leading_zeros() as u8).min(31);
                let tz = d.trailing_zeros() as u8;
                if lead != 0xff && l >= lead && tz >= trail {
                    s.bit(false);
                    s.bits(d >> trail, 64 - lead as u32 - trail as u32);
                } else {
                    lead = l;
                    trail = tz;
                    s.bit(true);
                    s.bits(l as u64, 5);
                    let sig = 64 - l as u32 - tz as u32;
                    s.bits(sig as u64, 6);
                    s.bits(d >> tz, sig);
                }
            };
            match i {
                0 => {
                    let mut zz = ((ts << 1) ^ (ts >> 63)) as u64;
                    while zz >= 0x80 {
                        s.byte(zz as u8 | 0x80);
                        zz >>= 7;
                    }
                    s.byte(zz as u8);
                    s.bits(vb, 64);
                }
                1 => {
                    let mut d = ts.wrapping_sub(t) as u64;
                    td = d;
                    while d >= 0x80 {
                        s.byte(d as u8 | 0x80);
                        d >>= 7;
                    }
                    s.byte(d as u8);
                    value(&mut s, v);
                }
                _ => {
                    let d = ts.wrapping_sub(t) as u64;
                    let dod = d.wrapping_sub(td) as i64;
                    td = d;
                    if dod == 0 {
                        s.bit(false);
                    } else if (-8191..=8192).contains(&dod) {
                        s.bits(0b10, 2);
                        s.bits(dod as u64, 14);
                    } else if (-65535..=65536).contains(&dod) {
                        s.bits(0b110, 3);
                        s.bits(dod as u64, 17);
                    } else if (-524287..=524288).contains(&dod) {
                        s.bits(0b1110, 4);
                        s.bits(dod as u64, 20);
                    } else {
                        s.bits(0b1111, 4);
                        s.bits(dod as u64, 64);
                    }
                    value(&mut s, v);
                }
            }
            t = ts;
            v = vb;
            let n = ((i + 1) as u16).to_be_bytes();
            s.buf[0] = n[0];
            s.buf[1] = n[1];
        }
        s.buf
    }
}

proptest! {
    #[test]
    fn encoder_matches_the_bit_by_bit_reference(
        start in any::<i64>(),
        // Runs of one interval and one value give repeats (`00`).
        deltas in proptest::collection::vec(prop_oneof![
            1 => 14_990i64..15_010, 1 => 0i64..3, 1 => -9000i64..9000,
            1 => any::<i32>().prop_map(i64::from), 1 => any::<i64>(), 4 => Just(15_000i64)
        ], 0..200),
        values in proptest::collection::vec(prop_oneof![
            1 => any::<u64>(), 1 => (0u64..1000).prop_map(|x| (x as f64).to_bits()),
            1 => Just(0x7ff0_0000_0000_0002u64), 4 => Just(1.5f64.to_bits())
        ], 201),
    ) {
        let mut t = start;
        let mut samples = vec![];
        for (i, d) in std::iter::once(0).chain(deltas).enumerate() {
            t = t.wrapping_add(d);
            samples.push((t, f64::from_bits(values[i])));
            // Every prefix must match too: it exercises each possible trailing state.
            prop_assert_eq!(encode(&samples), reference::encode(&samples), "after {} samples", i + 1);
        }
        // And back: escapes and runs of repeats in one stream.
        let (ts, vs) = decode_xor(&encode(&samples)).expect("decodes");
        prop_assert_eq!(ts, samples.iter().map(|s| s.0).collect::<Vec<_>>());
        let got: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(got, samples.iter().map(|s| s.1.to_bits()).collect::<Vec<_>>());
    }
}
