//! YAML config files for clap commands, and small value parsers shared by the services.
//!
//! Every long flag of a command can also be a key of its `--config.file` (same name,
//! without the dashes). Precedence: command line > environment (`BLOCKSCONVERT_*`) >
//! config file > defaults. The file is turned into flags placed *before* the real
//! command-line arguments (clap's `args_override_self` lets the later ones win), and a
//! key whose flag's environment variable is set is left out, so the environment wins
//! over the file. Unknown keys are errors that name the key.

use clap::{ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

/// The flag that names the config file.
pub const CONFIG_FLAG: &str = "config.file";

/// The flag that prints the effective configuration and exits.
pub const PRINT_FLAG: &str = "print-config";

/// Whether a flag holds a secret (credentials, passwords, tokens): its value is never
/// printed, neither by `--print-config` nor in an error message. Paths to secrets
/// (`…-file`) are not secrets.
pub fn is_secret_key(long: &str) -> bool {
    let long = long.to_ascii_lowercase();
    !long.ends_with("-file")
        && (long.contains("secret") || long.contains("password") || long.ends_with("token"))
}

/// A config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Unreadable file.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Bad flags, or `--help`/`--version` (clap's message and exit status).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// Not a YAML mapping, or a bad value.
    #[error("config file {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (names the key).
        reason: String,
    },
}

/// What a command line asks for.
#[derive(Debug)]
pub enum Parsed<T> {
    /// Run with these settings.
    Run(T),
    /// `--print-config`: the effective settings as a config file, to print before
    /// exiting successfully.
    PrintConfig(String),
}

/// Parses `args` (`args[0]` is the program name) into `T`, applying `--config.file`
/// if given. Never exits: help, version and bad flags come back as
/// [`ConfigFileError::Usage`] for the binary to print and exit on.
///
/// Every command gets `--print-config`: it asks for the effective settings as a config
/// file (each key with where its value came from, secrets redacted), so an operator
/// sees what a flag, variable and file combination amounts to.
pub fn parse_from<T: CommandFactory + FromArgMatches>(
    args: Vec<String>,
) -> Result<Parsed<T>, ConfigFileError> {
    let cmd = T::command().args_override_self(true).arg(
        clap::Arg::new(PRINT_FLAG)
            .long(PRINT_FLAG)
            .action(ArgAction::SetTrue)
            .help("Print the effective configuration (as a --config.file) and exit"),
    );
    let args = cortex_style_args(&cmd, args);
    let expanded = expand(&cmd, args)?;
    let matches: ArgMatches = match cmd.clone().try_get_matches_from(expanded.args) {
        Ok(m) => m,
        Err(e) => {
            // A bad value that came from the file: say which file and key.
            if let (Some(path), Some(clap::error::ContextValue::String(arg))) =
                (&expanded.path, e.get(clap::error::ContextKind::InvalidArg))
                && let Some(key) = expanded
                    .from_file
                    .iter()
                    .find(|k| arg.starts_with(&format!("--{k} ")) || *arg == format!("--{k}"))
            {
                // clap's message quotes the value: not for a secret.
                let why = if is_secret_key(key) {
                    "invalid value (not shown: the key holds a secret)".to_owned()
                } else {
                    first_line(&e.render().to_string())
                };
                return Err(ConfigFileError::Invalid {
                    path: path.clone(),
                    reason: format!("key {key:?}: {why}"),
                });
            }
            return Err(ConfigFileError::Usage(e));
        }
    };
    if matches.get_flag(PRINT_FLAG) {
        return Ok(Parsed::PrintConfig(render_config(
            &cmd,
            &matches,
            &expanded.from_file,
        )));
    }
    Ok(Parsed::Run(T::from_arg_matches(&matches)?))
}

/// Accepts Cortex's single-dash spelling of long flags (`-schema-config-file=x`,
/// `-scanner.allowed-users x`): an argument with one dash whose name is a long flag or
/// alias of `cmd` (or of any of its subcommands) gets a second dash. Short flags, flag
/// clusters, negative numbers and everything after `--` are left alone.
pub fn cortex_style_args(cmd: &Command, args: Vec<String>) -> Vec<String> {
    fn longs(cmd: &Command, out: &mut std::collections::HashSet<String>) {
        for a in cmd.get_arguments() {
            out.extend(a.get_long().map(str::to_owned));
            out.extend(a.get_all_aliases().into_iter().flatten().map(str::to_owned));
        }
        for sub in cmd.get_subcommands() {
            longs(sub, out);
        }
    }
    let mut known = std::collections::HashSet::new();
    longs(cmd, &mut known);
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, a) in args.into_iter().enumerate() {
        rest |= a == "--";
        let single = !rest && i > 0 && a.starts_with('-') && !a.starts_with("--");
        let name = a.get(1..).unwrap_or_default();
        let name = name.split_once('=').map_or(name, |(n, _)| n);
        if single && name.len() > 1 && known.contains(name) {
            out.push(format!("-{a}"));
        } else {
            out.push(a);
        }
    }
    out
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

/// The effective settings as YAML, one key per long flag, with their source.
pub fn render_config(cmd: &Command, matches: &ArgMatches, from_file: &[String]) -> String {
    use clap::parser::ValueSource;
    let mut out = String::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if [CONFIG_FLAG, PRINT_FLAG, "help", "version"].contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let source = match matches.value_source(id) {
            Some(ValueSource::DefaultValue) => "default",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::CommandLine) if from_file.iter().any(|k| k == long) => "config file",
            Some(ValueSource::CommandLine) => "command line",
            _ => "unset",
        };
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let secret = is_secret_key(long);
        let yaml = |v: &str| -> String {
            if secret {
                return "<redacted>".into();
            }
            if v.parse::<f64>().is_ok() {
                return v.to_owned();
            }
            serde_yaml_ng::to_string(v)
                .map(|t| t.trim_end().to_owned())
                .unwrap_or_else(|_| format!("{v:?}"))
        };
        let value = match (arg.get_action(), values.as_slice()) {
            (ArgAction::SetTrue, _) => matches
                .try_get_one::<bool>(id)
                .ok()
                .flatten()
                .copied()
                .unwrap_or(false)
                .to_string(),
            (_, []) => "null".into(),
            (ArgAction::Append, vs) => format!(
                "[{}]",
                vs.iter().map(|v| yaml(v)).collect::<Vec<_>>().join(", ")
            ),
            (_, [v, ..]) => yaml(v),
        };
        out.push_str(&format!("{long}: {value}  # {source}\n"));
    }
    out
}

/// Arguments with the file's settings inserted, and which keys came from the file.
struct Expanded {
    args: Vec<String>,
    path: Option<String>,
    from_file: Vec<String>,
}

fn config_path(args: &[String]) -> Option<String> {
    let flag = format!("--{CONFIG_FLAG}");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if *a == flag {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            return Some(v.to_owned());
        }
    }
    None
}

/// Inserts the file's settings as flags after the program name.
fn expand(cmd: &Command, args: Vec<String>) -> Result<Expanded, ConfigFileError> {
    let Some(path) = config_path(&args) else {
        return Ok(Expanded {
            args,
            path: None,
            from_file: Vec::new(),
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Io {
        path: path.clone(),
        source,
    })?;
    let invalid = |reason: String| ConfigFileError::Invalid {
        path: path.clone(),
        reason,
    };
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let map = match doc {
        serde_yaml_ng::Value::Mapping(m) => m,
        serde_yaml_ng::Value::Null => Default::default(),
        _ => return Err(invalid("expected a mapping of flag names to values".into())),
    };
    let mut injected = Vec::new();
    let mut from_file = Vec::new();
    for (k, v) in map {
        let key = k
            .as_str()
            .ok_or_else(|| invalid(format!("key {k:?} is not a string")))?
            .to_owned();
        let arg = cmd
            .get_arguments()
            .find(|a| {
                key != CONFIG_FLAG
                    && (a.get_long() == Some(key.as_str())
                        || a.get_all_aliases()
                            .is_some_and(|al| al.contains(&key.as_str())))
            })
            .ok_or_else(|| {
                invalid(format!(
                    "unknown key {key:?} (keys are the long flag names)"
                ))
            })?;
        // The command line and the environment win over the file (a list given on the
        // command line replaces the file's list rather than extending it).
        // `key: null` (as --print-config writes unset keys) leaves the flag unset.
        if v.is_null() {
            continue;
        }
        let names: Vec<&str> = arg
            .get_long()
            .into_iter()
            .chain(arg.get_all_aliases().unwrap_or_default())
            .collect();
        let on_command_line = args.iter().skip(1).any(|a| {
            names
                .iter()
                .any(|n| *a == format!("--{n}") || a.starts_with(&format!("--{n}=")))
        });
        if on_command_line || arg.get_env().is_some_and(|e| std::env::var_os(e).is_some()) {
            continue;
        }
        from_file.push(arg.get_long().unwrap_or(&key).to_owned());
        let secret = arg.get_long().is_some_and(is_secret_key);
        let scalar = |v: &serde_yaml_ng::Value| -> Result<String, ConfigFileError> {
            match v {
                serde_yaml_ng::Value::String(s) => Ok(s.clone()),
                serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
                serde_yaml_ng::Value::Bool(b) => Ok(b.to_string()),
                _ if secret => Err(invalid(format!(
                    "key {key:?}: expected a single value (not shown: the key holds a secret)"
                ))),
                other => Err(invalid(format!("key {key:?}: {other:?} is not a scalar"))),
            }
        };
        match arg.get_action() {
            ArgAction::SetTrue => match v {
                serde_yaml_ng::Value::Bool(true) => injected.push(format!("--{key}")),
                serde_yaml_ng::Value::Bool(false) => {}
                _ if secret => {
                    return Err(invalid(format!(
                        "key {key:?}: expected true or false (value not shown: secret)"
                    )));
                }
                other => {
                    return Err(invalid(format!(
                        "key {key:?}: expected true or false, got {other:?}"
                    )));
                }
            },
            _ => {
                let values = match &v {
                    serde_yaml_ng::Value::Sequence(items) => {
                        items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?
                    }
                    other => vec![scalar(other)?],
                };
                for value in values {
                    injected.push(format!("--{key}={value}"));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(args.len() + injected.len());
    let mut it = args.into_iter();
    out.extend(it.next());
    out.extend(injected);
    out.extend(it);
    Ok(Expanded {
        args: out,
        path: Some(path),
        from_file,
    })
}

/// Parses a byte size like `64MiB`, `1g`, `4096`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a size like 64MiB"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => return Err(format!("{text:?}: unknown unit {other:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?}: too large"))
}

#[cfg(test)]
mod cortex_style_tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Flags {
        #[arg(long = "schema", alias = "schema-config-file")]
        _schema: Option<String>,
        #[arg(long, short)]
        _quiet: bool,
        #[arg(long = "offset", allow_negative_numbers = true)]
        _offset: Option<i64>,
    }

    #[test]
    fn single_dash_long_flags_get_a_second_dash_and_nothing_else_does() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = cortex_style_args(
            &Flags::command(),
            args(&[
                "bin",
                "-schema-config-file=s.yaml",
                "-schema",
                "t.yaml",
                "-q",
                "--offset",
                "-5",
                "-unknown",
                "--",
                "-schema",
            ]),
        );
        assert_eq!(
            got,
            args(&[
                "bin",
                "--schema-config-file=s.yaml",
                "--schema",
                "t.yaml",
                "-q",
                "--offset",
                "-5",
                "-unknown",
                "--",
                "-schema",
            ])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Flags {
        #[arg(long = "config.file")]
        _config: Option<String>,
        #[arg(long = "work-dir", default_value = "w")]
        work_dir: String,
        #[arg(long = "tenant")]
        tenant: Vec<String>,
        #[arg(long = "keep-files")]
        keep_files: bool,
        #[arg(long = "limit", env = "CONFIG_FILE_TEST_LIMIT", default_value_t = 1)]
        limit: u32,
        #[arg(long = "auth.token")]
        _token: Option<String>,
        /// A secret whose parser can refuse a value (clap then quotes it).
        #[arg(long = "storage.secret-pin")]
        _pin: Option<u32>,
        #[arg(long = "auth.token-file")]
        _token_file: Option<String>,
    }

    /// The settings a command line asks to run with.
    fn run<T>(parsed: Result<Parsed<T>, ConfigFileError>) -> T {
        match parsed.expect("parse") {
            Parsed::Run(t) => t,
            Parsed::PrintConfig(_) => panic!("asked to print the config"),
        }
    }

    fn args(extra: &[&str]) -> Vec<String> {
        std::iter::once("prog")
            .chain(extra.iter().copied())
            .map(String::from)
            .collect()
    }

    #[test]
    fn file_values_apply_and_the_command_line_wins() {
        let dir = std::env::temp_dir().join(format!("config-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.yaml");
        std::fs::write(
            &path,
            "work-dir: /data\ntenant: [a, b]\nkeep-files: true\nlimit: 5\n",
        )
        .expect("write");
        let p = path.display().to_string();
        let f: Flags = run(parse_from(args(&["--config.file", &p])));
        assert_eq!(f.work_dir, "/data");
        assert_eq!(f.tenant, ["a", "b"]);
        assert!(f.keep_files);
        assert_eq!(f.limit, 5);
        let f: Flags = run(parse_from(args(&["--config.file", &p, "--work-dir", "/x"])));
        assert_eq!(f.work_dir, "/x");
        let f: Flags = run(parse_from(args(&["--config.file", &p, "--tenant", "c"])));
        assert_eq!(
            f.tenant,
            ["c"],
            "a list on the command line replaces the file's"
        );
        std::fs::write(&path, "wrok-dir: /data\n").expect("write");
        let err = parse_from::<Flags>(args(&["--config.file", &p])).expect_err("typo");
        assert!(err.to_string().contains("\"wrok-dir\""), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn bad_values_name_the_file_and_key_and_print_config_shows_sources() {
        let dir = std::env::temp_dir().join(format!("config-file-print-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.yaml");
        let p = path.display().to_string();
        std::fs::write(&path, "limit: many\n").expect("write");
        let err = parse_from::<Flags>(args(&["--config.file", &p])).expect_err("bad value");
        let text = err.to_string();
        assert!(
            text.contains(&p) && text.contains("key \"limit\"") && text.contains("many"),
            "{text}"
        );

        std::fs::write(&path, "work-dir: /data\ntenant: [a, b]\n").expect("write");
        let cmd = Flags::command();
        let expanded = expand(&cmd, args(&["--config.file", &p, "--keep-files"])).expect("expand");
        let matches = cmd
            .clone()
            .try_get_matches_from(expanded.args)
            .expect("matches");
        let text = render_config(&cmd, &matches, &expanded.from_file);
        assert!(text.contains("work-dir: /data  # config file\n"), "{text}");
        assert!(text.contains("tenant: [a, b]  # config file\n"), "{text}");
        assert!(
            text.contains("keep-files: true  # command line\n"),
            "{text}"
        );
        assert!(
            text.contains("limit: '1'  # default\n") || text.contains("limit: 1  # default\n"),
            "{text}"
        );
        assert!(!text.contains("config.file"), "{text}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn secrets_never_appear_in_errors_or_printed_config() {
        assert!(is_secret_key("auth.token") && is_secret_key("storage.secret-access-key"));
        assert!(!is_secret_key("auth.token-file") && !is_secret_key("tls.key-file"));
        let dir = std::env::temp_dir().join(format!("config-file-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.yaml");
        let p = path.display().to_string();
        for body in [
            "auth.token: {value: hunter2-very-secret}\n",
            "auth.token: [[hunter2-very-secret]]\n",
            "storage.secret-pin: hunter2-very-secret\n",
        ] {
            std::fs::write(&path, body).expect("write");
            let err = parse_from::<Flags>(args(&["--config.file", &p])).expect_err(body);
            let text = err.to_string();
            assert!(!text.contains("hunter2"), "{body}: {text}");
            assert!(text.contains(&p) && text.contains("key \""), "{text}");
        }
        std::fs::write(&path, "auth.token: hunter2-very-secret\n").expect("write");
        let cmd = Flags::command();
        let expanded = expand(&cmd, args(&["--config.file", &p])).expect("expand");
        let matches = cmd
            .clone()
            .try_get_matches_from(expanded.args)
            .expect("matches");
        let text = render_config(&cmd, &matches, &expanded.from_file);
        assert!(!text.contains("hunter2"), "{text}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12 parsecs").is_err());
    }
}
