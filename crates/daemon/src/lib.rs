//! What every blocksconvert binary does around its work, in one place: log to stderr
//! (`--log.level`/`--log.format`, or `RUST_LOG`), wait for SIGTERM or Ctrl-C, and turn the
//! outcome into an exit status with the error chain printed once.

use std::process::ExitCode;
use std::time::Duration;

/// How logs are written (every binary flattens these into its flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogFlags {
    /// Log level or filter in `RUST_LOG` syntax (`info`, `debug`, `warn,scan=debug`);
    /// overrides `RUST_LOG`. Default: `info` for services, `warn` for commands.
    #[arg(long = "log.level", env = "BLOCKSCONVERT_LOG_LEVEL", global = true)]
    pub level: Option<String>,
    /// `text` (coloured only on a terminal), `json` (one object per line) or `logfmt`.
    #[arg(
        long = "log.format",
        env = "BLOCKSCONVERT_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub format: LogFormat,
}

/// Log line formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for Loki, Elasticsearch, Cloud Logging).
    Json,
    /// `key=value` pairs (for Loki's logfmt parser, Grafana Agent).
    Logfmt,
}

/// Logs to stderr: the filter is `--log.level`, else `RUST_LOG`, else `default_level`;
/// colours only when stderr is a terminal, so piped and file logs stay plain text.
pub fn init_logging(flags: &LogFlags, default_level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = match &flags.level {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
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

/// The receiving side of a process's shutdown switch (a `watch` channel set to true),
/// shared by servers, background loops and workers.
#[derive(Clone, Debug)]
pub struct Shutdown(pub tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// A switch and its receiver.
    pub fn channel() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Self(rx))
    }

    /// Whether shutdown has begun.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits up to `d`; true when shutting down.
    pub async fn wait_for(&self, d: Duration) -> bool {
        let mut rx = self.0.clone();
        if *rx.borrow() {
            return true;
        }
        tokio::time::timeout(d, rx.changed()).await.is_ok() && *rx.borrow()
    }

    /// Resolves once shutdown begins (or the switch is dropped).
    pub async fn signalled(&self) {
        let mut rx = self.0.clone();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The per-user directory for state that must survive restarts but is not the
/// operator's data (`$XDG_STATE_HOME/blocksconvert`, else `~/.local/state/blocksconvert`
/// on Linux; the platform's local data directory elsewhere). Defaults of `--work-dir`
/// live below it, so the same command finds the same state from any current directory.
pub fn state_dir() -> anyhow::Result<std::path::PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("blocksconvert"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no per-user state directory (HOME and XDG_STATE_HOME are unset); pass --work-dir"
            )
        })
}
