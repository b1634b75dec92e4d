//! The control plane against callers it must not trust, with real processes: a
//! `blocksconvert-scheduler` over the corpus plans in a local directory, gRPC clients
//! made in the test (no token, a wrong token, another lease's secret, invented or
//! foreign blocks), TLS and mutual TLS with certificates generated here, and real
//! `blocksconvert-builder`s. Refusals must be answered with a fitting code, never hang
//! the process, and never cost a good block.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blocksconvert_proto as pb;
use blocksconvert_tests::pki::{TestPki, http_call};
use blocksconvert_tests::{copy_tree, corpus_dir, expected, free_port, read_block, workspace_bin};
use cortex_index::tenant::with_date;
use pb::scheduler_client::SchedulerClient;
use serde_json::Value;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use transport_security::{AttachToken, BearerToken};

const TOKEN: &str = "test-token-0123456789abcdef";
const DAY_MS: i64 = 86_400_000;

type Client = SchedulerClient<InterceptedService<Channel, AttachToken>>;

/// A scheduler process over a copy of the corpus plans, with local blocks.
struct Sched {
    dir: tempfile::TempDir,
    child: Option<Child>,
    grpc: u16,
    http: u16,
    pki: Option<TestPki>,
    agent: ureq::Agent,
    rt: tokio::runtime::Runtime,
    builders: Vec<Child>,
}

impl Sched {
    fn start(tls: Option<bool>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        copy_tree(
            &corpus_dir().join("cortex-output/plans"),
            &dir.path().join("plans"),
        );
        std::fs::create_dir_all(dir.path().join("blocks")).expect("blocks");
        let pki = tls.map(|_| TestPki::generate(&dir.path().join("pki")));
        let (grpc, http) = (free_port(), free_port());
        let log = std::fs::File::create(dir.path().join("scheduler.log")).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_blocksconvert-scheduler"));
        cmd.arg("--plans")
            .arg(dir.path().join("plans"))
            .arg("--blocks")
            .arg(dir.path().join("blocks"))
            .args(["--grpc-listen", &format!("127.0.0.1:{grpc}")])
            .args(["--http-listen", &format!("127.0.0.1:{http}")])
            .args(["--lease-ttl", "30s", "--heartbeat", "1s"])
            .args(["--scan-interval", "2s", "--max-lease-wait", "1s"])
            .args(extra)
            .env("BLOCKSCONVERT_AUTH_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        if let (Some(p), Some(mutual)) = (&pki, tls) {
            cmd.args(p.server_flags(mutual));
        }
        let child = cmd.spawn().expect("spawn scheduler");
        let agent = pki.as_ref().map_or_else(
            || {
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into()
            },
            TestPki::https_agent,
        );
        let s = Self {
            dir,
            child: Some(child),
            grpc,
            http,
            pki,
            agent,
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            builders: Vec::new(),
        };
        s.wait_for("the scheduler to be ready", 60, |s| s["ready"] == true);
        s
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.http)
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
        http_call(&self.agent, method, &self.url(path), token)
    }

    fn status(&self) -> Option<Value> {
        let (code, body) = self.call("GET", "/plans?format=json", Some(TOKEN))?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                out.push_str(&format!("\n==== {}\n", e.path().display()));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }

    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.status()
                && pred(&s)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; /plans: {:?}\n{}",
                self.status(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn plan(status: &Value, base: &str) -> Value {
        status["plans"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["plan"] == base))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// A gRPC client with `token` and, on a TLS scheduler, the CA (plus the client
    /// certificate when `cert` names one: "client" or "rogue").
    fn client(&self, token: Option<&str>, cert: Option<&str>) -> Client {
        // The lazy channel spawns its connection task on this runtime.
        let _runtime = self.rt.enter();
        let mut url = format!("http://127.0.0.1:{}", self.grpc);
        let mut endpoint;
        if let Some(pki) = &self.pki {
            url = format!("https://127.0.0.1:{}", self.grpc);
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).expect("ca")));
            let pair = match cert {
                Some("client") => Some((&pki.client_cert, &pki.client_key)),
                Some(_) => Some((&pki.rogue_cert, &pki.rogue_key)),
                None => None,
            };
            if let Some((c, k)) = pair {
                tls = tls.identity(Identity::from_pem(
                    std::fs::read(c).expect("cert"),
                    std::fs::read(k).expect("key"),
                ));
            }
            endpoint = Channel::from_shared(url).expect("url");
            transport_security::tls::install_crypto_provider();
            endpoint = endpoint.tls_config(tls).expect("tls");
        } else {
            endpoint = Channel::from_shared(url).expect("url");
        }
        let token = token.map(|t| BearerToken::new(t, "test").expect("token"));
        let channel = endpoint.timeout(Duration::from_secs(20)).connect_lazy();
        SchedulerClient::with_interceptor(channel, AttachToken::new(token.as_ref()))
    }

    fn lease(&self, c: &Client, worker: &str) -> pb::Lease {
        let resp = self
            .rt
            .block_on(c.clone().lease(pb::LeaseRequest {
                worker: worker.into(),
                capacity: 1,
                tool: "builder".into(),
                wait_ms: 1000,
            }))
            .unwrap_or_else(|s| panic!("lease: {s:?}\n{}", self.logs()));
        resp.into_inner()
            .leases
            .into_iter()
            .next()
            .expect("a plan to lease")
    }

    /// Writes `<tenant>/<ulid>/meta.json` in the blocks directory.
    fn put_block(&self, tenant: &str, org_id: &str, day: i32, ulid: &str) {
        let start = i64::from(day) * DAY_MS;
        let meta = tsdb_block::BlockMeta::new(ulid, org_id, start, start + DAY_MS);
        let d = self.dir.path().join("blocks").join(tenant).join(ulid);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("meta.json"), meta.to_go_json()).expect("meta");
    }

    fn start_builder(&mut self, name: &str, tls_client_cert: bool) -> u16 {
        let metrics = free_port();
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log");
        let mut cmd = Command::new(workspace_bin(
            "blocksconvert-builder",
            "blocksconvert-builder",
        ));
        cmd.args([
            "--scheduler",
            &format!("127.0.0.1:{}", self.grpc),
            "--name",
            name,
        ])
        .arg("--chunks")
        .arg(corpus_dir().join("chunks"))
        .arg("--output")
        .arg(self.dir.path().join("blocks"))
        .arg("--schema")
        .arg(corpus_dir().join("schema.yaml"))
        .arg("--work-dir")
        .arg(self.dir.path().join(format!("work-{name}")))
        .args(["--lease-wait", "1s", "--workers", "1"])
        .args(["--metrics.listen", &format!("127.0.0.1:{metrics}")])
        .env("BLOCKSCONVERT_AUTH_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
        if let Some(pki) = &self.pki {
            cmd.args(pki.client_flags(tls_client_cert));
        }
        self.builders.push(cmd.spawn().expect("spawn builder"));
        metrics
    }

    fn stop_builders(&mut self) {
        for mut c in std::mem::take(&mut self.builders) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        self.stop_builders();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => s.code(),
    }
}

/// Polls `/healthz` every 50 ms in the background and records the slowest answer
/// (a failed request counts as 1 hour).
struct HealthWatch {
    stop: Arc<AtomicBool>,
    slowest_ms: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthWatch {
    fn start(s: &Sched) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let slowest_ms = Arc::new(AtomicU64::new(0));
        let (agent, url) = (s.agent.clone(), s.url("/healthz"));
        let thread = {
            let (stop, slowest) = (Arc::clone(&stop), Arc::clone(&slowest_ms));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = http_call(&agent, "GET", &url, None).is_some_and(|(c, _)| c == 200);
                    let ms = if ok {
                        t.elapsed().as_millis() as u64
                    } else {
                        3_600_000
                    };
                    slowest.fetch_max(ms, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            stop,
            slowest_ms,
            thread: Some(thread),
        }
    }

    fn slowest(mut self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Duration::from_millis(self.slowest_ms.load(Ordering::Relaxed))
    }
}

#[test]
fn refused_completions_and_cancels_never_hang_the_scheduler() {
    let s = Sched::start(None, &["--plans-page-public"]);
    let health = HealthWatch::start(&s);
    let c = s.client(Some(TOKEN), None);

    // A Complete from a worker that does not hold the lease.
    let a = s.lease(&c, "holder");
    let base_a = a.plan.trim_end_matches(".plan.snappy").to_owned();
    let ulid = "01JD5ZX1Q6R3C6WVM6X2M4B3QK";
    s.put_block(&a.tenant, &a.tenant, a.day_index, ulid);
    let not_holder = s.rt.block_on(c.clone().complete(pb::CompleteRequest {
        worker: "intruder".into(),
        plan: a.plan.clone(),
        attempt: a.attempt,
        block_ulid: ulid.into(),
        ..Default::default()
    }));
    assert_eq!(code(not_holder), Code::PermissionDenied);

    // An operator cancels the running plan, then its holder completes.
    let (status, body) = s
        .call("POST", &format!("/plans/cancel?plan={base_a}"), Some(TOKEN))
        .expect("cancel");
    assert_eq!(status, 200, "{body}");
    let after_cancel = s.rt.block_on(c.clone().complete(pb::CompleteRequest {
        worker: "holder".into(),
        plan: a.plan.clone(),
        attempt: a.attempt,
        block_ulid: ulid.into(),
        lease_token: a.lease_token.clone(),
        ..Default::default()
    }));
    assert_eq!(code(after_cancel), Code::FailedPrecondition);

    // A completion retried after its answer was lost.
    let b = s.lease(&c, "holder");
    let ulid_b = "01JD5ZX1Q6R3C6WVM6X2M4B3QM";
    s.put_block(&b.tenant, &b.tenant, b.day_index, ulid_b);
    let req = pb::CompleteRequest {
        worker: "holder".into(),
        plan: b.plan.clone(),
        attempt: b.attempt,
        block_ulid: ulid_b.into(),
        lease_token: b.lease_token.clone(),
        ..Default::default()
    };
    for attempt in ["first", "retried"] {
        let r = s.rt.block_on(c.clone().complete(req.clone()));
        assert!(r.is_ok(), "{attempt} completion: {r:?}\n{}", s.logs());
    }
    let st = s.status().expect("status");
    let base_b = b.plan.trim_end_matches(".plan.snappy");
    assert_eq!(Sched::plan(&st, base_b)["block"], ulid_b, "{st}");
    assert_eq!(Sched::plan(&st, &base_a)["status"], "error", "{st}");

    let slowest = health.slowest();
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz answered in {slowest:?} at worst\n{}",
        s.logs()
    );
    // /plans is public here; the admin actions still need the token.
    assert_eq!(s.call("GET", "/plans", None).map(|r| r.0), Some(200));
    assert_eq!(
        s.call("POST", &format!("/plans/retry?plan={base_a}"), None)
            .map(|r| r.0),
        Some(401)
    );
    // SIGTERM is still honoured.
    let mut s = s;
    let mut child = s.child.take().expect("child");
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn every_call_needs_the_token_and_every_lease_its_secret() {
    let s = Sched::start(Some(false), &[]);
    // Without a token and with a wrong one, every RPC is refused.
    for token in [None, Some("wrong-token-0123456789abcdef")] {
        let c = s.client(token, None);
        let rt = &s.rt;
        let codes = [
            code(rt.block_on(c.clone().next_plan(pb::NextPlanRequest::default()))),
            code(rt.block_on(c.clone().lease(pb::LeaseRequest {
                worker: "w".into(),
                capacity: 1,
                ..Default::default()
            }))),
            code(rt.block_on(c.clone().heartbeat(pb::HeartbeatRequest::default()))),
            code(rt.block_on(c.clone().complete(pb::CompleteRequest::default()))),
            code(rt.block_on(c.clone().fail(pb::FailRequest::default()))),
            code(rt.block_on(c.clone().release(pb::ReleaseRequest::default()))),
        ];
        assert_eq!(codes, [Code::Unauthenticated; 6], "token {token:?}");
    }
    let c = s.client(Some(TOKEN), None);
    let a = s.lease(&c, "worker-a");
    let b = s.lease(&c, "worker-b");
    // B's secret, or none, does not open A's lease; nor do A's name and attempt.
    for secret in [b.lease_token.clone(), String::new()] {
        let hb = s.rt.block_on(c.clone().heartbeat(pb::HeartbeatRequest {
            worker: "worker-a".into(),
            leases: vec![pb::LeaseProgress {
                plan: a.plan.clone(),
                attempt: a.attempt,
                lease_token: secret.clone(),
                ..Default::default()
            }],
        }));
        assert_eq!(code(hb), Code::PermissionDenied);
        let ulid = "01JD5ZX1Q6R3C6WVM6X2M4B3QK";
        s.put_block(&a.tenant, &a.tenant, a.day_index, ulid);
        let done = s.rt.block_on(c.clone().complete(pb::CompleteRequest {
            worker: "worker-a".into(),
            plan: a.plan.clone(),
            attempt: a.attempt,
            block_ulid: ulid.into(),
            lease_token: secret.clone(),
            ..Default::default()
        }));
        assert_eq!(code(done), Code::PermissionDenied);
        let failed = s.rt.block_on(c.clone().fail(pb::FailRequest {
            worker: "worker-a".into(),
            plan: a.plan.clone(),
            attempt: a.attempt,
            retriable: false,
            error: "x".into(),
            lease_token: secret.clone(),
        }));
        assert_eq!(code(failed), Code::PermissionDenied);
        let released = s.rt.block_on(c.clone().release(pb::ReleaseRequest {
            worker: "worker-a".into(),
            plan: a.plan.clone(),
            attempt: a.attempt,
            reason: "x".into(),
            lease_token: secret,
        }));
        assert_eq!(code(released), Code::PermissionDenied);
    }
    // The holder itself cannot finish the plan with a block that is not there, not a
    // ULID, of another day or of another tenant.
    let complete = |ulid: &str| {
        s.rt.block_on(c.clone().complete(pb::CompleteRequest {
            worker: "worker-a".into(),
            plan: a.plan.clone(),
            attempt: a.attempt,
            block_ulid: ulid.into(),
            lease_token: a.lease_token.clone(),
            ..Default::default()
        }))
    };
    assert_eq!(
        code(complete("01JD5ZX1Q6R3C6WVM6X2M4B3Q0")),
        Code::InvalidArgument
    );
    assert_eq!(code(complete("../../etc")), Code::InvalidArgument);
    s.put_block(
        &a.tenant,
        &a.tenant,
        a.day_index + 1,
        "01JD5ZX1Q6R3C6WVM6X2M4B3Q1",
    );
    assert_eq!(
        code(complete("01JD5ZX1Q6R3C6WVM6X2M4B3Q1")),
        Code::InvalidArgument
    );
    s.put_block(
        &a.tenant,
        "someone-else",
        a.day_index,
        "01JD5ZX1Q6R3C6WVM6X2M4B3Q2",
    );
    assert_eq!(
        code(complete("01JD5ZX1Q6R3C6WVM6X2M4B3Q2")),
        Code::InvalidArgument
    );

    // After all that, A is still worker-a's, and its real block finishes it.
    let base_a = a.plan.trim_end_matches(".plan.snappy");
    let st = s.status().expect("status");
    let pa = Sched::plan(&st, base_a);
    assert_eq!(
        (pa["status"].as_str(), pa["worker"].as_str()),
        (Some("leased"), Some("worker-a")),
        "{pa}"
    );
    let good = "01JD5ZX1Q6R3C6WVM6X2M4B3Q3";
    s.put_block(&a.tenant, &a.tenant, a.day_index, good);
    complete(good).unwrap_or_else(|e| panic!("the holder's real block: {e:?}\n{}", s.logs()));
    let st = s.status().expect("status");
    assert_eq!(Sched::plan(&st, base_a)["block"], good, "{st}");

    // HTTP: probes and metrics open, /plans and the admin actions need the token.
    for path in ["/healthz", "/ready", "/metrics"] {
        assert_eq!(s.call("GET", path, None).map(|r| r.0), Some(200), "{path}");
    }
    assert_eq!(s.call("GET", "/plans", None).map(|r| r.0), Some(401));
    assert_eq!(
        s.call("GET", "/plans", Some("wrong-token-0123456789abcdef"))
            .map(|r| r.0),
        Some(401)
    );
    let base_b = b.plan.trim_end_matches(".plan.snappy");
    for action in ["cancel", "retry"] {
        let r = s.call("POST", &format!("/plans/{action}?plan={base_b}"), None);
        assert_eq!(r.map(|r| r.0), Some(401), "{action}");
    }
    let metrics = s.call("GET", "/metrics", None).expect("metrics").1;
    assert!(
        metrics.contains("cortex_blocksconvert_scheduler_auth_failures_total{api=\"grpc\"} 12"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cortex_blocksconvert_scheduler_completions_refused_total 3"),
        "{metrics}"
    );
    // Build info, process metrics, every error counter from the start, and RPC
    // latencies as histograms (they aggregate across replicas; summaries do not).
    for series in [
        "blocksconvert_build_info{component=\"scheduler\"",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "cortex_blocksconvert_scheduler_store_errors_total{op=\"complete\"} ",
        "cortex_blocksconvert_scheduler_rpc_duration_seconds_bucket{",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(series)),
            "{series} missing:\n{metrics}"
        );
    }
    // Nothing on the status page or in the log gives a secret away.
    let page = s
        .call("GET", "/plans?format=json", Some(TOKEN))
        .expect("page")
        .1;
    let log = std::fs::read_to_string(s.dir.path().join("scheduler.log")).unwrap_or_default();
    for secret in [TOKEN, a.lease_token.as_str(), b.lease_token.as_str()] {
        assert!(
            !page.contains(secret) && !log.contains(secret),
            "a secret leaked"
        );
    }
}

#[test]
fn mutual_tls_lets_only_certified_builders_lease() {
    let mut s = Sched::start(Some(true), &[]);
    // Clients without a certificate, or with one from another CA, get nowhere.
    for cert in [None, Some("rogue")] {
        let c = s.client(Some(TOKEN), cert);
        let r = s.rt.block_on(c.clone().lease(pb::LeaseRequest {
            worker: "w".into(),
            capacity: 1,
            tool: "builder".into(),
            wait_ms: 0,
        }));
        assert!(r.is_err(), "cert {cert:?}: {r:?}");
    }
    // A real builder without a client certificate cannot lease anything.
    let metrics = s.start_builder("uncertified", false);
    let deadline = Instant::now() + Duration::from_secs(120);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    loop {
        let text = http_call(
            &agent,
            "GET",
            &format!("http://127.0.0.1:{metrics}/metrics"),
            None,
        )
        .map(|r| r.1)
        .unwrap_or_default();
        let errors = text
            .lines()
            .find(|l| {
                l.starts_with(
                    "cortex_blocksconvert_builder_service_scheduler_errors_total{rpc=\"lease\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if errors >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the uncertified builder never failed to lease\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = s.status().expect("status");
    assert_eq!(st["counts"]["leased"], 0, "{st}");
    assert_eq!(st["counts"]["new"], 9, "{st}");
    s.stop_builders();

    // A certified builder converts everything, each day exactly as expected.
    s.start_builder("certified", true);
    let st = s.wait_for("every plan finished", 300, |st| {
        st["counts"]["finished"].as_u64() == Some(9)
    });
    for tenant in ["42", "acme", "team-a.prod"] {
        for day in [18584_i64, 18585, 18586] {
            let p = Sched::plan(&st, &format!("{tenant}/{day}"));
            let ulid = p["block"].as_str().expect("block");
            let got = read_block(&s.dir.path().join("blocks").join(tenant).join(ulid));
            assert_eq!(got, expected(tenant, day), "{tenant}/{day}");
        }
    }
}

/// A plan is never trusted over its key: `acme/18584.plan.snappy` holding tenant 42's
/// plan (header user "42") is refused by the builder before any block is written,
/// quarantined at once with the reason, and tenant 42's namespace gets nothing extra.
#[test]
fn a_plan_filed_under_another_tenant_builds_nothing() {
    let mut s = Sched::start(None, &[]);
    let plans = s.dir.path().join("plans");
    std::fs::copy(
        plans.join("42/18584.plan.snappy"),
        plans.join("acme/18584.plan.snappy"),
    )
    .expect("forge");
    s.start_builder("b0", false);
    let st = s.wait_for("8 finished and the forged plan quarantined", 300, |st| {
        st["counts"]["finished"].as_u64() == Some(8) && st["counts"]["error"].as_u64() == Some(1)
    });
    let forged = Sched::plan(&st, "acme/18584");
    let reason = forged["reason"].as_str().unwrap_or_default();
    assert!(
        forged["status"] == "error" && reason.contains("its header says tenant \"42\""),
        "{forged}"
    );
    assert_eq!(forged["attempts"], 1, "not retried: {forged}");
    let count = |tenant: &str| {
        std::fs::read_dir(s.dir.path().join("blocks").join(tenant))
            .map_or(0, |d| d.flatten().count())
    };
    assert_eq!((count("42"), count("acme")), (3, 2), "blocks per tenant");
}

/// `/plans` in a real headless browser: a quarantined plan shows a retry button; a
/// click asks for the token (the admin actions need it even on a public page), the
/// scheduler's answer shows on the page, and the plan leaves quarantine. Screenshots
/// before and after land in the test's output directory.
#[test]
fn a_click_on_retry_in_the_plans_page_requeues_the_plan() {
    let s = Sched::start(None, &["--plans-page-public"]);
    let c = s.client(Some(TOKEN), None);
    let a = s.lease(&c, "holder");
    let base = a.plan.trim_end_matches(".plan.snappy").to_owned();
    let (status, body) = s
        .call("POST", &format!("/plans/cancel?plan={base}"), Some(TOKEN))
        .expect("cancel");
    assert_eq!(status, 200, "{body}");
    s.wait_for("the cancelled plan to be quarantined", 60, |st| {
        Sched::plan(st, &base)["status"] == "error"
    });

    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plans-page");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("output dir");
    let page = blocksconvert_tests::browser_script(
        "plans_page.mjs",
        &[&s.url("/plans"), &base, TOKEN, out.to_str().expect("utf-8")],
    );
    let result: Value = serde_json::from_str(page.trim()).expect("script result");
    assert_eq!(result["buttonText"], "retry", "{result}");
    assert!(
        result["dialogs"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["type"] == "prompt")),
        "the token was asked for: {result}"
    );
    assert_eq!(result["answerClass"], "finished", "{result}");
    assert!(
        result["answer"]
            .as_str()
            .is_some_and(|a| a.contains(&format!("plan {} queued again", with_date(&base)))),
        "{result}"
    );
    s.wait_for("the retried plan to leave quarantine", 60, |st| {
        let p = Sched::plan(st, &base);
        p != Value::Null && p["status"] != "error"
    });
    for shot in ["plans-before.png", "plans-after.png"] {
        let bytes = std::fs::read(out.join(shot)).expect("screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is not a PNG");
    }
    eprintln!("screenshots in {}", out.display());
}
