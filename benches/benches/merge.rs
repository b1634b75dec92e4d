//! The builder's merge core on one day of one series stored by three replicas that cut
//! their chunks at different boundaries (the common RF=3 case), per input sample.

use block_builder::merge::{MergeScratch, Run, merge_series};
use blocksconvert_benches::counter_samples;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tsdb_block::{EncodedSeries, encode_series};

fn replicas(n: usize) -> (Vec<i64>, Vec<f64>, Vec<Run>) {
    let (ts, vs) = counter_samples(n);
    let (mut all_t, mut all_v, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    // Replica r cuts at offsets shifted by r * 37 samples, about every 120 samples.
    for r in 0..3usize {
        let mut start = 0;
        let mut cut = 120 - r * 37;
        while start < n {
            let end = (start + cut).min(n);
            let s = all_t.len();
            all_t.extend_from_slice(&ts[start..end]);
            all_v.extend_from_slice(&vs[start..end]);
            runs.push(Run {
                start: s,
                end: all_t.len(),
                rank: runs.len() as u32,
            });
            start = end;
            cut = 120;
        }
    }
    (all_t, all_v, runs)
}

fn merge(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge");
    let n = 5760;
    let (ts, vs, runs) = replicas(n);
    g.throughput(Throughput::Elements(ts.len() as u64));
    let mut scratch = MergeScratch::default();
    let (mut out_t, mut out_v) = (Vec::new(), Vec::new());
    g.bench_function("rf3_day_per_input_sample", |b| {
        let (mut t, mut v) = (ts.clone(), vs.clone());
        b.iter(|| {
            let s = merge_series(
                black_box(&runs),
                &mut t,
                &mut v,
                0,
                i64::MAX,
                &mut scratch,
                &mut out_t,
                &mut out_v,
            );
            black_box(s.output)
        })
    });
    let mut enc = EncodedSeries::default();
    let (ot, ov) = counter_samples(n);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("encode_day_per_output_sample", |b| {
        b.iter(|| {
            encode_series(black_box(&ot), black_box(&ov), &mut enc);
            black_box(enc.data.len())
        })
    });
    g.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
