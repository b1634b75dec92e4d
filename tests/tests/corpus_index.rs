//! Our index-row generator reproduces the rows Cortex wrote for the corpus, and the
//! DynamoDB export files hold exactly the rows of `index/*.jsonl`.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use blocksconvert_tests::{TENANTS, corpus_dir};
use cortex_chunk::{ChunkKey, decode_object};
use cortex_index::dynamo_export::find_exports;
use cortex_index::schema::SchemaConfig;

type Row = (String, String, Vec<u8>, Option<Vec<u8>>);

fn corpus_rows() -> HashMap<(String, String, Vec<u8>), Option<Vec<u8>>> {
    let mut rows = HashMap::new();
    for entry in std::fs::read_dir(corpus_dir().join("index")).expect("index dir") {
        let path = entry.expect("entry").path();
        let table = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        for line in std::fs::read_to_string(&path).expect("read").lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let r = STANDARD.decode(v["r"].as_str().expect("r")).expect("b64");
            let c = v["v"].as_str().map(|s| STANDARD.decode(s).expect("b64"));
            rows.insert(
                (table.clone(), v["h"].as_str().expect("h").to_owned(), r),
                c,
            );
        }
    }
    rows
}

#[test]
fn export_files_hold_exactly_the_index_rows() {
    let want = corpus_rows();
    let mut got: HashSet<Row> = HashSet::new();
    let exports = find_exports(&corpus_dir().join("dynamodb-export")).expect("exports");
    assert_eq!(exports.len(), 2);
    for e in &exports {
        e.for_each_item(|i| {
            assert!(
                got.insert((e.table.clone(), i.hash, i.range, i.value)),
                "duplicate item"
            );
        })
        .expect("read export");
    }
    let want: HashSet<Row> = want
        .into_iter()
        .map(|((t, h, r), v)| (t, h, r, v))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn generated_rows_match_what_cortex_wrote() {
    let schema = SchemaConfig::load(&corpus_dir().join("schema.yaml")).expect("schema");
    let rows = corpus_rows();
    let mut checked = 0;
    for tenant in TENANTS {
        for entry in std::fs::read_dir(corpus_dir().join("chunks").join(tenant)).expect("dir") {
            let entry = entry.expect("entry");
            let path = format!("{tenant}/{}", entry.file_name().to_string_lossy());
            let key = ChunkKey::parse_object_path(&path).expect("key");
            let bytes = std::fs::read(entry.path()).expect("read");
            let chunk = decode_object(&key, &bytes).expect("decode");
            let mut labels = chunk.metadata.labels.clone();
            labels.dedup();
            for e in schema.chunk_entries(
                tenant,
                &labels,
                &chunk.key.external_key(),
                chunk.key.from,
                chunk.key.through,
            ) {
                let got = rows.get(&(e.table.clone(), e.hash.clone(), e.range.clone()));
                assert!(
                    got.is_some(),
                    "{path}: row {} {:?} not in the corpus index",
                    e.hash,
                    String::from_utf8_lossy(&e.range)
                );
                assert_eq!(
                    got.cloned().flatten(),
                    e.value,
                    "{path}: value of {}",
                    e.hash
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 30_000, "checked {checked} rows");
}
