//! Chunk-object envelope decoder on arbitrary bytes, with and without a checksum key.
#![no_main]
use cortex_chunk::{ChunkKey, decode_object, decode_samples};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let legacy = ChunkKey::parse_legacy("1:2:3", "u").expect("static key");
    if let Ok(c) = decode_object(&legacy, data) {
        let (mut t, mut v) = (Vec::new(), Vec::new());
        let _ = decode_samples(c.encoding, c.data, &mut t, &mut v);
    }
    let checked = ChunkKey { checksum: Some(crc32c::crc32c(data)), ..legacy };
    let _ = decode_object(&checked, data);
});
