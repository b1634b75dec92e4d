//! XOR decoder on arbitrary bytes; re-encoding what decoded must decode identically.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((ts, vs)) = prom_xor::decode_xor(data) {
        let mut e = prom_xor::XorEncoder::new();
        for (&t, &v) in ts.iter().zip(&vs) {
            e.append(t, v);
        }
        let (t2, v2) = prom_xor::decode_xor(&e.into_bytes()).expect("re-encoded chunk decodes");
        assert_eq!(ts, t2);
        assert!(vs.iter().zip(&v2).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
});
