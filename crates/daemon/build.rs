//! Records the commit the binaries are built from, and its date, for `--version` and
//! `blocksconvert_build_info` (`BLOCKSCONVERT_COMMIT` overrides it where the source has
//! no git history, e.g. a container build from a tarball).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BLOCKSCONVERT_COMMIT");
    let commit = std::env::var("BLOCKSCONVERT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BLOCKSCONVERT_COMMIT={commit}");
    println!("cargo:rustc-env=BLOCKSCONVERT_COMMIT_DATE={date}");
    // A new commit moves the branch's ref (or HEAD itself when detached).
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
