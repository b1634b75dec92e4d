//! `blocksconvert convert` and `blocksconvert verify` as an operator runs them: the
//! Cortex corpus converted in one process and checked against Cortex's expected
//! samples, verify's verdicts on good and damaged blocks, and an interrupted conversion
//! resumed to the same result.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use blocksconvert_tests::{corpus_dir, expected, read_block};
use support::*;

#[test]
fn convert_the_corpus_then_verify_pinpoints_damaged_blocks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = convert_corpus(tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("tenant-days  9 planned, 9 converted")
            && stdout.contains("0 failed, 0 left"),
        "{}",
        text(&out)
    );
    // The corpus lists chunks that Cortex never wrote (its README names them).
    assert!(stdout.contains("missing"), "{stdout}");

    // Exactly one block per tenant-day, holding exactly Cortex's expected samples.
    let blocks = blocks_by_day(&tmp.path().join("blocks"));
    assert_eq!(blocks.len(), 9, "{blocks:?}");
    let mut series_total = 0;
    let mut samples_total = 0;
    for tenant in TENANTS {
        for day in DAYS {
            let dirs = &blocks[&(tenant.to_owned(), day)];
            assert_eq!(dirs.len(), 1, "{tenant}/{day}: {dirs:?}");
            let got = read_block(&dirs[0]);
            let want = expected(tenant, day);
            assert_eq!(got, want, "{tenant}/{day}");
            series_total += want.len();
            samples_total += want.iter().map(|s| s.samples.len()).sum::<usize>();
        }
    }
    let count = |n: usize| {
        let s = n.to_string();
        let mut o = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                o.push(',');
            }
            o.push(c);
        }
        o
    };
    assert!(
        stdout.contains(&format!("series       {}\n", count(series_total)))
            && stdout.contains(&format!("samples      {}\n", count(samples_total))),
        "summary disagrees with the blocks ({series_total} series, {samples_total} samples):\n{stdout}"
    );

    // verify: every tenant-day OK.
    let v = verify(&corpus_dir(), tmp.path(), &[]);
    assert!(v.status.success(), "{}", text(&v));
    let vout = String::from_utf8_lossy(&v.stdout);
    assert_eq!(
        vout.lines().filter(|l| l.starts_with("OK ")).count(),
        9,
        "{vout}"
    );
    assert!(
        vout.contains("verified 9 tenant-days: 9 OK, 0 with differences"),
        "{vout}"
    );

    // Damage three blocks in three ways.
    // 1. One sample value changed inside a chunk segment (the XOR stream still decodes).
    let acme = &blocks[&("acme".to_owned(), 18585)][0];
    let segment = acme.join("chunks/000001");
    let mut bytes = std::fs::read(&segment).expect("segment");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&segment, bytes).expect("write");
    // 2. A truncated index.
    let team = &blocks[&("team-a.prod".to_owned(), 18584)][0];
    let index = team.join("index");
    let len = std::fs::metadata(&index).expect("index").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    // 3. A block gone.
    std::fs::remove_dir_all(&blocks[&("42".to_owned(), 18586)][0]).expect("rm");

    let v = verify(&corpus_dir(), tmp.path(), &[]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    let vout = String::from_utf8_lossy(&v.stdout);
    let acme_line = line_for(&vout, "acme", "2020-11-19");
    assert!(acme_line.starts_with("FAIL"), "{vout}");
    assert!(
        vout.contains("series differ:") || vout.contains("chunks"),
        "the changed chunk is named:\n{vout}"
    );
    assert!(
        line_for(&vout, "team-a.prod", "2020-11-18").starts_with("FAIL"),
        "{vout}"
    );
    assert!(vout.contains("is unreadable"), "{vout}");
    assert!(
        line_for(&vout, "42", "2020-11-20").starts_with("FAIL"),
        "{vout}"
    );
    assert!(
        vout.contains("no block of tenant 42 covers day 2020-11-20"),
        "{vout}"
    );
    assert_eq!(
        vout.lines().filter(|l| l.starts_with("OK ")).count(),
        6,
        "{vout}"
    );
    assert!(
        vout.contains("verified 9 tenant-days: 6 OK, 3 with differences"),
        "{vout}"
    );

    // --tenant/--day narrow the comparison to what still matches.
    let v = verify(
        &corpus_dir(),
        tmp.path(),
        &["--tenant", "acme", "--day", "2020-11-18,18586"],
    );
    assert!(v.status.success(), "{}", text(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("verified 2 tenant-days: 2 OK"),
        "{}",
        text(&v)
    );
}

/// `convert --dry-run` converts nothing and predicts, from the index and a sample of
/// the chunks, exactly what the real conversion then reads: objects, requests, bytes,
/// missing chunks and decoded samples (all chunks sampled); a small sample lands near.
#[test]
fn a_dry_run_predicts_what_the_conversion_reads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |extra: &[&str]| convert_corpus_with(tmp.path(), extra);
    let field = |out: &str, name: &str| -> String {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name:?} line in:\n{out}"))
            .trim()
            .to_owned()
    };
    let number = |text: &str| -> u64 {
        text.chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| panic!("no number at the start of {text:?}"))
    };

    let dry = run(&["--dry-run", "--dry-run.sample", "1000000"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let out = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        !tmp.path().join("blocks").exists(),
        "a dry run wrote blocks"
    );
    assert!(
        !tmp.path().join("work/plans").exists(),
        "a dry run wrote real plans"
    );
    assert!(
        field(&out, "tenant-days").starts_with("9 (3 tenants, 2020-11-18 to 2020-11-20)"),
        "{out}"
    );
    let chunks = field(&out, "chunks");
    let objects = number(&chunks);
    let gets = number(chunks.split("objects: ").nth(1).expect("requests"));
    assert_eq!(gets, objects, "one GET per chunk object: {out}");
    let bytes_line = field(&out, "bytes");
    assert!(bytes_line.contains("exact: every chunk was read"), "{out}");
    let bytes: u64 = number(bytes_line.split('(').nth(1).expect("exact bytes"));
    let samples = number(&field(&out, "samples"));
    let missing = number(&field(&out, "missing"));
    assert!(field(&out, "cost").starts_with('$'), "{out}");
    assert!(field(&out, "duration").contains("1 builders"), "{out}");

    let metrics = tmp.path().join("metrics.prom");
    let real = run(&["--metrics-file", metrics.to_str().expect("utf-8")]);
    assert!(real.status.success(), "{}", text(&real));
    let m = std::fs::read_to_string(&metrics).expect("metrics");
    let metric = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in the metrics"))
            .parse::<f64>()
            .expect("value") as u64
    };
    let fetched = metric("cortex_blocksconvert_builder_fetched_chunks_total");
    let gone = metric("cortex_blocksconvert_builder_bad_chunks_total{kind=\"missing\"}");
    assert_eq!((fetched + gone, gone), (objects, missing), "{out}\n{m}");
    assert_eq!(
        bytes,
        metric("cortex_blocksconvert_builder_fetched_chunks_bytes_total"),
        "{out}"
    );
    assert_eq!(
        samples,
        metric("cortex_blocksconvert_builder_decoded_samples_total"),
        "{out}"
    );

    // A sample of a tenth of the chunks estimates the bytes within a quarter.
    let sampled = run(&["--dry-run", "--dry-run.sample", &(objects / 10).to_string()]);
    assert!(sampled.status.success(), "{}", text(&sampled));
    let out = String::from_utf8_lossy(&sampled.stdout).into_owned();
    let line = field(&out, "bytes");
    assert!(
        line.contains(&format!("estimated from {} sampled chunks", objects / 10)),
        "{out}"
    );
    let estimated = number(line.split('(').nth(1).expect("bytes")) as f64;
    assert!(
        (estimated / bytes as f64 - 1.0).abs() < 0.25,
        "estimated {estimated} bytes, read {bytes}:\n{out}"
    );
}

/// `--period-start/--period-end` convert exactly the days asked for, even when they
/// cover part of an index table (2020-11-19 is the first day of the weekly table that
/// also holds 2020-11-20); a later run without them converts the rest from the same
/// state, once each.
#[test]
fn a_day_range_converts_those_days_and_a_wider_run_the_rest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |extra: &[&str]| convert_corpus_with(tmp.path(), extra);
    let bad = run(&["--period-start", "2020-11-20", "--period-end", "2020-11-19"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        text(&bad).contains("--period-start 2020-11-20 is not before --period-end 2020-11-19"),
        "{}",
        text(&bad)
    );

    let narrow = run(&["--period-start", "2020-11-19", "--period-end", "2020-11-20"]);
    assert!(narrow.status.success(), "{}", text(&narrow));
    let out = String::from_utf8_lossy(&narrow.stdout);
    assert!(
        out.contains("tenant-days  3 planned, 3 converted"),
        "{}",
        text(&narrow)
    );
    let blocks = blocks_by_day(&tmp.path().join("blocks"));
    assert_eq!(
        blocks
            .keys()
            .map(|(_, d)| *d)
            .collect::<std::collections::BTreeSet<_>>(),
        [18585].into(),
        "{blocks:?}"
    );
    for tenant in TENANTS {
        let dirs = &blocks[&(tenant.to_owned(), 18585)];
        assert_eq!(dirs.len(), 1, "{tenant}: {dirs:?}");
        assert_eq!(read_block(&dirs[0]), expected(tenant, 18585), "{tenant}");
    }

    let wide = run(&[]);
    assert!(wide.status.success(), "{}", text(&wide));
    let out = String::from_utf8_lossy(&wide.stdout);
    assert!(
        out.contains("tenant-days  9 planned, 9 converted"),
        "{}",
        text(&wide)
    );
    assert_eq!(built_this_run(&out), 6, "{out}");
    let blocks = blocks_by_day(&tmp.path().join("blocks"));
    assert_eq!(blocks.len(), 9, "{blocks:?}");
    for tenant in TENANTS {
        for day in DAYS {
            let dirs = &blocks[&(tenant.to_owned(), day)];
            assert_eq!(dirs.len(), 1, "{tenant}/{day}: {dirs:?}");
            assert_eq!(
                read_block(&dirs[0]),
                expected(tenant, day),
                "{tenant}/{day}"
            );
        }
    }
}

#[test]
fn an_interrupted_conversion_resumes_to_the_same_blocks() {
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
            "600",
            "--samples-per-series",
            "2880",
            "--encoding",
            "bigchunk,xor,doubledelta",
            "--schema",
            "v10,v11",
            "--seed",
            "3",
        ],
    );
    let convert = || {
        let mut c = on_store("convert", &store);
        c.arg("--output")
            .arg(tmp.path().join("blocks"))
            .arg("--work-dir")
            .arg(tmp.path().join("work"))
            .args(["--workers", "1"]);
        c
    };
    let mut child = convert()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt as soon as the first tenant-day is finished.
    let plans = tmp.path().join("work/plans");
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = |dir: &Path| -> usize {
        walk(dir)
            .iter()
            .filter(|p| p.to_string_lossy().contains(".finished."))
            .count()
    };
    while finished(&plans) == 0 {
        assert!(Instant::now() < deadline, "no tenant-day finished in 120 s");
        assert!(
            child.try_wait().expect("poll").is_none(),
            "convert ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let first = child.wait_with_output().expect("wait");
    let first_out = String::from_utf8_lossy(&first.stdout).into_owned();
    let built_first = built_this_run(&first_out);
    if first.status.code() == Some(130) {
        assert!(
            first_out.contains("interrupted") && first_out.contains("rerun the same command"),
            "{}",
            text(&first)
        );
        assert!(built_first < 6, "{first_out}");
    } else {
        // The last tenant-days may finish before the signal lands; then nothing is left.
        assert!(first.status.success(), "{}", text(&first));
    }
    // No lease is left behind by the interruption.
    assert_eq!(
        walk(&plans)
            .iter()
            .filter(|p| p.to_string_lossy().contains(".inprogress"))
            .count(),
        0,
        "{:?}",
        walk(&plans)
    );
    let second = convert().output().expect("resume");
    assert!(second.status.success(), "{}", text(&second));
    let second_out = String::from_utf8_lossy(&second.stdout);
    assert!(
        second_out.contains("6 planned, 6 converted"),
        "{second_out}"
    );
    assert_eq!(
        built_first + built_this_run(&second_out),
        6,
        "each tenant-day built once:\n{first_out}\n{second_out}"
    );
    let blocks = blocks_by_day(&tmp.path().join("blocks"));
    assert_eq!(blocks.len(), 6);
    assert!(
        blocks.values().all(|b| b.len() == 1),
        "one block per tenant-day: {blocks:?}"
    );
    // And the blocks hold the store's samples.
    assert_verified(&store, tmp.path(), 6);
}

/// `convert` frozen (SIGSTOP: a laptop suspend, a paused container) for longer than
/// its lease TTL while building, then resumed: its scheduler expires the leases and
/// refuses their late completions or heartbeats; the run must still end with one exact
/// block per tenant-day instead of hanging.
#[test]
fn a_conversion_paused_past_its_lease_ttl_finishes_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = tmp.path().join("store");
    generate(
        &store,
        &[
            "--tenants",
            "2",
            "--days",
            "2",
            "--series",
            "600",
            "--samples-per-series",
            "2880",
            "--seed",
            "5",
        ],
    );
    let mut child = on_store("convert", &store)
        .arg("--output")
        .arg(tmp.path().join("blocks"))
        .arg("--work-dir")
        .arg(tmp.path().join("work"))
        .args(["--builders", "2", "--workers", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let plans = tmp.path().join("work/plans");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !walk(&plans)
        .iter()
        .any(|p| p.to_string_lossy().contains(".attempt."))
    {
        assert!(Instant::now() < deadline, "nothing leased in 120 s");
        assert!(
            child.try_wait().expect("poll").is_none(),
            "convert ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig}");
    };
    signal("-STOP");
    // The scenario itself: frozen for longer than convert's 10 s lease TTL.
    std::thread::sleep(Duration::from_secs(13));
    signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("convert hung after SIGCONT:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out));
    let blocks = blocks_by_day(&tmp.path().join("blocks"));
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    assert!(
        blocks.values().all(|b| b.len() == 1),
        "one block per tenant-day: {blocks:?}"
    );
    assert_verified(&store, tmp.path(), 4);
}
