//! What every blocksconvert binary does around its work, in one place: log to stderr
//! (`--log.level`/`--log.format`, or `RUST_LOG`), export metrics the same way (build
//! info, process metrics, duration histograms), wait for SIGTERM or Ctrl-C, and turn
//! the outcome into an exit status with the error chain printed once.

use std::process::ExitCode;
use std::time::Duration;

pub use flags::{LogFlags, LogFormat};

/// Logs to stderr: the filter is `--log.level`, else `RUST_LOG`, else `default_level`;
/// colours only when stderr is a terminal, so piped and file logs stay plain text.
pub fn init_logging(flags: &LogFlags, default_level: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = match &flags.level {
        Some(level) => tracing_subscriber::EnvFilter::try_new(level)
            .map_err(|e| anyhow::anyhow!("--log.level {level:?}: {e}"))?,
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
    };
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init`: a second call (tests, an embedding binary) keeps the first logger.
    let _ = match flags.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes' stop signal) or Ctrl-C.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Parses the process arguments into `T` for a binary's `main`, with `--config.file`
/// and `--print-config` (see `config_file::parse_from`): help and version print and
/// exit 0, bad flags print clap's usage and exit 2, `--print-config` prints the
/// settings and exits 0, an unusable config file is reported and exits 1.
pub fn parse_args_or_exit<T: clap::CommandFactory + clap::FromArgMatches>() -> T {
    match config_file::parse_from::<T>(std::env::args().collect()) {
        Ok(config_file::Parsed::Run(args)) => args,
        Ok(config_file::Parsed::PrintConfig(text)) => {
            print!("{text}");
            std::process::exit(0)
        }
        Err(config_file::ConfigFileError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}

/// The exit status of a run: its own on success, 1 with the error chain on failure.
pub fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            let text = error_chain(&e);
            tracing::error!("{text}");
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes joined by `: `, each cause left out when the text so far
/// already says it (many errors quote their source in their own message, and `{:#}`
/// would print it twice).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Runs `fut` on a multi-threaded runtime (`worker_threads` = cores when `None`).
pub fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    worker_threads: Option<usize>,
    fut: F,
) -> anyhow::Result<ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?
        .block_on(fut)
}

/// Creates `dir` and holds an exclusive lock on `<dir>/lock` for as long as the
/// returned file lives: two processes never share a work dir (one would wipe or
/// rewrite the other's state). The lock goes with the process, however it ends.
pub fn lock_work_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("--work-dir {}: {e}", dir.display()))?;
    let path = dir.join("lock");
    let file = std::fs::File::create(&path)
        .map_err(|e| anyhow::anyhow!("--work-dir: creating {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(anyhow::anyhow!(
            "--work-dir {}: another blocksconvert process is using this work dir; wait for it or pass another --work-dir",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(anyhow::anyhow!(
            "--work-dir {}: cannot lock {} ({e}); use a local file system that supports locks",
            dir.display(),
            path.display()
        )),
    }
}

/// Buckets of every `…_seconds` histogram: 5 ms to 30 min, so phases of a plan and
/// RPCs alike land in a bucket.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0, 1800.0,
];

/// The Prometheus exporter every binary installs: durations as histograms (which
/// aggregate across replicas, unlike summaries).
pub fn metrics_builder() -> metrics_exporter_prometheus::PrometheusBuilder {
    let builder = metrics_exporter_prometheus::PrometheusBuilder::new();
    let matcher = metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned());
    match builder.set_buckets_for_metric(matcher, &DURATION_BUCKETS) {
        Ok(b) => b,
        // Only refused for an empty bucket list, which DURATION_BUCKETS is not.
        Err(_) => metrics_exporter_prometheus::PrometheusBuilder::new(),
    }
}

/// The version every binary's `--version` prints: the crate version, the commit and
/// its date (`0.1.0 (commit 1c4574a1b2c3, 2026-11-30)`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BLOCKSCONVERT_COMMIT"),
    ", ",
    env!("BLOCKSCONVERT_COMMIT_DATE"),
    ")"
);

/// Build info and `process_*` metrics (CPU, memory, open files, start time), updated
/// every 5 s by a background thread: call once after installing the recorder.
pub fn register_process_metrics(component: &'static str) {
    ::metrics::describe_gauge!(
        "blocksconvert_build_info",
        "Always 1; labels name the binary, its version and commit."
    );
    ::metrics::gauge!(
        "blocksconvert_build_info",
        "component" => component,
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => env!("BLOCKSCONVERT_COMMIT")
    )
    .set(1.0);
    let collector = metrics_process::Collector::default();
    collector.describe();
    collector.collect();
    let _ = std::thread::Builder::new()
        .name("process-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                collector.collect();
            }
        });
}
