//! Every chunk object Cortex wrote for the corpus decodes, matches its key, and
//! together they reproduce `expected/` exactly (minus nothing, plus nothing).

use std::collections::{BTreeMap, HashMap};

use blocksconvert_tests::{DAY_MS, DAYS, Labels, TENANTS, corpus_dir, expected};
use cortex_chunk::{ChunkKey, Encoding, decode_object, decode_samples};

type SeriesSamples = BTreeMap<i64, u64>;

#[test]
fn every_corpus_chunk_decodes_and_reproduces_expected() {
    let root = corpus_dir().join("chunks");
    // (tenant, day) -> labels -> ts -> value bits, from decoding.
    let mut decoded: HashMap<(String, i64), HashMap<Labels, SeriesSamples>> = HashMap::new();
    let mut per_encoding: HashMap<Encoding, usize> = HashMap::new();
    let (mut objects, mut legacy) = (0, 0);
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    for tenant in TENANTS {
        for entry in std::fs::read_dir(root.join(tenant)).expect("tenant dir") {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().into_string().expect("utf8 name");
            let path = format!("{tenant}/{name}");
            let key = ChunkKey::parse_object_path(&path).expect("key parses");
            assert_eq!(key.object_path(), path, "key prints back to its path");
            let bytes = std::fs::read(entry.path()).expect("read chunk");
            let chunk = decode_object(&key, &bytes).unwrap_or_else(|e| panic!("{e}"));
            objects += 1;
            legacy += usize::from(key.is_legacy());
            assert_eq!(chunk.metadata.user_id, tenant);
            *per_encoding.entry(chunk.encoding).or_default() += 1;
            ts.clear();
            vs.clear();
            decode_samples(chunk.encoding, chunk.data, &mut ts, &mut vs)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!ts.is_empty(), "{path}: no samples");
            assert_eq!(ts[0], chunk.key.from, "{path}: first sample is `from`");
            assert!(
                ts.windows(2).all(|w| w[0] <= w[1]),
                "{path}: time goes back"
            );
            assert!(
                *ts.last().expect("non-empty") <= chunk.key.through,
                "{path}: past `through`"
            );
            let mut labels = chunk.metadata.labels.clone();
            labels.dedup();
            for (&t, &v) in ts.iter().zip(&vs) {
                let day = t.div_euclid(DAY_MS);
                let series = decoded
                    .entry((tenant.to_string(), day))
                    .or_default()
                    .entry(labels.clone())
                    .or_default();
                let prev = series.insert(t, v.to_bits());
                assert!(
                    prev.is_none_or(|p| p == v.to_bits()),
                    "{path}: replicas disagree at {t}"
                );
            }
        }
    }
    assert_eq!(objects, 5941, "objects under chunks/");
    assert_eq!(legacy, 18, "legacy-key objects");
    assert_eq!(
        per_encoding.len(),
        4,
        "all four encodings present: {per_encoding:?}"
    );

    let mut total = 0;
    for tenant in TENANTS {
        for day in DAYS {
            let mut got = decoded
                .remove(&(tenant.to_string(), day))
                .unwrap_or_default();
            for want in expected(tenant, day) {
                let have = got.remove(&want.labels).unwrap_or_else(|| {
                    panic!("{tenant}/{day}: series {:?} not decoded", want.labels)
                });
                let have: Vec<(i64, u64)> = have.into_iter().collect();
                assert_eq!(have, want.samples, "{tenant}/{day} {:?}", want.labels);
                total += have.len();
            }
            assert!(
                got.is_empty(),
                "{tenant}/{day}: extra series {:?}",
                got.keys().collect::<Vec<_>>()
            );
        }
    }
    assert_eq!(total, 281_119);
    // Only days outside the corpus may remain (chunks that start before the first day).
    assert!(
        decoded.keys().all(|(_, d)| !DAYS.contains(d)),
        "{:?}",
        decoded.keys()
    );
}

#[test]
fn value_text_reproduces_every_expected_value_string() {
    let mut n = 0;
    for tenant in TENANTS {
        for day in DAYS {
            let path = corpus_dir()
                .join("expected")
                .join(tenant)
                .join(format!("{day}.jsonl"));
            for line in std::fs::read_to_string(&path).expect("read").lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("json");
                for s in v["samples"].as_array().expect("samples") {
                    let text = s[1].as_str().expect("value");
                    let bits = blocksconvert_tests::parse_value(text);
                    assert_eq!(
                        cortex_chunk::value_text::value_text(f64::from_bits(bits)),
                        text
                    );
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 281_119);
}
