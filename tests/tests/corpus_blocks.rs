//! Blocks written from the corpus ground truth are byte-identical to the blocks
//! Cortex's own builder wrote, and Prometheus' tools read them back exactly.

use blocksconvert_tests::{
    DAYS, TENANTS, cortex_block, expected, promtool, promtool_labels, promtool_value,
    write_expected_block,
};
use tsdb_block::BlockReader;

#[test]
fn blocks_match_cortex_byte_for_byte() {
    let out = tempfile::tempdir().expect("tmp");
    for tenant in TENANTS {
        for day in DAYS {
            let theirs = cortex_block(tenant, day);
            let ulid = theirs
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let ours = write_expected_block(tenant, day, &ulid, out.path());
            for file in ["index", "chunks/000001"] {
                let a = std::fs::read(ours.join(file)).expect("ours");
                let b = std::fs::read(theirs.join(file)).expect("theirs");
                assert!(
                    a == b,
                    "{tenant}/{day} {file}: {} vs {} bytes differ",
                    a.len(),
                    b.len()
                );
            }
            assert!(!theirs.join("chunks/000002").exists());
            // meta.json: identical except that we also fill the optional segment_files.
            let mut ours_meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(ours.join("meta.json")).expect("meta"))
                    .expect("json");
            let theirs_bytes = std::fs::read(theirs.join("meta.json")).expect("meta");
            assert_eq!(
                ours_meta["thanos"]["segment_files"],
                serde_json::json!(["000001"])
            );
            let mut meta: tsdb_block::BlockMeta =
                serde_json::from_value(ours_meta.take()).expect("meta");
            meta.thanos.segment_files.clear();
            assert_eq!(
                String::from_utf8(meta.to_go_json()),
                String::from_utf8(theirs_bytes),
                "{tenant}/{day}"
            );
        }
    }
}

#[test]
fn our_reader_reads_cortex_blocks_exactly() {
    for tenant in TENANTS {
        for day in DAYS {
            let r = BlockReader::open(&cortex_block(tenant, day)).expect("open");
            let want = expected(tenant, day);
            let series = r.series().expect("series");
            assert_eq!(series.len(), want.len());
            for (s, w) in series.iter().zip(&want) {
                assert_eq!(s.labels, w.labels);
                let (mut ts, mut vs) = (vec![], vec![]);
                r.read_samples(s, &mut ts, &mut vs).expect("samples");
                let got: Vec<(i64, u64)> = ts
                    .into_iter()
                    .zip(vs.into_iter().map(f64::to_bits))
                    .collect();
                assert_eq!(got, w.samples, "{tenant}/{day} {:?}", w.labels);
            }
        }
    }
}

#[test]
fn promtool_analyzes_and_dumps_our_blocks_exactly() {
    for tenant in TENANTS {
        for day in DAYS {
            let db = tempfile::tempdir().expect("tmp");
            write_expected_block(tenant, day, "01M7XKPNRX3J9BK4WV9CHQSEXG", db.path());
            let analyze = promtool()
                .args(["tsdb", "analyze"])
                .arg(db.path())
                .output()
                .expect("run analyze");
            assert!(
                analyze.status.success(),
                "analyze: {}",
                String::from_utf8_lossy(&analyze.stderr)
            );
            let text = String::from_utf8_lossy(&analyze.stdout);
            let want = expected(tenant, day);
            assert!(text.contains(&format!("Series: {}", want.len())), "{text}");

            // promtool's read-only DB open insists on a (possibly empty) WAL directory.
            std::fs::create_dir_all(db.path().join("wal")).expect("wal dir");
            let dump = promtool()
                .args([
                    "tsdb",
                    "dump",
                    "--min-time",
                    &(day * 86_400_000).to_string(),
                ])
                .args(["--max-time", &((day + 1) * 86_400_000).to_string()])
                .arg(db.path())
                .output()
                .expect("run dump");
            assert!(
                dump.status.success(),
                "dump: {}",
                String::from_utf8_lossy(&dump.stderr)
            );
            let got: Vec<String> = String::from_utf8_lossy(&dump.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            let mut lines = Vec::new();
            for s in &want {
                let l = promtool_labels(&s.labels);
                for (t, v) in &s.samples {
                    lines.push(format!("{l} {} {t}", promtool_value(*v)));
                }
            }
            assert_eq!(got.len(), lines.len(), "{tenant}/{day}: sample count");
            for (g, w) in got.iter().zip(&lines) {
                assert_eq!(g, w, "{tenant}/{day}");
            }
        }
    }
}
