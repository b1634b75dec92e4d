//! State you can't fool: `blocksconvert convert` treats the buckets as the truth and
//! its work dir as a cache. Trial runs, moved or lost work dirs, new or emptied
//! outputs, kills at any moment, a full disk and missing credentials all end in one
//! exact block per tenant-day (or a fast, precise refusal), and `verify` fails on a
//! tenant-day with two blocks.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use blocksconvert_tests::corpus_dir;
use support::*;

/// `convert` of the corpus into `output`, with `work_dir` (or the per-user default
/// under `state` when `None`), run from `cwd`.
fn convert_into(output: &Path, work_dir: Option<&Path>, state: &Path, cwd: &Path) -> Command {
    let mut c = on_store("convert", &corpus_dir());
    c.arg("--output").arg(output).args(["--workers", "1", "-q"]);
    if let Some(w) = work_dir {
        c.arg("--work-dir").arg(w);
    }
    c.env("XDG_STATE_HOME", state).current_dir(cwd);
    c
}

fn run(mut c: Command) -> (Output, String) {
    let out = c.output().expect("run convert");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

fn assert_converted(out: &Output, stdout: &str, planned: usize) {
    assert!(out.status.success(), "{}", text(out));
    assert!(
        stdout.contains(&format!(
            "tenant-days  {planned} planned, {planned} converted"
        )) && stdout.contains("0 failed, 0 left"),
        "{}",
        text(out)
    );
}

/// Every tenant-day of the corpus has exactly one block in `blocks`.
fn assert_one_block_per_day(blocks: &Path) {
    let by_day = blocks_by_day(blocks);
    assert_eq!(by_day.len(), 9, "{by_day:?}");
    assert!(
        by_day.values().all(|b| b.len() == 1),
        "one block per tenant-day: {by_day:?}"
    );
}

/// Directories under `root` with nothing in them (left by failed uploads).
fn empty_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut any = false;
        for e in entries.flatten() {
            any = true;
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
        if !any && d != root {
            out.push(d);
        }
    }
    out
}

fn markers(plans: &Path, kind: &str) -> Vec<PathBuf> {
    walk(plans)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(kind))
        .collect()
}

#[test]
fn trial_runs_never_block_the_full_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (blocks, work) = (tmp.path().join("blocks"), tmp.path().join("work"));
    let trial = |tenant: &str| {
        let mut c = convert_into(&blocks, Some(&work), tmp.path(), tmp.path());
        c.args(["--tenant", tenant]);
        run(c)
    };
    // A mistyped tenant plans nothing, then the right one converts its three days.
    let (out, stdout) = trial("acm");
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("0 planned"), "{stdout}");
    let (out, stdout) = trial("acme");
    assert_converted(&out, &stdout, 3);
    // The full run over the same work dir converts everyone else.
    let (out, stdout) = run(convert_into(&blocks, Some(&work), tmp.path(), tmp.path()));
    assert_converted(&out, &stdout, 9);
    assert_eq!(built_this_run(&stdout), 6, "{stdout}");
    assert_one_block_per_day(&blocks);
}

#[test]
fn the_output_is_the_truth_not_the_work_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    let blocks = tmp.path().join("blocks");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).expect("cwd");
    }
    // No --work-dir: the default is a per-user location, the same from any directory.
    let (out, stdout) = run(convert_into(&blocks, None, &state, &a));
    assert_converted(&out, &stdout, 9);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "state in {}",
            state.join("blocksconvert").display()
        )),
        "{}",
        text(&out)
    );
    assert!(
        std::fs::read_dir(&a).expect("cwd").next().is_none(),
        "nothing written to the current directory"
    );
    let (out, stdout) = run(convert_into(&blocks, None, &state, &b));
    assert_converted(&out, &stdout, 9);
    assert_eq!(built_this_run(&stdout), 0, "{stdout}");

    // Another work dir (moved, lost, a second operator): the blocks already in the
    // output are kept, none is written twice.
    let other = tmp.path().join("other-work");
    let (out, stdout) = run(convert_into(&blocks, Some(&other), &state, &b));
    assert_converted(&out, &stdout, 9);
    assert_eq!(built_this_run(&stdout), 0, "{stdout}");
    assert!(stdout.contains("kept         9 tenant-days"), "{stdout}");
    assert_one_block_per_day(&blocks);

    // A new output with the same work dir converts everything into it; so does the
    // same output emptied.
    let fresh = tmp.path().join("blocks-2");
    for _ in 0..2 {
        let (out, stdout) = run(convert_into(&fresh, Some(&other), &state, &b));
        assert_converted(&out, &stdout, 9);
        assert_eq!(built_this_run(&stdout), 9, "{stdout}");
        assert_one_block_per_day(&fresh);
        std::fs::remove_dir_all(&fresh).expect("empty the output");
    }
    let v = verify(&corpus_dir(), tmp.path(), &[]);
    assert!(v.status.success(), "{}", text(&v));
}

#[test]
fn verify_fails_on_two_blocks_for_one_tenant_day() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = convert_corpus(tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    let blocks = blocks_by_day(&tmp.path().join("blocks"));
    let original = &blocks[&("acme".to_owned(), 18585)][0];
    // A second, identical block of the same day under another ULID.
    let ulid = "01JDZZZZZZZZZZZZZZZZZZZZZZ";
    let copy = original.parent().expect("tenant dir").join(ulid);
    blocksconvert_tests::copy_tree(original, &copy);
    let meta_path = copy.join("meta.json");
    let meta = std::fs::read_to_string(&meta_path).expect("meta");
    let first = original
        .file_name()
        .expect("ulid")
        .to_string_lossy()
        .into_owned();
    std::fs::write(&meta_path, meta.replace(&first, ulid)).expect("meta");

    let v = verify(&corpus_dir(), tmp.path(), &[]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    let vout = String::from_utf8_lossy(&v.stdout);
    assert!(
        line_for(&vout, "acme", "2020-11-19").starts_with("FAIL"),
        "{vout}"
    );
    assert!(
        vout.contains("2 blocks of tenant acme overlap day 2020-11-19")
            && vout.contains(&first)
            && vout.contains(ulid),
        "both blocks are named:\n{vout}"
    );
    assert!(vout.contains("8 OK, 1 with differences"), "{vout}");
}

/// Waits until `cond` holds or the child exits; true when `cond` held.
fn wait_for(child: &mut std::process::Child, secs: u64, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        if child.try_wait().expect("poll").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("convert neither progressed nor ended within {secs} s");
}

#[test]
fn killed_at_ten_moments_then_rerun_converts_every_day_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = tmp.path().join("store");
    generate(
        &store,
        &[
            "--tenants",
            "2",
            "--days",
            "3",
            "--series",
            "300",
            "--samples-per-series",
            "1440",
            "--encoding",
            "bigchunk,xor",
            "--seed",
            "11",
        ],
    );
    let (blocks, work) = (tmp.path().join("blocks"), tmp.path().join("work"));
    let plans = work.join("plans");
    let convert = || {
        let mut c = on_store("convert", &store);
        c.arg("--output")
            .arg(&blocks)
            .arg("--work-dir")
            .arg(&work)
            .args(["--workers", "1", "--builders", "2", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // Kill -9 at ten moments of the build phase: once the first lease is taken, after
    // a growing number of finished tenant-days and with growing delays in between.
    for i in 0..10u64 {
        let spawned = std::time::SystemTime::now();
        let mut child = convert().spawn().expect("spawn");
        // A lease taken by *this* run (markers of killed runs are older), or all done.
        let fresh = |kind: &str| {
            markers(&plans, kind).iter().any(|p| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= spawned)
            })
        };
        let started = wait_for(&mut child, 300, || {
            fresh(".starting.") || fresh(".inprogress.") || markers(&plans, ".finished.").len() >= 6
        });
        if started {
            std::thread::sleep(Duration::from_millis(i * 37));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let (out, stdout) = run({
        let mut c = convert();
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    });
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.contains("6 planned, 6 converted") && stdout.contains("0 failed, 0 left"),
        "{}",
        text(&out)
    );
    let by_day = blocks_by_day(&blocks);
    assert_eq!(by_day.len(), 6, "{by_day:?}");
    assert!(by_day.values().all(|b| b.len() == 1), "{by_day:?}");
    assert_eq!(empty_dirs(&blocks), Vec::<PathBuf>::new());
    assert!(markers(&plans, ".error").is_empty(), "{:?}", walk(&plans));
    assert_verified(&store, tmp.path(), 6);
}

/// The output on a tmpfs too small for the blocks (a full disk), in a private mount
/// namespace: the run fails without leaving partial blocks; once space is freed the
/// rerun converts everything, including the tenant-days the first run gave up on.
#[test]
fn a_full_output_disk_then_space_freed_converts_everything() {
    let tmp = tempfile::tempdir().expect("tmp");
    let blocks = tmp.path().join("blocks");
    std::fs::create_dir_all(&blocks).expect("mount point");
    let c = corpus_dir();
    let script = r#"
set -u
mount -t tmpfs -o size=600k tmpfs "$OUT" || { echo "MOUNT FAILED"; exit 90; }
"$BIN" convert --schema "$STORE/schema.yaml" --index "$STORE/dynamodb-export" --chunks "$STORE/chunks" \
  --output "$OUT" --work-dir "$WORK" --workers 1 --max-attempts 2 -q > "$LOGS/first.out" 2> "$LOGS/first.err"
echo "first exit $?"
find "$OUT" -mindepth 1 | sort > "$LOGS/first.files"
mount -o remount,size=64m "$OUT"
"$BIN" convert --schema "$STORE/schema.yaml" --index "$STORE/dynamodb-export" --chunks "$STORE/chunks" \
  --output "$OUT" --work-dir "$WORK" --workers 1 --max-attempts 2 -q > "$LOGS/second.out" 2> "$LOGS/second.err"
echo "second exit $?"
cp -r "$OUT" "$LOGS/blocks"
"#;
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .env("BIN", env!("CARGO_BIN_EXE_blocksconvert"))
        .env("STORE", &c)
        .env("OUT", &blocks)
        .env("WORK", tmp.path().join("work"))
        .env("LOGS", &logs)
        .env("RUST_LOG", "warn")
        .output()
        .expect("unshare (util-linux) is needed for the full-disk test");
    let report = format!(
        "{}\nfirst run:\n{}{}\nsecond run:\n{}{}",
        text(&out),
        std::fs::read_to_string(logs.join("first.out")).unwrap_or_default(),
        std::fs::read_to_string(logs.join("first.err")).unwrap_or_default(),
        std::fs::read_to_string(logs.join("second.out")).unwrap_or_default(),
        std::fs::read_to_string(logs.join("second.err")).unwrap_or_default(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("first exit 1") && stdout.contains("second exit 0"),
        "{report}"
    );
    let first = std::fs::read_to_string(logs.join("first.out")).unwrap_or_default();
    assert!(first.contains("FAILED"), "{report}");
    // Whatever the first run left in the full output is whole blocks only.
    let files = std::fs::read_to_string(logs.join("first.files")).unwrap_or_default();
    let root = format!("{}/", blocks.display());
    for line in files.lines() {
        let rel = line.strip_prefix(&root).unwrap_or(line);
        if rel.split('/').count() == 2 {
            assert!(
                files.lines().any(|l| l == format!("{line}/meta.json")),
                "partial block {rel} left after a full disk:\n{files}"
            );
        }
    }
    let second = std::fs::read_to_string(logs.join("second.out")).unwrap_or_default();
    assert!(
        second.contains("9 planned, 9 converted") && second.contains("0 failed, 0 left"),
        "{report}"
    );
    assert_one_block_per_day(&logs.join("blocks"));
    assert_eq!(empty_dirs(&logs.join("blocks")), Vec::<PathBuf>::new());
}

#[test]
fn missing_credentials_fail_in_seconds_before_any_work() {
    let tmp = tempfile::tempdir().expect("tmp");
    let work = tmp.path().join("work");
    let started = Instant::now();
    let mut c = on_store("convert", &corpus_dir());
    c.args(["--output", "s3://cortex-blocks/converted"])
        .args([
            "--s3.endpoint",
            "http://127.0.0.1:9",
            "--s3.region",
            "us-east-1",
        ])
        .arg("--s3.insecure")
        .arg("--work-dir")
        .arg(&work)
        .arg("-q");
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        c.env_remove(v);
    }
    // No instance metadata service either (on a cloud VM it would answer).
    c.env("AWS_EC2_METADATA_DISABLED", "true");
    let (out, _) = run(c);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("preflight: --output s3://cortex-blocks/converted")
            && stderr.contains("no credentials in the environment")
            && stderr.contains("AWS_ACCESS_KEY_ID"),
        "{}",
        text(&out)
    );
    assert!(
        took < Duration::from_secs(60),
        "refused after {took:?}, not in seconds"
    );
    // Nothing scanned, nothing planned, nothing quarantined.
    assert!(walk(&work.join("plans")).is_empty(), "{:?}", walk(&work));
}

#[test]
fn one_tenant_day_is_rebuilt_or_retried_without_touching_markers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = convert_corpus(tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    let (blocks, plans) = (tmp.path().join("blocks"), tmp.path().join("work/plans"));
    let before = blocks_by_day(&blocks);
    let plans_cmd = |args: &[&str]| {
        let out = blocksconvert()
            .arg("plans")
            .args(args)
            .arg("--plans")
            .arg(&plans)
            .output()
            .expect("plans");
        (out.status.success(), text(&out))
    };

    // Rebuild acme's 2020-11-19: its block goes, the next convert builds it again.
    let mut rebuild = vec!["rebuild", "--plan", "acme/2020-11-19", "--output"];
    let output = blocks.display().to_string();
    rebuild.push(&output);
    let (ok, said) = plans_cmd(&rebuild);
    assert!(
        ok && said.contains("plan acme/2020-11-19 (18585) queued again; removed block"),
        "{said}"
    );
    let old = &before[&("acme".to_owned(), 18585)][0];
    assert!(!old.exists(), "{said}");
    let again = convert_corpus(tmp.path());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(built_this_run(&stdout), 1, "{stdout}");
    assert_one_block_per_day(&blocks);

    // A quarantined day (as a failed run leaves it) is retried by name or in bulk.
    std::fs::write(plans.join("42/18586.error"), "failed for good").expect("error");
    std::fs::remove_file(
        markers(&plans, "42/18586.finished.")
            .first()
            .expect("finished marker"),
    )
    .expect("rm");
    let (ok, said) = plans_cmd(&["retry", "--all-failed"]);
    assert!(
        ok && said.contains("plan 42/2020-11-20 (18586) queued again"),
        "{said}"
    );
    assert!(markers(&plans, ".error").is_empty());
    let (ok, said) = plans_cmd(&["retry", "--plan", "42/2020-11-20"]);
    assert!(!ok && said.contains("not quarantined"), "{said}");
    let (ok, said) = plans_cmd(&["retry", "--plan", "a/b/2020-11-20"]);
    assert!(!ok && said.contains("contains '/'"), "{said}");
}

#[test]
fn a_schema_that_matches_no_table_is_an_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let schema = std::fs::read_to_string(corpus_dir().join("schema.yaml")).expect("schema");
    for (name, broken) in [
        ("zero-period", schema.replace("period: 168h", "period: 0s")),
        (
            "wrong-prefix",
            schema.replace("prefix: cortex_index_", "prefix: index_"),
        ),
    ] {
        let path = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(&path, broken).expect("schema");
        let out = blocksconvert()
            .arg("convert")
            .arg("--schema")
            .arg(&path)
            .arg("--index")
            .arg(corpus_dir().join("dynamodb-export"))
            .arg("--chunks")
            .arg(corpus_dir().join("chunks"))
            .arg("--output")
            .arg(tmp.path().join(name).join("blocks"))
            .arg("--work-dir")
            .arg(tmp.path().join(name).join("work"))
            .arg("-q")
            .output()
            .expect("convert");
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no index table in the source matches the schema")
                && stderr.contains("cortex_index_2654"),
            "{name}: {}",
            text(&out)
        );
    }
}
