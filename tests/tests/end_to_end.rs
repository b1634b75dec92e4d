//! The three services as separate processes over real backends, once per backend
//! family: the corpus index in DynamoDB (dynalite) with chunks, plans and blocks in S3
//! (moto); and the index in Bigtable (Google's emulator) with chunks in GCS
//! (fake-gcs-server), plans and blocks in Azure Blob (Azurite). The scanner plans,
//! the scheduler leases to two builders, `blocksconvert verify` then finds every
//! tenant-day of the corpus identical to its chunks. While the services run, their
//! `/metrics` are scraped and every metric the Grafana dashboard and the alert rules
//! in deploy/ use must be among them. The control plane runs as in production: mutual
//! TLS on the scheduler's gRPC API, TLS on its HTTP API, a bearer token from a file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use blocksconvert_tests::pki::{TestPki, http_call};
use blocksconvert_tests::{
    Azurite, BigtableEmulator, DynaliteServer, GcsEmulator, MotoServer, corpus_dir, free_port,
    moto_options, s3_flags, upload_tree, wait_for_port, workspace_bin,
};
use storage::StoreLocation;

/// Kills the services when the test ends, however it ends.
struct Services(Vec<(String, Child)>);

impl Drop for Services {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn command(bin: &Path, log: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"));
    c
}

fn check(what: &str, out: &Output, log: &Path) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    ureq::get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .ok()?
        .into_body()
        .read_to_string()
        .ok()
}

/// Metric names in a Prometheus text exposition.
fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// `cortex_blocksconvert_*` names a deploy/ file refers to.
fn referenced_names(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).expect("deploy file");
    let mut names = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("cortex_blocksconvert_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Where one end-to-end run reads and writes, as flags.
struct Backend {
    /// `--schema` file.
    schema: String,
    /// `--index` plus the flags its source needs.
    index: Vec<String>,
    /// `--chunks` value.
    chunks: String,
    /// Plans and blocks locations.
    plans: String,
    blocks: String,
    /// Storage flags (endpoints, credentials) every process takes.
    storage: Vec<String>,
    /// SIGKILL the scanner mid-table once, then run it again to the end.
    kill_scanner: bool,
}

#[test]
fn scanner_scheduler_two_builders_then_verify_on_dynalite_and_moto() {
    let blocksconvert = workspace_bin("blocksconvert-cli", "blocksconvert");
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = corpus_dir();
    let dynalite = DynaliteServer::start();
    let moto = MotoServer::start();
    for b in ["chunks", "plans", "blocks"] {
        moto.create_bucket(b);
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let chunks =
        StoreLocation::open("s3://chunks", &moto_options(&moto), false).expect("chunks bucket");
    rt.block_on(upload_tree(&corpus.join("chunks"), &chunks));

    // The index into DynamoDB, as Cortex's tables.
    let log = tmp.path().join("load-index.log");
    let out = command(&blocksconvert, &log)
        .args(["load-index", "--export"])
        .arg(corpus.join("dynamodb-export"))
        .args(["--dynamodb.endpoint", &dynalite.endpoint])
        .output()
        .expect("load-index");
    check("load-index", &out, &log);
    three_services_then_verify(
        tmp.path(),
        &Backend {
            schema: corpus.join("schema.yaml").display().to_string(),
            index: vec![
                "--index".into(),
                "dynamodb://us-east-1".into(),
                "--dynamodb.endpoint".into(),
                dynalite.endpoint.clone(),
            ],
            chunks: "s3://chunks".into(),
            plans: "s3://plans".into(),
            blocks: "s3://blocks".into(),
            storage: s3_flags(&moto.endpoint),
            kill_scanner: false,
        },
    );
}

/// Google Cloud and Azure: the index in Bigtable (`gcp` layout, Cortex's raw cells in
/// Google's emulator), chunks in GCS (fake-gcs-server), plans and blocks in Azure
/// Blob (Azurite); the scanner is SIGKILLed mid-table and resumed.
#[test]
fn scanner_scheduler_two_builders_then_verify_on_bigtable_gcs_and_azure() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = corpus_dir();
    let emulator = BigtableEmulator::start();
    let gcs = GcsEmulator::start();
    let azurite = Azurite::start();
    gcs.create_bucket("chunks");
    gcs.upload_tree("chunks", &corpus.join("chunks"));
    azurite.create_container("migration");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(emulator.load_fixture("cortex", "gcp", "index", |_| true));
    let mut storage = azurite.flags();
    storage.extend(["--gcs.endpoint".into(), gcs.endpoint.clone()]);
    storage.extend(["--bigtable.emulator".into(), emulator.host.clone()]);
    three_services_then_verify(
        tmp.path(),
        &Backend {
            schema: corpus
                .join("bigtable/schema-gcp.yaml")
                .display()
                .to_string(),
            index: vec!["--index".into(), "bigtable://cortex/index".into()],
            chunks: "gs://chunks".into(),
            plans: "az://migration/plans".into(),
            blocks: "az://migration/blocks".into(),
            storage,
            kill_scanner: true,
        },
    );
}

/// Rows the scanner's checkpoints under `work` account for.
fn checkpointed_rows(work: &Path) -> u64 {
    let mut rows = 0;
    let Ok(tables) = std::fs::read_dir(work.join("tables")) else {
        return 0;
    };
    for t in tables.flatten() {
        for s in std::fs::read_dir(t.path()).into_iter().flatten().flatten() {
            let Ok(bytes) = std::fs::read(s.path().join("checkpoint.json")) else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                rows += v["counts"]["rows_read"].as_u64().unwrap_or(0);
            }
        }
    }
    rows
}

/// Rows "read by this run" in the scanner's summary.
fn rows_this_run(text: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with("scanned "))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no scanner summary in {text}"))
}

fn three_services_then_verify(tmp: &Path, b: &Backend) {
    let blocksconvert = workspace_bin("blocksconvert-cli", "blocksconvert");
    let scanner = workspace_bin("blocksconvert-scanner", "blocksconvert-scanner");
    let scheduler = workspace_bin("blocksconvert-scheduler", "blocksconvert-scheduler");
    let builder = workspace_bin("blocksconvert-builder", "blocksconvert-builder");
    let log = |name: &str| tmp.join(format!("{name}.log"));
    let schema = b.schema.clone();
    let s3 = &b.storage;

    // Scanner: live tables → plans.
    let scanner_metrics = tmp.join("scanner.prom");
    let scan = |extra: &[&str]| {
        let mut c = command(&scanner, &log("scanner"));
        c.args(["--schema", &schema])
            .args(&b.index)
            .args(["--plans", &b.plans])
            .arg("--work-dir")
            .arg(tmp.join("scan"))
            .arg("--metrics-file")
            .arg(&scanner_metrics)
            .arg("--quiet")
            .args(s3)
            .args(extra);
        c
    };
    let mut killed_at = 0;
    if b.kill_scanner {
        let mut child = scan(&[
            "--checkpoint-interval",
            "50ms",
            "--max-rows-per-second",
            "2000",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("scanner");
        let deadline = Instant::now() + Duration::from_secs(120);
        while checkpointed_rows(&tmp.join("scan")) < 1000 {
            assert!(Instant::now() < deadline, "no scanner checkpoint appeared");
            assert!(
                child.try_wait().expect("poll").is_none(),
                "the scanner finished before it could be killed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        killed_at = checkpointed_rows(&tmp.join("scan"));
    }
    let out = scan(&[]).output().expect("scanner");
    let text = check("scanner", &out, &log("scanner"));
    assert!(text.contains("scanned"), "{text}");
    if b.kill_scanner {
        assert_eq!(
            rows_this_run(&text),
            11_140 - killed_at,
            "the resumed scan reads only what its checkpoints did not cover:\n{text}"
        );
    }

    // Scheduler and two builders, with mutual TLS and a token file.
    let pki = TestPki::generate(&tmp.join("pki"));
    let token = "end-to-end-token-0123456789abcdef";
    let token_file = tmp.join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let https = pki.https_agent();
    let (grpc, http) = (free_port(), free_port());
    let scheduler_get = |path: &str| -> Option<String> {
        let (code, body) = http_call(
            &https,
            "GET",
            &format!("https://127.0.0.1:{http}{path}"),
            Some(token),
        )?;
        (code == 200).then_some(body)
    };
    let mut services = Services(Vec::new());
    let child = command(&scheduler, &log("scheduler"))
        .args([
            "--blocks",
            &b.blocks,
            "--plans",
            &b.plans,
            "--lease-ttl",
            "6s",
            "--heartbeat",
            "1s",
        ])
        .args(["--scan-interval", "2s", "--max-lease-wait", "1s"])
        .args(["--grpc-listen", &format!("127.0.0.1:{grpc}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .args(pki.server_flags(true))
        .arg("--auth.token-file")
        .arg(&token_file)
        .args(s3)
        .stdout(Stdio::null())
        .spawn()
        .expect("scheduler");
    services.0.push(("scheduler".into(), child));
    wait_for_port(http, "blocksconvert-scheduler", 30);
    let mut builder_ports = Vec::new();
    for name in ["builder-0", "builder-1"] {
        let port = free_port();
        let child = command(&builder, &log(name))
            .args(["--scheduler", &format!("127.0.0.1:{grpc}"), "--name", name])
            .args([
                "--chunks", &b.chunks, "--output", &b.blocks, "--schema", &schema,
            ])
            .arg("--work-dir")
            .arg(tmp.join(name))
            .args(["--lease-wait", "1s", "--workers", "1"])
            .args(["--metrics.listen", &format!("127.0.0.1:{port}")])
            .args(pki.client_flags(true))
            .arg("--auth.token-file")
            .arg(&token_file)
            .args(s3)
            .stdout(Stdio::null())
            .spawn()
            .expect("builder");
        services.0.push((name.into(), child));
        builder_ports.push(port);
    }
    let logs = || {
        ["scheduler", "builder-0", "builder-1"]
            .iter()
            .map(|n| {
                format!(
                    "--- {n}\n{}",
                    std::fs::read_to_string(log(n)).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let status: Option<serde_json::Value> =
            scheduler_get("/plans?format=json").and_then(|t| serde_json::from_str(&t).ok());
        let finished = status
            .as_ref()
            .and_then(|s| s["counts"]["finished"].as_u64())
            .unwrap_or(0);
        if finished == 9 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all 9 tenant-days finished in 240 s: {status:?}\n{}",
            logs()
        );
        for (name, c) in &mut services.0 {
            assert!(
                c.try_wait().expect("poll").is_none(),
                "{name} exited early\n{}",
                logs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // Every metric the dashboard and the alerts use is exported by a service.
    let mut exported = exported_names(&scheduler_get("/metrics").expect("scheduler /metrics"));
    for port in &builder_ports {
        exported.extend(exported_names(
            &http_get(*port, "/metrics").expect("builder /metrics"),
        ));
    }
    exported.extend(exported_names(
        &std::fs::read_to_string(&scanner_metrics).expect("scanner metrics file"),
    ));
    let mut referenced = BTreeSet::new();
    for file in [
        deploy_dir().join("grafana/blocksconvert.json"),
        deploy_dir().join("prometheus/alerts.yaml"),
    ] {
        let names = referenced_names(&file);
        assert!(!names.is_empty(), "{} names no metric", file.display());
        referenced.extend(names);
    }
    let unknown: Vec<&String> = referenced.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "deploy/ uses metrics no service exports: {unknown:?}\nexported: {exported:?}"
    );

    // Builders drain on SIGTERM; the scheduler stops.
    for (name, child) in &services.0 {
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "signal {name}");
    }
    for (name, child) in std::mem::take(&mut services.0) {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{name}: {}\n{}", out.status, logs());
    }

    // verify: re-read the index and the chunks, compare with the blocks.
    let out = command(&blocksconvert, &log("verify"))
        .args(["verify", "--schema", &schema])
        .args(&b.index)
        .args(["--chunks", &b.chunks, "--blocks", &b.blocks])
        .arg("--work-dir")
        .arg(tmp.join("verify"))
        .args(s3)
        .output()
        .expect("verify");
    let text = check("verify", &out, &log("verify"));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("OK ")).count(),
        9,
        "{text}"
    );
    for tenant in ["42", "acme", "team-a.prod"] {
        for day in ["2020-11-18", "2020-11-19", "2020-11-20"] {
            assert!(
                text.contains(&format!("OK   {tenant} {day}:")),
                "{tenant} {day}:\n{text}"
            );
        }
    }
    assert!(
        text.contains("verified 9 tenant-days: 9 OK, 0 with differences"),
        "{text}"
    );
}
