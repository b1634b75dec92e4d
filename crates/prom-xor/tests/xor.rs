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
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_xor(&bytes);
    }
}
