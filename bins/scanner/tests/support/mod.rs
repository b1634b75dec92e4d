//! Helpers shared by the scanner's test suites: running the scanner binary and
//! reading what it wrote.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use blocksconvert_tests::corpus_dir;
use plan_format::Compression;

/// Rows in the fixture index.
pub const TOTAL_ROWS: u64 = 11_140;

pub fn schema() -> PathBuf {
    corpus_dir().join("schema.yaml")
}

pub fn export_dir() -> PathBuf {
    corpus_dir().join("dynamodb-export")
}

pub fn scanner(args: &[&str]) -> Command {
    scanner_with_schema(&schema(), args)
}

/// The scanner with the schema file `schema` and `args`.
pub fn scanner_with_schema(schema: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_blocksconvert-scanner"));
    c.arg("--schema")
        .arg(schema)
        .arg("--quiet")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn");
    c
}

pub fn check(out: Output) -> String {
    assert!(
        out.status.success(),
        "scanner failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run(args: &[&str]) -> String {
    check(scanner(args).output().expect("run scanner"))
}

/// Every plan file below `dir` with its bytes.
pub fn plan_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(users) = std::fs::read_dir(dir) else {
        return out;
    };
    for u in users {
        let u = u.expect("entry").path();
        for f in std::fs::read_dir(&u).expect("tenant dir") {
            let f = f.expect("entry").path();
            let name = f.file_name().expect("name").to_string_lossy().into_owned();
            if Compression::from_name(&name).is_some() {
                let rel = format!("{}/{name}", u.file_name().expect("name").to_string_lossy());
                out.insert(rel, std::fs::read(&f).expect("read plan"));
            }
        }
    }
    out
}

pub fn rows_this_run(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("scanned "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    line.split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad summary line {line}"))
}

/// Sum of "N uploaded" over the per-table summary lines.
pub fn uploaded(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter(|l| l.starts_with("table "))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words
                .iter()
                .position(|w| w.trim_end_matches(',') == "uploaded")?;
            words.get(i.checked_sub(1)?)?.parse::<u64>().ok()
        })
        .sum()
}

/// Sum of `rows_read` over every segment checkpoint of every table, and whether any
/// segment of the first table is checkpointed but the table is not finished.
pub fn checkpointed_rows(work: &Path) -> (u64, usize, usize) {
    let (mut rows, mut checkpoints, mut done) = (0, 0, 0);
    let Ok(tables) = std::fs::read_dir(work.join("tables")) else {
        return (0, 0, 0);
    };
    for t in tables {
        let t = t.expect("t").path();
        for s in std::fs::read_dir(&t).expect("table dir") {
            let cp = s.expect("s").path().join("checkpoint.json");
            let Ok(bytes) = std::fs::read(&cp) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            rows += v["counts"]["rows_read"].as_u64().unwrap_or(0);
            checkpoints += 1;
            if v["done"].as_bool() == Some(true) {
                done += 1;
            }
        }
    }
    (rows, checkpoints, done)
}

/// SIGKILLs a running scanner once some segments of its first table are
/// checkpointed (≥ 1000 rows in ≥ 2 checkpoints, not all of 4 segments done): mid-table.
pub fn kill_mid_table(child: &mut std::process::Child, work: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (rows, checkpoints, done) = checkpointed_rows(work);
        if rows >= 1000 && checkpoints >= 2 && done < 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the scanner finished too early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}
