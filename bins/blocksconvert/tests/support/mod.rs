//! Helpers shared by the `blocksconvert` command suites: running the binary over a
//! store laid out as Cortex's corpus, and reading what it left in the output.
#![allow(dead_code)] // Each suite uses a subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use blocksconvert_tests::corpus_dir;

pub const TENANTS: [&str; 3] = ["42", "acme", "team-a.prod"];
pub const DAYS: [i64; 3] = [18584, 18585, 18586];
pub const DAY_MS: i64 = 86_400_000;

pub fn blocksconvert() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_blocksconvert"));
    c.env("RUST_LOG", "warn");
    c
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `blocksconvert <command>` over a store laid out as Cortex's corpus and
/// `blocksconvert generate` lay it out (`schema.yaml`, `dynamodb-export/`, `chunks/`).
pub fn on_store(command: &str, store: &Path) -> Command {
    let mut c = blocksconvert();
    c.arg(command)
        .arg("--schema")
        .arg(store.join("schema.yaml"))
        .arg("--index")
        .arg(store.join("dynamodb-export"))
        .arg("--chunks")
        .arg(store.join("chunks"));
    c
}

pub fn convert_corpus(tmp: &Path) -> Output {
    convert_corpus_with(tmp, &[])
}

/// `convert` of the corpus into `tmp/blocks` (state in `tmp/work`) with `extra` flags.
pub fn convert_corpus_with(tmp: &Path, extra: &[&str]) -> Output {
    on_store("convert", &corpus_dir())
        .arg("--output")
        .arg(tmp.join("blocks"))
        .arg("--work-dir")
        .arg(tmp.join("work"))
        .args(["--builders", "2", "--workers", "1"])
        .args(extra)
        .output()
        .expect("run convert")
}

pub fn verify(store: &Path, tmp: &Path, extra: &[&str]) -> Output {
    on_store("verify", store)
        .arg("--blocks")
        .arg(tmp.join("blocks"))
        .arg("--work-dir")
        .arg(tmp.join("verify"))
        .args(extra)
        .output()
        .expect("run verify")
}

/// Block directories per (tenant, day), from their meta.json.
pub fn blocks_by_day(root: &Path) -> BTreeMap<(String, i64), Vec<PathBuf>> {
    let mut out: BTreeMap<(String, i64), Vec<PathBuf>> = BTreeMap::new();
    for tenant in std::fs::read_dir(root).expect("blocks dir") {
        let tenant = tenant.expect("entry").path();
        if !tenant.is_dir() {
            continue; // e.g. a probe object left by a kill
        }
        for block in std::fs::read_dir(&tenant).expect("tenant dir") {
            let block = block.expect("entry").path();
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(block.join("meta.json")).expect("meta.json"))
                    .expect("meta json");
            let day = meta["minTime"].as_i64().expect("minTime") / DAY_MS;
            let name = tenant.file_name().expect("name").to_string_lossy().into();
            out.entry((name, day)).or_default().push(block);
        }
    }
    out
}

pub fn line_for<'a>(stdout: &'a str, tenant: &str, day: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l[5..].starts_with(&format!("{tenant} {day}:")))
        .unwrap_or_else(|| panic!("no verdict for {tenant} {day} in:\n{stdout}"))
}

pub fn built_this_run(stdout: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("this run"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'this run' line in:\n{stdout}"))
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `blocksconvert generate --out <store> <args>`; panics with its output on failure.
pub fn generate(store: &Path, args: &[&str]) {
    let out = blocksconvert()
        .args(["generate", "--out"])
        .arg(store)
        .args(args)
        .output()
        .expect("generate");
    assert!(out.status.success(), "{}", text(&out));
}

/// `verify` of the blocks under `tmp` against `store` finds exactly `days` tenant-days,
/// all OK.
pub fn assert_verified(store: &Path, tmp: &Path, days: usize) {
    let v = verify(store, tmp, &[]);
    assert!(v.status.success(), "{}", text(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains(&format!(
            "verified {days} tenant-days: {days} OK, 0 with differences"
        )),
        "{}",
        text(&v)
    );
}
