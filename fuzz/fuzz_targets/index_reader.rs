//! Index reader on arbitrary bytes: open, walk every postings list and series.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tsdb_block::index::IndexReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = IndexReader::from_bytes(data.to_vec()) {
        for (_, _, off) in r.postings_table().iter().take(1000) {
            if let Ok(ids) = r.postings_at(*off) {
                for id in ids.into_iter().take(1000) {
                    let _ = r.series(id);
                }
            }
        }
    }
});
