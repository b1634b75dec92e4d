//! The three services as separate processes over real backends: the corpus index in
//! DynamoDB (dynalite), chunks, plans and blocks in S3 (moto). The scanner plans,
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
    DynaliteServer, MotoServer, corpus_dir, free_port, moto_options, s3_flags, upload_tree,
    wait_for_port, workspace_bin,
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

#[test]
fn scanner_scheduler_two_builders_then_verify_on_dynalite_and_moto() {
    let blocksconvert = workspace_bin("blocksconvert-cli", "blocksconvert");
    let scanner = workspace_bin("blocksconvert-scanner", "blocksconvert-scanner");
    let scheduler = workspace_bin("blocksconvert-scheduler", "blocksconvert-scheduler");
    let builder = workspace_bin("blocksconvert-builder", "blocksconvert-builder");
    let tmp = tempfile::tempdir().expect("tmp");
    let log = |name: &str| tmp.path().join(format!("{name}.log"));
    let corpus = corpus_dir();
    let schema = corpus.join("schema.yaml").display().to_string();

    let dynalite = DynaliteServer::start();
    let moto = MotoServer::start();
    for b in ["chunks", "plans", "blocks"] {
        moto.create_bucket(b);
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let chunks =
        StoreLocation::open("s3://chunks", &moto_options(&moto), false).expect("chunks bucket");
    rt.block_on(upload_tree(&corpus.join("chunks"), &chunks));
    let s3 = s3_flags(&moto.endpoint);

    // The index into DynamoDB, as Cortex's tables.
    let out = command(&blocksconvert, &log("load-index"))
        .args(["load-index", "--export"])
        .arg(corpus.join("dynamodb-export"))
        .args(["--dynamodb.endpoint", &dynalite.endpoint])
        .output()
        .expect("load-index");
    check("load-index", &out, &log("load-index"));

    // Scanner: live tables → plans in S3.
    let scanner_metrics = tmp.path().join("scanner.prom");
    let out = command(&scanner, &log("scanner"))
        .args(["--schema", &schema, "--index", "dynamodb://us-east-1"])
        .args([
            "--dynamodb.endpoint",
            &dynalite.endpoint,
            "--plans",
            "s3://plans",
        ])
        .arg("--work-dir")
        .arg(tmp.path().join("scan"))
        .arg("--metrics-file")
        .arg(&scanner_metrics)
        .arg("--quiet")
        .args(&s3)
        .output()
        .expect("scanner");
    let text = check("scanner", &out, &log("scanner"));
    assert!(text.contains("scanned"), "{text}");

    // Scheduler and two builders, with mutual TLS and a token file.
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let token = "end-to-end-token-0123456789abcdef";
    let token_file = tmp.path().join("token");
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
            "s3://blocks",
            "--plans",
            "s3://plans",
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
        .args(&s3)
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
                "--chunks",
                "s3://chunks",
                "--output",
                "s3://blocks",
                "--schema",
                &schema,
            ])
            .arg("--work-dir")
            .arg(tmp.path().join(name))
            .args(["--lease-wait", "1s", "--workers", "1"])
            .args(["--metrics.listen", &format!("127.0.0.1:{port}")])
            .args(pki.client_flags(true))
            .arg("--auth.token-file")
            .arg(&token_file)
            .args(&s3)
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

    // verify: re-read DynamoDB and the chunk bucket, compare with the blocks bucket.
    let out = command(&blocksconvert, &log("verify"))
        .args([
            "verify",
            "--schema",
            &schema,
            "--index",
            "dynamodb://us-east-1",
        ])
        .args(["--dynamodb.endpoint", &dynalite.endpoint])
        .args(["--chunks", "s3://chunks", "--blocks", "s3://blocks"])
        .arg("--work-dir")
        .arg(tmp.path().join("verify"))
        .args(&s3)
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
