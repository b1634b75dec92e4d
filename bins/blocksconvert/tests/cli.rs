//! The `blocksconvert` binary end to end: inspect a Cortex-written chunk and block,
//! generate a store.

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

fn corpus() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/cortex-corpus");
    assert!(dir.is_dir(), "Cortex corpus missing at {}", dir.display());
    dir
}

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn inspect_chunk_json_has_the_documented_fields() {
    let file = corpus().join("chunks/acme/12841356518008576258:1605781935009:1605783719988");
    let doc: serde_json::Value = serde_json::from_str(&run(&[
        "inspect",
        "chunk",
        file.to_str().expect("path"),
        "--json",
    ]))
    .expect("json");
    assert_eq!(
        doc["key"],
        "12841356518008576258:1605781935009:1605783719988"
    );
    assert_eq!(doc["from"], 1605781935009i64);
    assert_eq!(doc["through"], 1605783719988i64);
    assert!(doc["labels"]["__name__"].is_string());
    assert!(doc["encoding"].is_string());
    let samples = doc["samples"].as_array().expect("samples");
    assert!(!samples.is_empty());
    assert_eq!(samples[0][0], 1605781935009i64);
    assert!(samples[0][1].is_string());
}

#[test]
fn inspect_block_and_a_bad_chunk() {
    let block = corpus().join("cortex-output/blocks/acme/01M7XKPNRX3J9BK4WV9CHQSEXG");
    let doc: serde_json::Value = serde_json::from_str(&run(&[
        "inspect",
        "block",
        block.to_str().expect("path"),
        "--json",
    ]))
    .expect("json");
    assert_eq!(doc["series_count"], 75);
    assert_eq!(doc["meta"]["thanos"]["labels"]["__org_id__"], "acme");
    let total: usize = doc["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| s["samples"].as_array().expect("s").len())
        .sum();
    assert_eq!(total, 29736);

    let dir = tempfile::tempdir().expect("tmp");
    let src = corpus().join("chunks/acme/10650b2b46c4a658:175dda10d68:175ddca405c:5f2524b9");
    let mut bytes = std::fs::read(&src).expect("read");
    bytes[100] ^= 1;
    let bad = dir
        .path()
        .join("acme")
        .join("10650b2b46c4a658:175dda10d68:175ddca405c:5f2524b9");
    std::fs::create_dir_all(bad.parent().expect("parent")).expect("mkdir");
    std::fs::write(&bad, bytes).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .args(["inspect", "chunk"])
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checksum mismatch") && err.contains("acme/10650b2b46c4a658"),
        "{err}"
    );
}

#[test]
fn generate_writes_a_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("s");
    let text = run(&[
        "generate",
        "--out",
        out.to_str().expect("p"),
        "--series",
        "10",
        "--samples-per-series",
        "100",
        "--encoding",
        "xor,doubledelta",
    ]);
    assert!(text.contains("generated"), "{text}");
    assert!(out.join("schema.yaml").is_file());
    assert!(out.join("plans/tenant-0/18584.plan.snappy").is_file());
    let bad = Command::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .args([
            "generate",
            "--out",
            out.to_str().expect("p"),
            "--encoding",
            "varbit",
        ])
        .output()
        .expect("run");
    assert!(!bad.status.success());
}

#[test]
fn build_converts_a_corpus_plan_and_rejects_a_truncated_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = corpus().join("cortex-output/plans/42/18585.plan.snappy");
    let chunks = corpus().join("chunks");
    let (out, markers, work, metrics) = (
        tmp.path().join("blocks"),
        tmp.path().join("markers"),
        tmp.path().join("work"),
        tmp.path().join("builder.prom"),
    );
    let args = |plan: &std::path::Path| -> Vec<String> {
        [
            "build",
            "--plan",
            plan.to_str().expect("utf8"),
            "--chunks",
            chunks.to_str().expect("utf8"),
            "--output",
            out.to_str().expect("utf8"),
            "--markers",
            markers.to_str().expect("utf8"),
            "--work-dir",
            work.to_str().expect("utf8"),
            "--metrics-file",
            metrics.to_str().expect("utf8"),
            "--quiet",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let a = args(&plan);
    let stdout = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.starts_with("built "), "{stdout}");
    assert!(
        stdout.contains("tenant 42 day 18585 (2020-11-19)"),
        "{stdout}"
    );
    let blocks: Vec<_> = std::fs::read_dir(out.join("42"))
        .expect("tenant dir")
        .collect();
    assert_eq!(blocks.len(), 1);
    assert!(markers.join("42/18585.report.json").is_file());
    let prom = std::fs::read_to_string(&metrics).expect("metrics file");
    for family in [
        "cortex_blocksconvert_builder_fetched_chunks_total",
        "cortex_blocksconvert_builder_written_samples_total",
        "cortex_blocksconvert_builder_chunks_not_found_total",
        "cortex_blocksconvert_builder_block_size_bytes_total",
        "cortex_blocksconvert_builder_plans_total{status=\"finished_with_gaps\"} 1",
    ] {
        assert!(prom.contains(family), "{family} missing from:\n{prom}");
    }

    // A plan without its footer: clear error, exit code 1, no new block.
    let bad_dir = tmp.path().join("plans/42");
    std::fs::create_dir_all(&bad_dir).expect("mkdir");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut snap::read::FrameDecoder::new(std::fs::File::open(&plan).expect("plan")),
        &mut text,
    )
    .expect("decompress");
    let bad = bad_dir.join("18585.plan");
    std::fs::write(&bad, text.replace("{\"complete\":true}\n", "")).expect("write");
    let a = args(&bad);
    let res = Command::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .args(&a)
        .output()
        .expect("run");
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("plan is not complete"), "{err}");
    assert_eq!(std::fs::read_dir(out.join("42")).expect("dir").count(), 1);
}

/// Runs `blocksconvert` expecting failure; its stderr.
fn fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .args(args)
        .output()
        .expect("run");
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn errors_name_the_flag_once_and_help_tells_the_truth() {
    let c = corpus();
    let schema = c.join("schema.yaml").display().to_string();
    let index = c.join("dynamodb-export").display().to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("blocks").display().to_string();
    let work = tmp.path().join("work").display().to_string();
    let convert = |schema: &str, chunks: &str| {
        fails(&[
            "convert",
            "--schema",
            schema,
            "--index",
            &index,
            "--chunks",
            chunks,
            "--output",
            &out,
            "--work-dir",
            &work,
            "-q",
        ])
    };
    let err = convert(&schema, "/no/such/chunks");
    assert!(err.contains("error: --chunks: "), "{err}");
    let err = convert("/no/such/schema.yaml", "/no/such/chunks");
    assert!(
        err.contains("error: --schema: /no/such/schema.yaml"),
        "{err}"
    );
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause is said once: {err}"
    );
    // --schema is required by convert, and its usage line says so.
    let help = run(&["convert", "--help"]);
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .expect("usage");
    assert!(usage.contains("--schema <SCHEMA>"), "{usage}");
    let err = fails(&[
        "convert", "--index", &index, "--chunks", "x", "--output", &out,
    ]);
    assert!(err.contains("--schema <SCHEMA>"), "{err}");
    // The top-level help describes the tool, not two of its subcommands.
    let help = run(&["--help"]);
    assert!(help.contains("convert in one process"), "{help}");
    // `generate` takes --output like every other command.
    let store = tmp.path().join("store").display().to_string();
    run(&[
        "generate",
        "--output",
        &store,
        "--tenants",
        "1",
        "--days",
        "1",
        "--series",
        "2",
        "--samples-per-series",
        "10",
    ]);
    assert!(tmp.path().join("store/schema.yaml").is_file());
}

#[test]
fn version_names_the_commit_and_its_date() {
    let out = run(&["--version"]);
    let line = out.trim();
    let rest = line
        .strip_prefix(&format!(
            "blocksconvert {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, date) = rest
        .trim_end_matches(')')
        .split_once(", ")
        .unwrap_or_else(|| panic!("{line}"));
    // Built from this checkout: the commit is the checkout's.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(commit, head, "{line}"),
        None => assert_eq!(commit, "unknown", "{line}"),
    }
    assert!(
        date == "unknown" || (date.len() == 10 && date.as_bytes()[4] == b'-'),
        "{line}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_flags() {
    // A bash script that bash itself accepts, knowing the subcommands and their flags.
    let bash = run(&["completions", "bash"]);
    let script = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(script.path(), &bash).expect("write");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(script.path())
        .output()
        .expect("bash");
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for word in [
        "convert",
        "verify",
        "--memory-budget",
        "--index",
        "completions",
    ] {
        assert!(
            bash.contains(word),
            "{word} missing from the bash completion"
        );
    }
    for shell in ["zsh", "fish"] {
        assert!(
            run(&["completions", shell]).contains("memory-budget"),
            "{shell}"
        );
    }
    assert!(fails(&["completions", "tcsh"]).contains("tcsh"));

    // One page per command and subcommand, each naming its flags.
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("man1");
    run(&["man", "--output", out.to_str().expect("utf8")]);
    for page in [
        "blocksconvert.1",
        "blocksconvert-convert.1",
        "blocksconvert-plans-retry.1",
        "blocksconvert-inspect-block.1",
    ] {
        let text =
            std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: not roff"
        );
    }
    let convert = std::fs::read_to_string(out.join("blocksconvert-convert.1")).expect("page");
    assert!(convert.contains("memory\\-budget"), "{convert}");
}

#[test]
fn inspect_plan_reads_a_cortex_plan_to_its_footer() {
    let plan = corpus().join("cortex-output/plans/acme/18585.plan.snappy");
    let doc: serde_json::Value = serde_json::from_str(&run(&[
        "inspect",
        "plan",
        plan.to_str().expect("utf8"),
        "--json",
    ]))
    .expect("json");
    assert_eq!(doc["user"], "acme");
    assert_eq!(doc["day_index"], 18585);
    assert_eq!(doc["date"], "2020-11-19");
    assert_eq!(doc["generation"], "", "Cortex writes no generation");
    // The same counts as the plan read whole by the plan library.
    let bytes = std::fs::read(&plan).expect("plan");
    let whole = plan_format::read_plan("acme/18585", &bytes[..], plan_format::Compression::Snappy)
        .expect("plan");
    assert_eq!(doc["series"], whole.series.len());
    let chunks: usize = whole.series.values().map(Vec::len).sum();
    assert!(doc["chunks"].as_u64().expect("chunks") >= chunks as u64);
    assert!(run(&["inspect", "plan", plan.to_str().expect("utf8")]).contains("2020-11-19 (18585)"));

    // A plan cut short is refused, naming the file.
    let dir = tempfile::tempdir().expect("tmp");
    let cut = dir.path().join("18585.plan");
    let mut text = Vec::new();
    snap::read::FrameDecoder::new(&bytes[..])
        .read_to_end(&mut text)
        .expect("snappy");
    std::fs::write(&cut, &text[..text.len() / 2]).expect("write");
    let err = fails(&["inspect", "plan", cut.to_str().expect("utf8")]);
    assert!(err.contains("18585.plan"), "{err}");
}

#[test]
fn bucket_ls_and_verify_find_a_repeated_block() {
    let dir = tempfile::tempdir().expect("tmp");
    let blocks = dir.path().join("blocks");
    blocksconvert_tests::copy_tree(&corpus().join("cortex-output/blocks"), &blocks);
    let spec = blocks.to_str().expect("utf8");
    // Cortex's own blocks: three days for each of three tenants, none overlapping.
    let listing = run(&["bucket", "ls", "--blocks", spec]);
    assert_eq!(listing.lines().count(), 9, "{listing}");
    assert!(
        listing.contains("acme\t") && listing.contains("2020-11-19T00:00:00Z"),
        "{listing}"
    );
    let acme = run(&["bucket", "ls", "--blocks", spec, "--tenant", "acme"]);
    assert_eq!(acme.lines().count(), 3, "{acme}");
    assert!(run(&["bucket", "verify", "--blocks", spec]).contains("0 overlapping pairs"));

    // The same block again under another ULID: the pair is found, exit 1.
    let first = std::fs::read_dir(blocks.join("acme"))
        .expect("acme")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .min()
        .expect("a block");
    let copy = blocks.join("acme/01ZZZZZZZZZZZZZZZZZZZZZZZZ");
    blocksconvert_tests::copy_tree(&first, &copy);
    let out = Command::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .args(["bucket", "verify", "--blocks", spec])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("01ZZZZZZZZZZZZZZZZZZZZZZZZ") && text.contains("same range"),
        "{text}"
    );
    assert!(text.contains("1 overlapping pairs"), "{text}");

    // 2020-11-19's block moved half a day later (its meta.json says so) overlaps
    // the blocks of 2020-11-19 and 2020-11-20.
    std::fs::remove_dir_all(&copy).expect("rm copy");
    let nov19 = std::fs::read_dir(blocks.join("acme"))
        .expect("acme")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|b| {
            let meta = std::fs::read(b.join("meta.json")).unwrap_or_default();
            serde_json::from_slice::<serde_json::Value>(&meta)
                .is_ok_and(|m| m["minTime"] == 18585_i64 * 86_400_000)
        })
        .expect("acme's block of 2020-11-19");
    let shifted = blocks.join("acme/01YYYYYYYYYYYYYYYYYYYYYYYY");
    blocksconvert_tests::copy_tree(&nov19, &shifted);
    let meta_path = shifted.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).expect("meta")).expect("json");
    let half_day = 43_200_000;
    for field in ["minTime", "maxTime"] {
        let t = meta[field].as_i64().expect("time");
        meta[field] = (t + half_day).into();
    }
    std::fs::write(&meta_path, meta.to_string()).expect("write meta");
    let out = Command::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .args(["bucket", "verify", "--blocks", spec])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("01YYYYYYYYYYYYYYYYYYYYYYYY") && text.contains("overlap:"),
        "{text}"
    );
    assert!(text.contains("2 overlapping pairs"), "{text}");
}

/// `bucket analyze` gives promtool's own `tsdb analyze` figures for every Cortex block
/// of the corpus (lists compared as sets: promtool orders ties by map iteration).
#[test]
fn bucket_analyze_agrees_with_promtool_tsdb_analyze() {
    use std::collections::{BTreeMap, BTreeSet};
    // Section title → its lines; header lines under "".
    fn sections(text: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut title = String::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            match line.strip_suffix(':') {
                Some(t) if !line.contains(": ") => title = t.to_owned(),
                _ => {
                    out.entry(title.clone())
                        .or_default()
                        .insert(line.to_owned());
                }
            }
        }
        out
    }
    let blocks = corpus().join("cortex-output/blocks");
    let mut compared = 0;
    for tenant in std::fs::read_dir(&blocks).expect("blocks") {
        let tenant = tenant.expect("tenant").path();
        for block in std::fs::read_dir(&tenant).expect("tenant") {
            let block = block.expect("block").path();
            let ulid = block
                .file_name()
                .expect("ulid")
                .to_string_lossy()
                .into_owned();
            let ours = run(&[
                "bucket",
                "analyze",
                "--blocks",
                blocks.to_str().expect("utf8"),
                "--block",
                &ulid,
                "--limit",
                "100000",
            ]);
            // promtool opens a directory of blocks: give it this one alone.
            let db = tempfile::tempdir().expect("tmp");
            blocksconvert_tests::copy_tree(&block, &db.path().join(&ulid));
            let out = blocksconvert_tests::promtool()
                .args(["tsdb", "analyze", db.path().to_str().expect("utf8"), &ulid])
                .args(["--limit", "100000"])
                .output()
                .expect("promtool");
            assert!(out.status.success(), "{out:?}");
            let theirs = String::from_utf8_lossy(&out.stdout).into_owned();
            let (mut ours, mut theirs) = (sections(&ours), sections(&theirs));
            // Header lines promtool prints that we print differently or not at all.
            for header in [&mut ours, &mut theirs] {
                if let Some(h) = header.get_mut("") {
                    h.retain(|l| !l.starts_with("Tenant:") && !l.starts_with("Range:"));
                }
            }
            assert_eq!(ours.len(), 7, "{ours:#?}");
            assert_eq!(ours, theirs, "{ulid}");
            compared += 1;
        }
    }
    assert_eq!(compared, 9);
}
