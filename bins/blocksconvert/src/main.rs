//! `blocksconvert`: the operator's command line. Each subcommand only parses flags and
//! calls into the library crates.

mod bucket;
mod build;
mod convert;
mod docs;
mod generate;
mod human;
mod inspect;
mod load_index;
mod plans;
mod verify;

use clap::{CommandFactory, Parser, Subcommand};

/// Convert Cortex chunks storage to Prometheus TSDB blocks.
#[derive(Parser)]
#[command(name = "blocksconvert", version = daemon::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: daemon::LogFlags,
}

#[derive(Subcommand)]
enum Command {
    /// Show the contents of a chunk object or a block.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Write a synthetic Cortex chunk store (chunks, index export, schema, plans).
    Generate(generate::GenerateArgs),
    /// Convert everything in one process: scan the index, build every tenant-day's
    /// block, upload it (interruptible; rerun to resume).
    Convert(Box<convert::ConvertArgs>),
    /// Compare converted blocks with the chunk store, sample for sample.
    Verify(Box<verify::VerifyArgs>),
    /// Build and upload the block of one plan.
    Build(Box<build::BuildArgs>),
    /// Load DynamoDB exports into a DynamoDB(-compatible) endpoint (dry runs, benchmarks).
    LoadIndex(load_index::LoadIndexArgs),
    /// Retry quarantined tenant-days or rebuild finished ones (no marker editing).
    #[command(subcommand)]
    Plans(plans::PlansCommand),
    /// List a blocks bucket per tenant, or find overlapping blocks in it.
    #[command(subcommand)]
    Bucket(bucket::BucketCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Write man pages for this command and each subcommand.
    Man(docs::ManArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_from(config_file::cortex_style_args(
        &Cli::command(),
        std::env::args().collect(),
    ));
    if let Err(e) = daemon::init_logging(&cli.log, "warn") {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let ok = |r: anyhow::Result<()>| r.map(|()| std::process::ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Inspect(cmd) => ok(inspect::run(cmd)),
        Command::Generate(args) => ok(generate::run(args)),
        Command::Convert(args) => convert::run(*args),
        Command::Verify(args) => verify::run(*args),
        Command::Build(args) => ok(build::run(*args)),
        Command::LoadIndex(args) => ok(load_index::run(args)),
        Command::Plans(cmd) => ok(plans::run(cmd)),
        Command::Bucket(cmd) => bucket::run(cmd),
        Command::Completions(args) => ok(docs::completions(&args, Cli::command())),
        Command::Man(args) => ok(docs::man(&args, Cli::command())),
    };
    match result {
        Ok(code) => code,
        // `blocksconvert inspect … | head` is normal use, not a failure.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", daemon::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
