//! Every Cortex sample encoding on arbitrary data (first byte picks the encoding).
#![no_main]
use cortex_chunk::{Encoding, decode_samples};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let enc = [Encoding::DoubleDelta, Encoding::Varbit, Encoding::Bigchunk, Encoding::PrometheusXor][sel as usize % 4];
    let (mut t, mut v) = (Vec::new(), Vec::new());
    if decode_samples(enc, rest, &mut t, &mut v).is_err() {
        assert!(t.is_empty() && v.is_empty(), "buffers restored on error");
    }
});
