//! tsdb-block-format.md §10.2: a two-series block, byte for byte, and read back.

use tsdb_block::meta::BlockMeta;
use tsdb_block::{BlockReader, BlockWriter, BlockWriterOptions, WrittenBlock};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

const CHUNKS: &str = "85bd40dd01000000140100 03d00f3ff0000000000000e80740 02e137ffa08f9013de0d01 0001d00f000000000000000000e7dfea86";
const INDEX: &str = "
baaad70002000000180000000 5085f5f6e616d655f5f01610162036a6f62027570f0b315e700000000000000000000000b020004030101d00fd50f08502cc64b0a020004030201d00f0022975dcaea000000000c000000010000000100000004 20d59ba60000001000000001000000020000000100000002461967b50000000c000000020000000300000004495848d7 0000000c000000020000000300000004495848d700000008000000010000000 3a7692ed20000000800000001000000047 3a34a3900000015000000020108 5f5f6e616d655f5f5001036a6f6264290c874700000029000000040200007c02085f5f6e616d655f5f02757090010203 6a6f6201 61a401 02036a6f620162b4018f6efa0200000000000000050000000000000025000000000000004f00000000000000c4 000000000000007c00000000000000e1bacd2147";

fn labels(job: &str) -> Vec<(String, String)> {
    vec![("__name__".into(), "up".into()), ("job".into(), job.into())]
}

#[test]
fn two_series_block_is_byte_exact_and_reads_back() {
    let out = tempfile::tempdir().expect("tmp");
    let ulid = "01F8MECHZX3TBDSZ7XRADNSD00";
    let mut w = BlockWriter::create(out.path(), ulid, "user1", 0, 86_400_000).expect("create");
    w.add_series(&labels("a"), &[1000, 2000, 3005], &[1.0, 1.0, 2.5])
        .expect("series a");
    w.add_series(&labels("b"), &[1000], &[0.0])
        .expect("series b");
    let WrittenBlock { dir, meta, .. } = w.finish().expect("finish");
    assert_eq!(dir, out.path().join(ulid));
    assert!(!out.path().join(format!("{ulid}.tmp")).exists());

    assert_eq!(
        std::fs::read(dir.join("chunks/000001")).expect("chunks"),
        unhex(CHUNKS)
    );
    assert_eq!(
        std::fs::read(dir.join("index")).expect("index"),
        unhex(INDEX)
    );

    // The spec's uploaded meta.json, plus the segment_files we fill in.
    let mut want = BlockMeta::new(ulid, "user1", 0, 86_400_000);
    want.stats.num_samples = 4;
    want.stats.num_series = 2;
    want.stats.num_chunks = 2;
    let json = String::from_utf8(meta.to_go_json()).expect("utf8");
    assert!(
        json.starts_with("{\n\t\"ulid\": \"01F8MECHZX3TBDSZ7XRADNSD00\",\n\t\"minTime\": 0,\n"),
        "{json}"
    );
    assert!(json.contains("\t\t\"files\": [\n\t\t\t{\n\t\t\t\t\"rel_path\": \"chunks/000001\",\n\t\t\t\t\"size_bytes\": 53\n"));
    assert!(json.contains("\"rel_path\": \"index\",\n\t\t\t\t\"size_bytes\": 326\n"));
    assert!(json.ends_with("}\n}\n"));
    assert_eq!(meta.stats, want.stats);

    let r = BlockReader::open(&dir).expect("open");
    let series = r.series().expect("series");
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].labels, labels("a"));
    let (mut ts, mut vs) = (vec![], vec![]);
    r.read_samples(&series[0], &mut ts, &mut vs)
        .expect("samples");
    assert_eq!((ts, vs), (vec![1000, 2000, 3005], vec![1.0, 1.0, 2.5]));
}

#[test]
fn corruption_is_detected_with_the_file_named() {
    let out = tempfile::tempdir().expect("tmp");
    let mut w = BlockWriter::create(out.path(), "B", "t", 0, 10_000).expect("create");
    w.add_series(&labels("a"), &[1, 2, 3], &[1.0, 2.0, 3.0])
        .expect("series");
    let dir = w.finish().expect("finish").dir;
    let idx = std::fs::read(dir.join("index")).expect("index");
    for at in [6, 20, idx.len() - 10] {
        let mut bad = idx.clone();
        bad[at] ^= 0x40;
        std::fs::write(dir.join("index"), &bad).expect("write");
        let e = BlockReader::open(&dir).and_then(|r| r.series().map(|_| ()));
        assert!(e.is_err(), "flip at {at} undetected");
        assert!(e.expect_err("err").to_string().starts_with("index"));
    }
    std::fs::write(dir.join("index"), &idx).expect("restore");
    let seg = std::fs::read(dir.join("chunks/000001")).expect("seg");
    let mut bad = seg.clone();
    bad[14] ^= 1;
    std::fs::write(dir.join("chunks/000001"), &bad).expect("write");
    let r = BlockReader::open(&dir).expect("opens; chunks are checked on read");
    let s = r.series().expect("series");
    let e = r
        .read_samples(&s[0], &mut vec![], &mut vec![])
        .expect_err("crc");
    assert!(e.to_string().contains("chunks/000001"), "{e}");
}

#[test]
fn segments_roll_over_at_the_size_limit() {
    let out = tempfile::tempdir().expect("tmp");
    let options = BlockWriterOptions {
        max_segment_size: 4096,
        ..Default::default()
    };
    let mut w =
        BlockWriter::with_options(out.path(), "R", "t", 0, 1 << 40, options).expect("create");
    let ts: Vec<i64> = (0..1000).map(|i| i * 15_000).collect();
    let vs: Vec<f64> = (0..1000).map(|i| (i as f64).sqrt()).collect();
    for i in 0..50 {
        let l = vec![("__name__".to_string(), format!("s{i:02}"))];
        w.add_series(&l, &ts, &vs).expect("series");
    }
    let WrittenBlock { dir, meta, .. } = w.finish().expect("finish");
    assert!(
        meta.thanos.segment_files.len() > 5,
        "{:?}",
        meta.thanos.segment_files
    );
    for f in &meta.thanos.files {
        if let Some(size) = f.size_bytes {
            let real = std::fs::metadata(dir.join(&f.rel_path))
                .expect("file")
                .len();
            assert_eq!(real, size, "{}", f.rel_path);
            if f.rel_path.starts_with("chunks/") {
                assert!(size <= 4096, "{} is {size} bytes", f.rel_path);
            }
        }
    }
    let r = BlockReader::open(&dir).expect("open");
    for s in r.series().expect("series") {
        let (mut t, mut v) = (vec![], vec![]);
        r.read_samples(&s, &mut t, &mut v).expect("samples");
        assert_eq!(t, ts);
    }
}

/// Labels, timestamps and value bits of one series.
type SeriesSamples = (Vec<(String, String)>, Vec<i64>, Vec<u64>);
/// Labels, timestamps and values of one series to write.
type SeriesInput = (Vec<(String, String)>, Vec<i64>, Vec<f64>);

/// Every series of a block with its samples, in index order.
fn contents(dir: &std::path::Path) -> Vec<SeriesSamples> {
    let r = BlockReader::open(dir).expect("open");
    r.series()
        .expect("series")
        .iter()
        .map(|s| {
            let (mut ts, mut vs) = (vec![], vec![]);
            r.read_samples(s, &mut ts, &mut vs).expect("samples");
            (
                s.labels.clone(),
                ts,
                vs.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

fn many_series(n: usize) -> Vec<SeriesInput> {
    (0..n)
        .map(|i| {
            let labels = vec![
                ("__name__".to_string(), format!("metric_{}", i % 7)),
                (
                    "instance".to_string(),
                    format!("host-{i:06}.example.org:9100"),
                ),
                ("job".to_string(), ["node", "api", "db"][i % 3].to_string()),
            ];
            let ts: Vec<i64> = (0..(1 + i % 130) as i64)
                .map(|k| k * 15_000 + i as i64)
                .collect();
            let vs: Vec<f64> = ts.iter().map(|t| (*t as f64).sin()).collect();
            (labels, ts, vs)
        })
        .collect()
}

#[test]
fn series_in_any_order_make_the_same_index_and_samples() {
    let series = many_series(300);
    let write = |order: &[usize], ulid: &str| {
        let out = tempfile::tempdir().expect("tmp");
        let mut w = BlockWriter::create(out.path(), ulid, "t", 0, 86_400_000).expect("create");
        for &i in order {
            let (l, ts, vs) = &series[i];
            w.add_series(l, ts, vs).expect("series");
        }
        let b = w.finish().expect("finish");
        (out, b)
    };
    let mut sorted: Vec<usize> = (0..series.len()).collect();
    sorted.sort_by(|&a, &b| series[a].0.cmp(&series[b].0));
    let reversed: Vec<usize> = sorted.iter().rev().copied().collect();
    let (_a, a) = write(&sorted, "A");
    let (_b, b) = write(&reversed, "A");
    assert_eq!(contents(&a.dir), contents(&b.dir));
    assert_eq!(a.meta.stats, b.meta.stats);
    assert_eq!(a.meta.stats.num_series, 300);
    // Same chunks, stored in arrival order.
    assert_eq!(
        std::fs::metadata(a.dir.join("chunks/000001"))
            .expect("a")
            .len(),
        std::fs::metadata(b.dir.join("chunks/000001"))
            .expect("b")
            .len()
    );
}

#[test]
fn spilling_everything_gives_a_byte_identical_block() {
    // 40k series with distinct label values: at the smallest budget the series
    // records, the symbols and the postings all spill, and symbol lookups run on the
    // sampled table read back from disk.
    let series = many_series(40_000);
    let write = |budget: usize| {
        let out = tempfile::tempdir().expect("tmp");
        let options = BlockWriterOptions {
            memory_budget: budget,
            ..Default::default()
        };
        let mut w = BlockWriter::with_options(out.path(), "S", "t", 0, 86_400_000, options)
            .expect("create");
        for (l, ts, vs) in series.iter().rev() {
            w.add_series(l, ts, vs).expect("series");
        }
        let b = w.finish().expect("finish");
        assert!(!out.path().join("S.spill").exists(), "spill files removed");
        (out, b)
    };
    let (_a, roomy) = write(1 << 30);
    let (_b, tight) = write(1 << 20);
    assert_eq!(roomy.spilled_bytes, 0);
    assert!(tight.spilled_bytes > 1 << 20, "{}", tight.spilled_bytes);
    for f in ["index", "chunks/000001"] {
        assert!(
            std::fs::read(roomy.dir.join(f)).expect("roomy")
                == std::fs::read(tight.dir.join(f)).expect("tight"),
            "{f} differs"
        );
    }
    let got = contents(&tight.dir);
    assert_eq!(got.len(), series.len());
    let mut want: Vec<_> = series
        .iter()
        .map(|(l, ts, vs)| {
            (
                l.clone(),
                ts.clone(),
                vs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn one_label_set_given_twice_is_joined_or_left_out() {
    let out = tempfile::tempdir().expect("tmp");
    let mut w = BlockWriter::create(out.path(), "D", "t", 0, 100_000).expect("create");
    w.add_series(&labels("a"), &[1000, 2000], &[1.0, 2.0])
        .expect("a");
    w.add_series(&labels("b"), &[1000], &[1.0]).expect("b");
    w.add_series(&labels("a"), &[5000], &[5.0])
        .expect("a again, later");
    w.add_series(&labels("b"), &[1000, 9000], &[7.0, 9.0])
        .expect("b again, overlapping");
    assert!(
        w.add_series(
            &vec![("job".into(), "x".into()), ("__name__".into(), "up".into())],
            &[1],
            &[1.0]
        )
        .is_err(),
        "unsorted labels rejected"
    );
    assert!(
        w.add_series(&labels("c"), &[100_000], &[1.0]).is_err(),
        "sample at the block end rejected"
    );
    let b = w.finish().expect("finish");
    assert_eq!(b.left_out, vec![labels("b")]);
    let got = contents(&b.dir);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, vec![1000, 2000, 5000], "disjoint chunks joined");
    assert_eq!(got[1].1, vec![1000], "the first of two overlapping kept");
    assert_eq!(b.meta.stats.num_samples, 4);
}
