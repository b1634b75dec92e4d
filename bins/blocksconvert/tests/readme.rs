//! The README's walk-through, run as written: the fenced block after the
//! `<!-- walk-through` marker runs in bash from an empty directory with this build's
//! `blocksconvert` on the `PATH`; every command must succeed and say what the README
//! says it does.

use std::path::Path;
use std::process::Command;

/// The shell block following the walk-through marker, de-indented.
fn walk_through() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let after = readme
        .split_once("<!-- walk-through")
        .expect("the README has a walk-through marker")
        .1;
    let mut lines = after
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("```sh"));
    let fence = lines.next().expect("a ```sh block after the marker");
    let indent = fence.len() - fence.trim_start().len();
    lines
        .take_while(|l| l.trim_start() != "```")
        .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readme_walk_through_runs_as_written() {
    let script = walk_through();
    assert!(script.contains("blocksconvert convert"), "{script}");
    let dir = tempfile::tempdir().expect("tmp");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_blocksconvert"))
        .parent()
        .expect("bin dir")
        .to_owned();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the walk-through failed:\n{script}\n---\n{all}"
    );
    for said in [
        // The dry run counts the whole store and converts nothing.
        "blocksconvert convert --dry-run: nothing was converted",
        "tenant-days  4 (2 tenants, 2020-11-18 to 2020-11-19)",
        // The trial tenant, then everything.
        "tenant-days  2 planned, 2 converted",
        "verified 2 tenant-days: 2 OK",
        "tenant-days  4 planned, 4 converted",
        "verified 4 tenant-days: 4 OK",
        "checked 4 blocks: 0 overlapping pairs",
        "Highest cardinality metric names:",
    ] {
        assert!(stdout.contains(said), "expected {said:?} in:\n{all}");
    }
}
