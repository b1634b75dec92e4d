//! Decode and encode throughput of every codec on realistic data.
//! Figures are per sample (criterion `Throughput::Elements`) or per chunk object.

use blocksconvert_benches::{counter_samples, gauge_samples, random_walk_samples};
use cortex_chunk::encoding::{DoubleDeltaEncoder, encode_bigchunk, encode_prometheus_xor};
use cortex_chunk::{ChunkMetadata, Encoding, decode_object, decode_samples, encode_object};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use synthetic_store::{DataProfile, GenerateConfig, samples_of_series};

fn xor(c: &mut Criterion) {
    let mut g = c.benchmark_group("xor");
    for (name, (ts, vs)) in [
        ("counter", counter_samples(120)),
        ("gauge", gauge_samples(120)),
        ("random_walk", random_walk_samples(120)),
    ] {
        let chunk = encode_prometheus_xor(&ts, &vs).expect("encode");
        g.throughput(Throughput::Elements(120));
        g.bench_function(format!("decode_120_{name}"), |b| {
            let (mut t, mut v) = (Vec::with_capacity(120), Vec::with_capacity(120));
            b.iter(|| {
                t.clear();
                v.clear();
                prom_xor::decode_xor_into(black_box(&chunk), &mut t, &mut v).expect("decode");
            })
        });
        g.bench_function(format!("encode_120_{name}"), |b| {
            b.iter(|| {
                let mut e = prom_xor::XorEncoder::with_capacity(256);
                for (&t, &v) in black_box(&ts).iter().zip(black_box(&vs)) {
                    e.append(t, v);
                }
                black_box(e.into_bytes().len())
            })
        });
    }
    // 120-sample chunks of the whole-plan bench's own series (both profiles): real
    // mixes of repeats and changes, where branches predict worse than on one series.
    for profile in [DataProfile::Random, DataProfile::Realistic] {
        let cfg = GenerateConfig {
            profile,
            ..GenerateConfig::default()
        };
        let mut chunks = Vec::new();
        for series in 0..16 {
            let (ts, vs) = samples_of_series(&cfg, 0, series);
            for (t, v) in ts.chunks(120).zip(vs.chunks(120)) {
                chunks.push(encode_prometheus_xor(t, v).expect("encode"));
            }
        }
        let n: usize = chunks
            .iter()
            .map(|c| prom_xor::xor_sample_count(c).expect("count"))
            .sum();
        let name = format!("{profile:?}").to_lowercase();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("decode_plan_{name}"), |b| {
            let (mut t, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
            b.iter(|| {
                t.clear();
                v.clear();
                for c in &chunks {
                    prom_xor::decode_xor_into(black_box(c), &mut t, &mut v).expect("decode");
                }
            })
        });
    }
    g.finish();
}

fn cortex_encodings(c: &mut Criterion) {
    let mut g = c.benchmark_group("cortex_decode");
    let (ts, vs) = counter_samples(1920);
    let mut dd = Vec::new();
    let mut e = DoubleDeltaEncoder::new();
    let mut dd_n = 0;
    for (&t, &v) in ts.iter().zip(&vs) {
        if !e.try_push(t, v) {
            break;
        }
        dd_n += 1;
    }
    dd.extend(e.finish());
    let (gts, gvs) = gauge_samples(1920);
    let cases = [
        (
            "bigchunk_1920",
            Encoding::Bigchunk,
            encode_bigchunk(&ts, &vs).expect("bigchunk"),
            ts.len(),
        ),
        (
            "bigchunk_1920_gauge",
            Encoding::Bigchunk,
            encode_bigchunk(&gts, &gvs).expect("bigchunk"),
            gts.len(),
        ),
        (
            "xorchunk_1920",
            Encoding::PrometheusXor,
            encode_prometheus_xor(&ts, &vs).expect("xor"),
            ts.len(),
        ),
        ("doubledelta_1k", Encoding::DoubleDelta, dd, dd_n),
    ];
    for (name, enc, data, n) in cases {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| {
            let (mut t, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
            b.iter(|| {
                t.clear();
                v.clear();
                decode_samples(enc, black_box(&data), &mut t, &mut v).expect("decode");
            })
        });
    }
    // Varbit chunks come from the corpus (we have no Varbit writer).
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/cortex-corpus/chunks/acme");
    if let Ok(dir) = std::fs::read_dir(&corpus) {
        let mut varbit = Vec::new();
        for e in dir.flatten() {
            let key = cortex_chunk::ChunkKey::parse_object_path(&format!(
                "acme/{}",
                e.file_name().to_string_lossy()
            ));
            let (Ok(key), Ok(bytes)) = (key, std::fs::read(e.path())) else {
                continue;
            };
            if let Ok(c) = decode_object(&key, &bytes)
                && c.encoding == Encoding::Varbit
            {
                varbit.push(c.data.to_vec());
            }
            if varbit.len() == 64 {
                break;
            }
        }
        let mut t0 = Vec::new();
        let mut v0 = Vec::new();
        let n: usize = varbit
            .iter()
            .map(|d| decode_samples(Encoding::Varbit, d, &mut t0, &mut v0).expect("varbit"))
            .sum();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("varbit_corpus_64_chunks", |b| {
            let (mut t, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
            b.iter(|| {
                t.clear();
                v.clear();
                for d in &varbit {
                    decode_samples(Encoding::Varbit, black_box(d), &mut t, &mut v).expect("decode");
                }
            })
        });
    }
    g.finish();
}

fn envelope(c: &mut Criterion) {
    // A ~12.8 KB Bigchunk object, like the Go reference measurement.
    let (ts, vs) = gauge_samples(1400);
    let data = encode_bigchunk(&ts, &vs).expect("bigchunk");
    let meta = ChunkMetadata {
        fingerprint: 0x1a2b_3c4d_5e6f_7081,
        user_id: "tenant-0".into(),
        from: ts[0],
        through: ts[ts.len() - 1],
        labels: vec![
            ("__name__".into(), "node_memory_MemAvailable_bytes".into()),
            ("instance".into(), "10.0.0.1:9100".into()),
            ("job".into(), "node".into()),
            ("namespace".into(), "ns-1".into()),
        ],
        encoding: 3,
    };
    let (object, key) = encode_object(&meta, &data);
    let mut g = c.benchmark_group("chunk_object");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("envelope_decode_{}B", object.len()), |b| {
        b.iter(|| {
            black_box(
                decode_object(&key, black_box(&object))
                    .expect("decode")
                    .data
                    .len(),
            )
        })
    });
    g.bench_function(format!("envelope_and_samples_{}B", object.len()), |b| {
        let (mut t, mut v) = (Vec::with_capacity(1400), Vec::with_capacity(1400));
        b.iter_batched_ref(
            || (),
            |_| {
                t.clear();
                v.clear();
                let c = decode_object(&key, black_box(&object)).expect("decode");
                decode_samples(c.encoding, c.data, &mut t, &mut v).expect("samples")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, xor, cortex_encodings, envelope);
criterion_main!(benches);
