//! The generated store is self-consistent and complete: plans list exactly the chunk
//! rows of the index export, every object decodes, and each series-day holds exactly
//! the requested samples once replicas are merged.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use blocksconvert_tests::DAY_MS;
use cortex_chunk::{ChunkKey, Encoding, decode_object, decode_samples};
use cortex_index::dynamo_export::find_exports;
use cortex_index::entry::parse_chunk_row;
use cortex_index::schema::SchemaConfig;
use plan_format::{Compression, read_plan};
use synthetic_store::{GenerateConfig, generate, tenant_name};

#[test]
fn generated_store_is_consistent_and_complete() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = GenerateConfig {
        out: dir.path().join("store"),
        tenants: 2,
        days: 3,
        series: 24,
        samples_per_series: 720,
        encodings: vec![
            Encoding::Bigchunk,
            Encoding::PrometheusXor,
            Encoding::DoubleDelta,
        ],
        schema_versions: vec!["v9".into(), "v10".into(), "v11".into()],
        ..GenerateConfig::default()
    };
    let summary = generate(&cfg, |_| {}).expect("generate");
    assert_eq!(summary.distinct_samples, 2 * 3 * 24 * 720);
    assert_eq!(summary.input_samples, 3 * summary.distinct_samples);
    assert_eq!(summary.plans, 6);
    let schema = SchemaConfig::load(&cfg.out.join("schema.yaml")).expect("schema");
    assert_eq!(
        schema
            .configs
            .iter()
            .map(|c| c.schema.as_str())
            .collect::<Vec<_>>(),
        ["v9", "v10", "v11"]
    );

    // Chunk rows of the export, grouped like a scanner would.
    let mut from_index: BTreeMap<(String, i64), BTreeMap<String, BTreeSet<String>>> =
        BTreeMap::new();
    let mut rows = 0;
    for e in find_exports(&cfg.out.join("dynamodb-export")).expect("exports") {
        rows += e
            .for_each_item(|i| {
                if let Some(r) = parse_chunk_row(&i.hash, &i.range) {
                    from_index
                        .entry((r.user, r.day))
                        .or_default()
                        .entry(r.series_id)
                        .or_default()
                        .insert(r.chunk_id);
                }
            })
            .expect("read export");
    }
    assert_eq!(rows, summary.index_rows);

    let mut all_ids = BTreeSet::new();
    let mut encodings = HashMap::new();
    for t in 0..cfg.tenants {
        for d in 0..cfg.days as i64 {
            let day = cfg.start_day + d;
            let tenant = tenant_name(t);
            let path = cfg
                .out
                .join("plans")
                .join(&tenant)
                .join(format!("{day}.plan.snappy"));
            let plan = read_plan(
                "p",
                std::fs::File::open(&path).expect("plan"),
                Compression::Snappy,
            )
            .expect("read");
            assert_eq!(plan.duplicate_entries, 0);
            let planned: BTreeMap<String, BTreeSet<String>> = plan
                .series
                .iter()
                .map(|(s, cs)| (s.clone(), cs.iter().cloned().collect()))
                .collect();
            assert_eq!(
                Some(&planned),
                from_index.get(&(tenant.clone(), day)),
                "{tenant}/{day}"
            );
            assert_eq!(plan.series.len(), cfg.series);
            for (sid, ids) in &plan.series {
                let mut merged = BTreeMap::new();
                for id in ids {
                    all_ids.insert(id.clone());
                    let key = ChunkKey::parse_for_user(id, &tenant).expect("key");
                    let bytes = std::fs::read(cfg.out.join("chunks").join(key.object_path()))
                        .expect("object");
                    let c = decode_object(&key, &bytes).expect("decode");
                    assert_eq!(cortex_index::series_id::series_id(&c.metadata.labels), *sid);
                    *encodings.entry(c.encoding).or_insert(0) += 1;
                    let (mut ts, mut vs) = (vec![], vec![]);
                    decode_samples(c.encoding, c.data, &mut ts, &mut vs).expect("samples");
                    for (t, v) in ts.into_iter().zip(vs) {
                        let prev = merged.insert(t, v.to_bits());
                        assert!(prev.is_none_or(|p| p == v.to_bits()), "replicas disagree");
                    }
                }
                let in_day = merged
                    .keys()
                    .filter(|t| (day * DAY_MS..(day + 1) * DAY_MS).contains(*t))
                    .count();
                assert_eq!(in_day, cfg.samples_per_series, "{tenant}/{day} {sid}");
            }
        }
    }
    assert_eq!(
        all_ids.len() as u64,
        summary.chunk_objects,
        "every object is in some plan"
    );
    assert_eq!(encodings.len(), 3, "{encodings:?}");
}
