//! `blocksconvert completions <shell>` and `blocksconvert man --output DIR`: shell
//! completion scripts and man pages, generated from the same flag definitions as
//! `--help`, so they never drift from the command.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Command};

/// Flags of `blocksconvert completions`.
#[derive(Args)]
pub struct CompletionsArgs {
    /// Shell to complete for; e.g. `blocksconvert completions bash >
    /// /etc/bash_completion.d/blocksconvert`.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Flags of `blocksconvert man`.
#[derive(Args)]
pub struct ManArgs {
    /// Directory for the pages (`blocksconvert.1`, `blocksconvert-convert.1`, …);
    /// e.g. `/usr/local/share/man/man1`.
    #[arg(long)]
    output: PathBuf,
}

/// Prints the completion script for `a.shell` to standard output.
pub fn completions(a: &CompletionsArgs, mut cmd: Command) -> anyhow::Result<()> {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(a.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(())
}

/// Writes one man page for the command and one per subcommand, at every depth.
pub fn man(a: &ManArgs, cmd: Command) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("--output {}", a.output.display()))?;
    let written = write_pages(&a.output, cmd.clone(), cmd.get_name())?;
    eprintln!("wrote {written} man pages to {}", a.output.display());
    Ok(())
}

fn write_pages(dir: &Path, cmd: Command, name: &str) -> anyhow::Result<usize> {
    let cmd = cmd.name(name.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .with_context(|| format!("rendering {name}"))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    let mut written = 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written += write_pages(dir, sub.clone(), &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(written)
}
