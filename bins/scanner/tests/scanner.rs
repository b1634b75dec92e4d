//! `blocksconvert-scanner` as a real process against every index source and plans
//! backend: the fixture index as a DynamoDB export (local and on S3 served by
//! `moto_server`) and loaded into a live DynamoDB-compatible server (`dynalite`). Plans
//! must equal the series→chunk grouping the index implies (v9, v10 and v11 days), be
//! byte-identical across sources and backends, honour every filter, survive SIGKILL
//! without re-reading finished work, and never overwrite work the scheduler started.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod support;

use support::*;

use base64::Engine;
use blocksconvert_tests::{DynaliteServer, MotoServer, corpus_dir, moto_options, upload_tree};
use cortex_index::dynamo_export::{ExportWriter, find_exports};
use cortex_index::entry::parse_chunk_row;
use index_source::dynamo::{DynamoOptions, DynamoSource};
use plan_format::{Compression, read_plan};
use storage::StoreLocation;

/// (tenant, day) → series → chunk IDs (sorted).
type Grouping = BTreeMap<(String, i64), BTreeMap<String, Vec<String>>>;

/// The grouping the fixture index implies: every series→chunk row, once.
fn index_grouping() -> Grouping {
    let mut g: Grouping = BTreeMap::new();
    for table in ["cortex_index_2654", "cortex_index_2655"] {
        let text = std::fs::read_to_string(corpus_dir().join(format!("index/{table}.jsonl")))
            .expect("index jsonl");
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let range = base64::engine::general_purpose::STANDARD
                .decode(v["r"].as_str().expect("r"))
                .expect("b64");
            if let Some(r) = parse_chunk_row(v["h"].as_str().expect("h"), &range) {
                g.entry((r.user, r.day))
                    .or_default()
                    .entry(r.series_id)
                    .or_default()
                    .push(r.chunk_id);
            }
        }
    }
    for series in g.values_mut() {
        for chunks in series.values_mut() {
            chunks.sort();
            let n = chunks.len();
            chunks.dedup();
            assert_eq!(n, chunks.len(), "the fixture index repeats a row");
        }
    }
    g
}

/// Compares groupings, describing the difference briefly (the maps are large).
fn assert_same(got: &Grouping, want: &Grouping, context: &str) {
    if got == want {
        return;
    }
    let keys = |g: &Grouping| g.keys().cloned().collect::<BTreeSet<_>>();
    let (gk, wk) = (keys(got), keys(want));
    let differing: Vec<_> = gk
        .intersection(&wk)
        .filter(|k| got[*k] != want[*k])
        .map(|k| {
            let (g, w) = (&got[k], &want[k]);
            let extra = g.keys().filter(|s| !w.contains_key(*s)).count();
            let missing = w.keys().filter(|s| !g.contains_key(*s)).count();
            format!("{k:?}: {extra} extra series, {missing} missing, others differ in chunks")
        })
        .collect();
    panic!(
        "{context}: plans differ; extra plans {:?}, missing plans {:?}, differing {differing:?}",
        gk.difference(&wk).collect::<Vec<_>>(),
        wk.difference(&gk).collect::<Vec<_>>()
    );
}

/// Plans below `dir` (`<tenant>/<day>.plan.*`), checking each holds every series once.
fn read_plans(dir: &Path) -> Grouping {
    let mut g = Grouping::new();
    for (rel, bytes) in plan_files(dir) {
        let c = Compression::from_name(&rel).expect("plan suffix");
        let plan = read_plan(&rel, &bytes[..], c).expect("valid plan");
        assert_eq!(plan.duplicate_entries, 0, "{rel}: a series appears twice");
        let (user, day) = rel.split_once('/').expect("tenant/day");
        assert_eq!(user, plan.user);
        assert_eq!(
            day.split('.').next(),
            Some(plan.day_index.to_string().as_str())
        );
        let mut series = plan.series;
        for chunks in series.values_mut() {
            let n = chunks.len();
            chunks.sort();
            chunks.dedup();
            assert_eq!(n, chunks.len(), "{rel}: a chunk appears twice");
        }
        g.insert((plan.user, plan.day_index), series);
    }
    g
}

/// Creates the index tables in DynamoDB (Cortex's key schema) and loads every item of
/// the fixture export.
async fn load_index(endpoint: &str) -> u64 {
    let dynamo = DynamoSource::connect(DynamoOptions {
        endpoint: Some(endpoint.to_owned()),
        static_credentials: Some(("test".into(), "test".into())),
        ..DynamoOptions::default()
    })
    .await
    .expect("client");
    let mut total = 0;
    for export in find_exports(&export_dir()).expect("exports") {
        dynamo
            .create_index_table(&export.table)
            .await
            .expect("create table");
        let mut items = Vec::new();
        export
            .for_each_item(|i| items.push(i))
            .expect("read export");
        dynamo.put_items(&export.table, &items).await.expect("load");
        total += items.len() as u64;
    }
    total
}

#[test]
fn export_scan_matches_the_index_and_cortex_plans() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plans = tmp.path().join("plans");
    let out = run(&[
        "--index",
        &export_dir().display().to_string(),
        "--plans",
        &plans.display().to_string(),
        "--work-dir",
        &tmp.path().join("work").display().to_string(),
        "--memory-budget",
        "16KiB",
    ]);
    assert_eq!(rows_this_run(&out), TOTAL_ROWS, "{out}");
    let got = read_plans(&plans);
    let want = index_grouping();
    assert_eq!(got.len(), 9, "3 tenants × 3 days (v9, v10, v11)");
    let days: BTreeSet<i64> = got.keys().map(|k| k.1).collect();
    assert_eq!(days, BTreeSet::from([18584, 18585, 18586]));
    assert_same(&got, &want, "export scan vs index");
    // Cortex's own scanner produced the same grouping (its entries are unsorted).
    let cortex = read_plans(&corpus_dir().join("cortex-output/plans"));
    assert_same(&got, &cortex, "export scan vs Cortex's plans");
    // Nothing left in the work dir but the done markers.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("work/tables"))
        .expect("tables")
        .flat_map(|t| std::fs::read_dir(t.expect("t").path()).expect("dir"))
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "done.json" && n != "fingerprint.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `--dry-run` uploads nothing to `--plans` and counts exactly what the index holds.
#[test]
fn a_dry_run_uploads_nothing_and_counts_the_index() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plans = tmp.path().join("plans");
    let out = run(&[
        "--index",
        &export_dir().display().to_string(),
        "--plans",
        &plans.display().to_string(),
        "--work-dir",
        &tmp.path().join("work").display().to_string(),
        "--dry-run",
    ]);
    assert!(!plans.exists(), "a dry run wrote to --plans");
    let want = index_grouping();
    let series: usize = want.values().map(|s| s.len()).sum();
    let chunks: usize = want
        .values()
        .flat_map(|s| s.values())
        .map(|c| c.len())
        .sum();
    assert!(
        out.contains(&format!(
            "dry run: 9 tenant-days of 3 tenants, {series} series, {chunks} chunk objects (0 unparseable IDs)"
        )),
        "{out}"
    );
    // The dry run's plans are the real scan's plans.
    assert_same(
        &read_plans(&tmp.path().join("work/dry-run/plans")),
        &want,
        "dry-run plans vs index",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_dynamodb_and_s3_scans_equal_the_local_export_scan() {
    let tmp = tempfile::tempdir().expect("tmp");
    let local = tmp.path().join("local");
    run(&[
        "--index",
        &export_dir().display().to_string(),
        "--plans",
        &local.display().to_string(),
        "--work-dir",
        &tmp.path().join("w0").display().to_string(),
    ]);
    let reference = plan_files(&local);
    assert_eq!(reference.len(), 9);

    // Live DynamoDB (dynalite): parallel scan with small pages.
    let dynalite = DynaliteServer::start();
    assert_eq!(load_index(&dynalite.endpoint).await, TOTAL_ROWS);
    let live = tmp.path().join("live");
    let out = run(&[
        "--index",
        "dynamodb://us-east-1",
        "--dynamodb.endpoint",
        &dynalite.endpoint,
        "--dynamodb.segments",
        "3",
        "--dynamodb.page-size",
        "200",
        "--plans",
        &live.display().to_string(),
        "--work-dir",
        &tmp.path().join("w1").display().to_string(),
        "--memory-budget",
        "64KiB",
    ]);
    assert_eq!(rows_this_run(&out), TOTAL_ROWS, "{out}");
    assert_eq!(
        plan_files(&live),
        reference,
        "live scan differs from the export scan"
    );

    // The export on S3 (moto), plans to S3.
    let moto = MotoServer::start();
    moto.create_bucket("index");
    let opts = moto_options(&moto);
    let exports = StoreLocation::open("s3://index/exports", &opts, false).expect("s3");
    upload_tree(&export_dir(), &exports).await;
    let s3_args = blocksconvert_tests::s3_flags(&moto.endpoint);
    let mut args = vec![
        "--index",
        "s3://index/exports",
        "--plans",
        "s3://index/migration",
        "--work-dir",
    ];
    let w2 = tmp.path().join("w2").display().to_string();
    args.push(&w2);
    args.extend(s3_args.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(rows_this_run(&out), TOTAL_ROWS, "{out}");
    let plans = StoreLocation::open("s3://index/migration", &opts, false).expect("s3");
    let mut on_s3 = BTreeMap::new();
    let mut scan_records = 0;
    for (key, _) in plans.list("").await.expect("list") {
        if key.starts_with(".blocksconvert-scanner/") {
            scan_records += 1;
            continue;
        }
        on_s3.insert(key.clone(), plans.get(&key).await.expect("get").to_vec());
    }
    assert_eq!(on_s3, reference, "S3 scan differs from the local one");
    // Which tables are done is recorded next to the plans (the work dir is a cache).
    assert_eq!(scan_records, 2, "one done record per table");
    // Downloads of remote data files are removed once read.
    let downloads = tmp.path().join("w2/downloads");
    let left = std::fs::read_dir(&downloads)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        left,
        0,
        "downloaded export files left in {}",
        downloads.display()
    );
}

#[test]
fn filters_select_exactly_what_they_say() {
    let want = index_grouping();
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("scanner.yaml");
    std::fs::write(
        &config,
        "tenant: [acme]\nignore-tenants-regex: '^nobody$'\n",
    )
    .expect("config");
    type Pick = fn(&str, i64) -> bool;
    // Table 2654 holds day 18584 (v9); table 2655 holds 18585 (v10) and 18586 (v11).
    let cases: Vec<(Vec<String>, Pick)> = vec![
        (
            vec![
                "--tenant".into(),
                "acme".into(),
                "--tenant".into(),
                "42".into(),
            ],
            |u, _| u == "acme" || u == "42",
        ),
        (
            vec!["--tenant".into(), "acme,team-a.prod".into()],
            |u, _| u != "42",
        ),
        (
            vec!["--ignore-tenants-regex".into(), "^team-".into()],
            |u, _| !u.starts_with("team-"),
        ),
        (
            vec![
                "--tenant".into(),
                "acme,42".into(),
                "--ignore-tenants-regex".into(),
                "^4".into(),
            ],
            |u, _| u == "acme",
        ),
        (
            vec!["--tables".into(), "cortex_index_2654".into()],
            |_, d| d == 18584,
        ),
        (vec!["--tables-limit".into(), "1".into()], |_, d| d >= 18585),
        (vec!["--period-end".into(), "2020-11-19".into()], |_, d| {
            d == 18584
        }),
        (
            vec!["--period-start".into(), "2020-11-19".into()],
            |_, d| d >= 18585,
        ),
        (
            vec![
                "--period-start".into(),
                "2020-11-18".into(),
                "--period-end".into(),
                "2020-11-20".into(),
            ],
            |_, _| true,
        ),
        // Cortex's single-dash spellings, `-flag=value` and `-flag value`.
        (
            vec![
                "-scanner.allowed-users=acme".into(),
                "-scanner.ignore-users-regex".into(),
                "^nobody$".into(),
                "-scanner.scan-period-start=2020-11-19".into(),
            ],
            |u, d| u == "acme" && d >= 18585,
        ),
        (
            vec!["--config.file".into(), config.display().to_string()],
            |u, _| u == "acme",
        ),
        (
            vec![
                "--config.file".into(),
                config.display().to_string(),
                "--tenant".into(),
                "42".into(),
            ],
            |u, _| u == "42",
        ),
    ];
    for (i, (flags, pick)) in cases.into_iter().enumerate() {
        let plans = tmp.path().join(format!("plans{i}"));
        let mut args = vec![
            "--index".to_owned(),
            export_dir().display().to_string(),
            "--plans".to_owned(),
            plans.display().to_string(),
            "--work-dir".to_owned(),
            tmp.path().join(format!("work{i}")).display().to_string(),
        ];
        args.extend(flags.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs);
        let expected: Grouping = want
            .iter()
            .filter(|((u, d), _)| pick(u, *d))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert!(!expected.is_empty());
        assert_same(&read_plans(&plans), &expected, &format!("flags {flags:?}"));
    }
    // A table that is not an index table of the schema is an error, not silence.
    let out = scanner(&[
        "--index",
        &export_dir().display().to_string(),
        "--plans",
        &tmp.path().join("x").display().to_string(),
        "--work-dir",
        &tmp.path().join("wx").display().to_string(),
        "--tables",
        "cortex_index_9999",
    ])
    .output()
    .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cortex_index_9999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_table_resumes_without_rereading_checkpointed_rows() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reference_dir = tmp.path().join("reference");
    run(&[
        "--index",
        &export_dir().display().to_string(),
        "--plans",
        &reference_dir.display().to_string(),
        "--work-dir",
        &tmp.path().join("w0").display().to_string(),
    ]);
    let dynalite = DynaliteServer::start();
    load_index(&dynalite.endpoint).await;
    let plans = tmp.path().join("plans");
    let work = tmp.path().join("work");
    let base: Vec<String> = [
        "--index",
        "dynamodb://us-east-1",
        "--dynamodb.endpoint",
        &dynalite.endpoint,
        "--dynamodb.segments",
        "4",
        "--dynamodb.page-size",
        "50",
        "--plans",
        &plans.display().to_string(),
        "--work-dir",
        &work.display().to_string(),
        "--checkpoint-interval",
        "50ms",
        "--memory-budget",
        "64KiB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut slow: Vec<&str> = base.iter().map(String::as_str).collect();
    slow.extend(["--max-rows-per-second", "2000"]);
    let mut child = scanner(&slow).spawn().expect("spawn scanner");
    kill_mid_table(&mut child, &work);
    let (checkpointed, _, _) = checkpointed_rows(&work);
    assert!(checkpointed > 0 && checkpointed < TOTAL_ROWS);
    assert!(
        plan_files(&plans).is_empty(),
        "nothing is uploaded before a table is fully read"
    );

    let fast: Vec<&str> = base.iter().map(String::as_str).collect();
    let out = run(&fast);
    assert_eq!(
        rows_this_run(&out),
        TOTAL_ROWS - checkpointed,
        "the restart read exactly the rows after the checkpoints:\n{out}"
    );
    assert_eq!(
        plan_files(&plans),
        plan_files(&reference_dir),
        "same plans as an uninterrupted scan"
    );
    assert_eq!(uploaded(&out), 9, "every plan uploaded once:\n{out}");
    // A third run skips both finished tables: no rows read, nothing uploaded.
    let out = run(&fast);
    assert_eq!(rows_this_run(&out), 0, "{out}");
    assert_eq!(out.matches("already done").count(), 2, "{out}");
}

/// Writes a copy of the fixture export with some rows dropped and some added.
fn altered_export(dir: &Path, drop: impl Fn(&str) -> bool, extra: &[(&str, Vec<u8>)]) {
    for export in find_exports(&export_dir()).expect("exports") {
        let mut w = ExportWriter::create(dir, &export.table, "0001-altered", 2).expect("create");
        export
            .for_each_item(|i| {
                if !drop(&i.hash) {
                    w.write(&i.hash, &i.range, i.value.as_deref())
                        .expect("write");
                }
            })
            .expect("read");
        if export.table == "cortex_index_2655" {
            for (h, r) in extra {
                w.write(h, r, None).expect("write");
            }
        }
        w.finish().expect("finish");
    }
}

#[test]
fn rescans_never_silently_collide_with_started_plans() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plans = tmp.path().join("plans");
    let p = plans.display().to_string();
    let scan = |index: &Path, work: &str, extra: &[&str]| {
        let mut args = vec![
            "--index".to_owned(),
            index.display().to_string(),
            "--plans".to_owned(),
            p.clone(),
            "--work-dir".to_owned(),
            tmp.path().join(work).display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        scanner(&refs).output().expect("run")
    };
    check(scan(&export_dir(), "w0", &[]));
    let first = plan_files(&plans);
    // The scheduler finished acme/18586; nothing touched 42/18585.
    std::fs::write(
        plans.join("acme/18586.finished.01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        "x",
    )
    .expect("marker");
    // New index content for both days (one series dropped from each).
    let altered = tmp.path().join("altered");
    let first_sid = |u: &str, d: i64| {
        read_plans(&plans)[&(u.to_owned(), d)]
            .keys()
            .next()
            .expect("a series")
            .clone()
    };
    let (s1, s2) = (first_sid("acme", 18586), first_sid("42", 18585));
    let (h1, h2) = (format!("acme:d18586:{s1}"), format!("42:d18585:{s2}"));
    altered_export(&altered, |h| h == h1 || h == h2, &[]);
    let out = scan(&altered, "w1", &[]);
    assert_eq!(out.status.code(), Some(2), "a refused plan exits with 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("acme/18586.plan.snappy") && stderr.contains("finished"),
        "{stderr}"
    );
    let now = plan_files(&plans);
    assert_eq!(
        now["acme/18586.plan.snappy"], first["acme/18586.plan.snappy"],
        "started plan kept"
    );
    assert_ne!(
        now["42/18585.plan.snappy"], first["42/18585.plan.snappy"],
        "unstarted plan updated"
    );
    assert!(!read_plans(&plans)[&("42".to_owned(), 18585)].contains_key(&s2));
    // Identical content again: nothing is uploaded twice.
    let out = check(scan(
        &altered,
        "w2",
        &["--changed-plans", "refuse", "--tenant", "42,team-a.prod"],
    ));
    assert_eq!(uploaded(&out), 0, "{out}");
    assert!(out.contains("unchanged"), "{out}");
    // The operator chooses to rebuild: the new generation replaces the finished day's plan.
    check(scan(&altered, "w1", &["--changed-plans", "replace"]));
    assert!(!read_plans(&plans)[&("acme".to_owned(), 18586)].contains_key(&s1));
    // W9: a second encoding of a day is refused.
    let out = scan(
        &export_dir(),
        "w3",
        &["--plan-compression", "gzip", "--tenant", "team-a.prod"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid"));
    assert!(!plans.join("team-a.prod/18584.plan.gz").exists());
}

#[test]
fn bad_entries_and_corrupt_exports_fail_loudly() {
    let tmp = tempfile::tempdir().expect("tmp");
    // An unparseable series-to-chunk row (day is not a number).
    let bad = tmp.path().join("bad");
    altered_export(
        &bad,
        |_| false,
        &[("acme:dXYZ:sid", b"0000\0\0acme/1:2:3:4\x003\0".to_vec())],
    );
    let args = |work: &str| {
        vec![
            "--index".to_owned(),
            bad.display().to_string(),
            "--plans".to_owned(),
            tmp.path().join("plans").display().to_string(),
            "--work-dir".to_owned(),
            tmp.path().join(work).display().to_string(),
        ]
    };
    let a = args("w0");
    let out = scanner(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("acme:dXYZ:sid") && stderr.contains("max-bad-entries"),
        "{stderr}"
    );
    let mut a = args("w0");
    a.extend(["--max-bad-entries".to_owned(), "1".to_owned()]);
    check(
        scanner(&a.iter().map(String::as_str).collect::<Vec<_>>())
            .output()
            .expect("run"),
    );
    assert_same(
        &read_plans(&tmp.path().join("plans")),
        &index_grouping(),
        "bad entry tolerated",
    );

    // A data file that does not match its manifest's MD5.
    let corrupt = tmp.path().join("corrupt");
    altered_export(&corrupt, |_| false, &[]);
    // In the first table scanned (newest first), so no plan of any table is uploaded.
    let data = find_exports(&corrupt)
        .expect("exports")
        .into_iter()
        .find(|e| e.table == "cortex_index_2655")
        .expect("table")
        .dir
        .join("data");
    let file = std::fs::read_dir(&data)
        .expect("data")
        .next()
        .expect("file")
        .expect("e")
        .path();
    let mut bytes = std::fs::read(&file).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&file, bytes).expect("write");
    let out = scanner(&[
        "--index",
        &corrupt.display().to_string(),
        "--plans",
        &tmp.path().join("plans2").display().to_string(),
        "--work-dir",
        &tmp.path().join("w2").display().to_string(),
    ])
    .output()
    .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        stderr.contains(&name),
        "error names the data file: {stderr}"
    );
    assert!(plan_files(&tmp.path().join("plans2")).is_empty());
}

/// `--log.format json` writes one JSON object per line; text logs written to a pipe
/// carry no colour codes.
#[test]
fn logs_are_json_or_plain_text_off_a_terminal() {
    let tmp = tempfile::tempdir().expect("tmp");
    for format in ["json", "text", "logfmt"] {
        let out = scanner(&[
            "--index",
            &export_dir().display().to_string(),
            "--plans",
            &tmp.path()
                .join(format!("plans-{format}"))
                .display()
                .to_string(),
            "--work-dir",
            &tmp.path()
                .join(format!("work-{format}"))
                .display()
                .to_string(),
            "-log.level=info",
            "--log.format",
            format,
        ])
        .output()
        .expect("run scanner");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines.iter().any(|l| l.contains("scanning table")),
            "info lines are logged:\n{stderr}"
        );
        assert!(
            !stderr.contains('\u{1b}'),
            "no ANSI escapes in piped logs:\n{stderr}"
        );
        match format {
            "json" => {
                for l in &lines {
                    let v: serde_json::Value =
                        serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                    assert!(
                        v["level"].is_string() && v["fields"]["message"].is_string(),
                        "{l}"
                    );
                }
            }
            "logfmt" => assert!(
                lines
                    .iter()
                    .all(|l| l.starts_with("ts=") && l.contains(" level=")),
                "{stderr}"
            ),
            _ => {}
        }
    }
}
