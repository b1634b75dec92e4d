//! `--log.level` and `--log.format`, which every binary takes.

/// How logs are written (every binary flattens these into its flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogFlags {
    /// Log level or filter in `RUST_LOG` syntax (`info`, `debug`, `warn,index_scan=debug`);
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
