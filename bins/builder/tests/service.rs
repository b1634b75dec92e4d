//! The distributed system with real processes: one `blocksconvert-scheduler`, several
//! `blocksconvert-builder`s and a moto S3 server (behind a fault-injecting proxy)
//! holding the corpus's chunks, Cortex's plans and the output blocks. Every run must
//! end with every tenant-day Finished and exactly one block per tenant-day whose
//! samples equal `expected/`, whatever was killed or broken on the way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use blocksconvert_tests::proxy::{Fault, FaultProxy, Rule};
use blocksconvert_tests::{
    MotoServer, corpus_dir, download_block, expected, free_port, moto_options, read_block,
    upload_tree, wait_for_port,
};
use serde_json::Value;
use storage::StoreLocation;

/// The tests start several processes each: one at a time on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

const TENANTS: [&str; 3] = ["42", "acme", "team-a.prod"];
/// Bearer token of the cluster (scheduler and builders read it from the environment).
const TOKEN: &str = "service-test-token-0123456789";
const DAYS: [i64; 3] = [18584, 18585, 18586];

/// The scheduler binary of this checkout, built (or brought up to date) once per run:
/// cargo builds only this package's own binary for its tests.
fn scheduler_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let builder = PathBuf::from(env!("CARGO_BIN_EXE_blocksconvert-builder"));
            let profile_dir = builder.parent().expect("target dir");
            let target_dir = profile_dir.parent().expect("target root");
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "-p", "blocksconvert-scheduler", "--target-dir"])
                .arg(target_dir);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo build");
            assert!(status.success(), "building blocksconvert-scheduler failed");
            builder.with_file_name("blocksconvert-scheduler")
        })
        .clone()
}

struct Cluster {
    tmp: tempfile::TempDir,
    _moto: MotoServer,
    proxy: FaultProxy,
    rt: tokio::runtime::Runtime,
    plans: StoreLocation,
    blocks: StoreLocation,
    grpc: u16,
    http: u16,
    scheduler: Option<Child>,
    scheduler_args: Vec<String>,
    builders: BTreeMap<String, Child>,
}

impl Cluster {
    fn start() -> Self {
        let moto = MotoServer::start();
        for b in ["chunks", "plans", "blocks"] {
            moto.create_bucket(b);
        }
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let opts = moto_options(&moto);
        let open = |b: &str| StoreLocation::open(&format!("s3://{b}"), &opts, false).expect("open");
        let (chunks, plans, blocks) = (open("chunks"), open("plans"), open("blocks"));
        rt.block_on(async {
            upload_tree(&corpus_dir().join("chunks"), &chunks).await;
            upload_tree(&corpus_dir().join("cortex-output/plans"), &plans).await;
        });
        let proxy = FaultProxy::start(&moto.endpoint);
        let (grpc, http) = (free_port(), free_port());
        let mut scheduler_args: Vec<String> = [
            "--plans",
            "s3://plans",
            "--blocks",
            "s3://blocks",
            "--lease-ttl",
            "4s",
            "--heartbeat",
            "500ms",
            "--retry-backoff",
            "300ms",
            "--retry-backoff-max",
            "1s",
            "--max-attempts",
            "3",
            "--scan-interval",
            "2s",
            "--max-lease-wait",
            "1s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        scheduler_args.extend(["--grpc-listen".into(), format!("127.0.0.1:{grpc}")]);
        scheduler_args.extend(["--http-listen".into(), format!("127.0.0.1:{http}")]);
        let mut c = Self {
            tmp: tempfile::tempdir().expect("tmp"),
            _moto: moto,
            proxy,
            rt,
            plans,
            blocks,
            grpc,
            http,
            scheduler: None,
            scheduler_args,
            builders: BTreeMap::new(),
        };
        c.start_scheduler();
        c
    }

    fn s3_flags(&self) -> Vec<String> {
        let mut flags = blocksconvert_tests::s3_flags(&self.proxy.endpoint);
        flags.extend(["--storage.request-timeout".into(), "2s".into()]);
        flags
    }

    fn spawn(&self, bin: &Path, args: &[String], log: &str) -> Child {
        let log = std::fs::File::create(self.tmp.path().join(log)).expect("log");
        Command::new(bin)
            .args(args)
            .args(self.s3_flags())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("BLOCKSCONVERT_AUTH_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn")
    }

    fn start_scheduler(&mut self) {
        let n = std::fs::read_dir(self.tmp.path()).map_or(0, |d| d.count());
        let child = self.spawn(
            &scheduler_bin(),
            &self.scheduler_args.clone(),
            &format!("scheduler-{n}.log"),
        );
        self.scheduler = Some(child);
        wait_for_port(self.http, "blocksconvert-scheduler", 30);
    }

    fn start_builder(&mut self, name: &str, extra: &[&str]) {
        let mut args: Vec<String> = vec![
            "--scheduler".into(),
            format!("127.0.0.1:{}", self.grpc),
            "--name".into(),
            name.into(),
            "--chunks".into(),
            "s3://chunks".into(),
            "--output".into(),
            "s3://blocks".into(),
            "--schema".into(),
            corpus_dir().join("schema.yaml").display().to_string(),
            "--work-dir".into(),
            self.tmp
                .path()
                .join(format!("work-{name}"))
                .display()
                .to_string(),
            "--lease-wait".into(),
            "1s".into(),
            "--workers".into(),
            "1".into(),
            "--fetch-concurrency".into(),
            "4".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = self.spawn(
            Path::new(env!("CARGO_BIN_EXE_blocksconvert-builder")),
            &args,
            &format!("{name}.log"),
        );
        self.builders.insert(name.to_owned(), child);
    }

    fn signal(child: &Child, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(dir) = std::fs::read_dir(self.tmp.path()) {
            for e in dir.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(25).collect();
                    out.push_str(&format!("\n==== {} (tail)\n", p.display()));
                    for l in tail.into_iter().rev() {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    fn get(&self, path: &str) -> Option<String> {
        ureq::get(&format!("http://127.0.0.1:{}{path}", self.http))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()
    }

    fn status(&self) -> Option<Value> {
        serde_json::from_str(&self.get("/plans?format=json")?).ok()
    }

    fn plan<'a>(status: &'a Value, plan: &str) -> &'a Value {
        status["plans"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["plan"] == plan))
            .unwrap_or(&Value::Null)
    }

    /// Waits until `pred` holds on /plans; panics with the status and logs after `secs`.
    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.status()
                && pred(&s)
            {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; /plans: {}\n{}",
                    self.status().map(|s| s.to_string()).unwrap_or_default(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A plan held by `worker` that has started converting.
    fn wait_for_lease_in_progress(&self, worker: &str) -> String {
        let converting = |p: &Value| {
            p["status"] == "leased"
                && p["worker"] == worker
                && p["progress"]
                    .as_str()
                    .is_some_and(|x| x.starts_with("converting"))
        };
        let s = self.wait_for("a lease in progress", 60, |s| {
            s["plans"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(converting))
        });
        s["plans"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| converting(p)))
            .and_then(|p| p["plan"].as_str())
            .expect("plan")
            .to_owned()
    }

    fn wait_all_finished(&self) -> Value {
        self.wait_for("every corpus plan finished", 180, |s| {
            s["counts"]["finished"].as_u64() == Some(9) && s["counts"]["leased"].as_u64() == Some(0)
        })
    }

    /// Every tenant-day has exactly one block in the bucket, the one its finished
    /// marker names, and its samples equal `expected/`.
    fn verify_blocks(&self, status: &Value) {
        let listed: Vec<String> = self
            .rt
            .block_on(self.blocks.list(""))
            .expect("list blocks")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for tenant in TENANTS {
            let finished: BTreeSet<String> = DAYS
                .iter()
                .map(|day| {
                    let p = Self::plan(status, &format!("{tenant}/{day}"));
                    assert_eq!(p["status"], "finished", "{tenant}/{day}: {p}");
                    p["block"].as_str().expect("block").to_owned()
                })
                .collect();
            let in_bucket: BTreeSet<String> = listed
                .iter()
                .filter_map(|k| k.strip_prefix(&format!("{tenant}/")))
                .filter_map(|k| k.split('/').next())
                .map(str::to_owned)
                .collect();
            assert_eq!(
                in_bucket,
                finished,
                "{tenant}: blocks in the bucket vs finished markers\n{}",
                self.logs()
            );
            for day in DAYS {
                let p = Self::plan(status, &format!("{tenant}/{day}"));
                let ulid = p["block"].as_str().expect("block");
                let dir = tempfile::tempdir().expect("dir");
                self.rt
                    .block_on(download_block(&self.blocks, tenant, ulid, dir.path()));
                let got = read_block(&dir.path().join(ulid));
                let want = expected(tenant, day);
                assert_eq!(got.len(), want.len(), "{tenant}/{day}: series");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g, w, "{tenant}/{day}");
                }
            }
        }
    }

    fn markers(&self, base: &str, kind: &str) -> usize {
        let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
        let prefix = format!("{base}.{kind}.");
        self.rt
            .block_on(self.plans.list(dir))
            .expect("list plans")
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .count()
    }

    fn stop_all(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.builders) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut s) = self.scheduler.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn slow_chunks(ms: u64) -> Vec<Rule> {
    vec![Rule {
        method: Some("GET"),
        path_contains: "/chunks/".into(),
        header: None,
        every: 1,
        fault: Fault::Delay(Duration::from_millis(ms)),
    }]
}

fn for_each_plan(mut f: impl FnMut(&str)) {
    for tenant in TENANTS {
        for day in DAYS {
            f(&format!("{tenant}/{day}"));
        }
    }
}

#[test]
fn three_builders_convert_the_corpus() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start();
    for b in ["b0", "b1", "b2"] {
        c.start_builder(b, &[]);
    }
    let status = c.wait_all_finished();
    c.verify_blocks(&status);
    for_each_plan(|base| {
        assert_eq!(c.markers(base, "attempt"), 1, "{base}: leased once");
        assert_eq!(c.markers(base, "finished"), 1, "{base}");
        assert_eq!(
            c.markers(base, "inprogress") + c.markers(base, "starting"),
            0,
            "{base}: progress markers removed"
        );
    });
    let metrics = c.get("/metrics").expect("metrics");
    assert!(
        metrics.contains("cortex_blocksconvert_scheduler_plans{status=\"finished\"} 9"),
        "{metrics}\n/plans: {}\n{}",
        c.status().map(|s| s.to_string()).unwrap_or_default(),
        c.logs()
    );
    assert!(
        metrics.contains("cortex_blocksconvert_scheduler_rpc_duration_seconds"),
        "{metrics}"
    );
    // Cortex's own scheduler gauges, for dashboards built on Cortex's blocksconvert.
    for series in [
        "cortex_blocksconvert_scheduler_scanned_plans{status=\"Finished\"} 9",
        "cortex_blocksconvert_scheduler_scanned_plans{status=\"New\"} 0",
        "cortex_blocksconvert_scheduler_scanned_plans{status=\"InProgress\"} 0",
        "cortex_blocksconvert_scheduler_queued_plans 0",
        "cortex_blocksconvert_scheduler_oldest_queued_plan_seconds 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} missing:\n{metrics}"
        );
    }
    let html = c.get("/plans").expect("html");
    assert!(
        html.contains("Plans by status") && html.contains("team-a.prod"),
        "{html}"
    );
    assert_eq!(c.get("/ready").as_deref(), Some("ready\n"));
    // Builders drain on SIGTERM and exit 0.
    for child in c.builders.values() {
        Cluster::signal(child, "-TERM");
    }
    for (name, child) in std::mem::take(&mut c.builders) {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{name}: {:?}", out.status);
    }
}

#[test]
fn killed_builder_mid_plan_is_re_leased_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start();
    c.proxy.set_rules(slow_chunks(25));
    c.start_builder("victim", &[]);
    let plan = c.wait_for_lease_in_progress("victim");
    Cluster::signal(&c.builders["victim"], "-KILL");
    let killed_at = Instant::now();
    c.proxy.set_rules(Vec::new());
    c.start_builder("b1", &[]);
    c.start_builder("b2", &[]);
    // Re-leased promptly: after the 4 s TTL, not after an operator steps in.
    c.wait_for("the killed plan re-leased", 30, |s| {
        Cluster::plan(s, &plan)["attempts"].as_u64() == Some(2)
    });
    assert!(
        killed_at.elapsed() < Duration::from_secs(15),
        "re-lease took {:?}",
        killed_at.elapsed()
    );
    let status = c.wait_all_finished();
    c.verify_blocks(&status);
    assert_eq!(
        c.markers(&plan, "failed"),
        1,
        "{plan}: the expired attempt is recorded"
    );
    assert_eq!(c.markers(&plan, "attempt"), 2);
}

#[test]
fn killed_between_upload_and_completion_leaves_one_block() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start();
    // The report object is written after the block and before the completion: hold
    // it back so the builder sits between the two.
    c.proxy.set_rules(vec![Rule {
        method: Some("PUT"),
        path_contains: ".report.json".into(),
        header: None,
        every: 1,
        fault: Fault::Delay(Duration::from_secs(30)),
    }]);
    c.start_builder("victim", &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let uploaded = loop {
        let metas: Vec<String> =
            c.rt.block_on(c.blocks.list(""))
                .expect("list")
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| k.ends_with("/meta.json"))
                .collect();
        if !metas.is_empty() {
            break metas;
        }
        assert!(Instant::now() < deadline, "no block uploaded\n{}", c.logs());
        std::thread::sleep(Duration::from_millis(50));
    };
    Cluster::signal(&c.builders["victim"], "-KILL");
    let status = c.status().expect("status");
    assert_eq!(status["counts"]["finished"], 0, "killed before completing");
    c.proxy.set_rules(Vec::new());
    c.start_builder("b1", &[]);
    c.start_builder("b2", &[]);
    let status = c.wait_all_finished();
    // The orphan is gone: the retry removed it before uploading its own block (W7).
    c.verify_blocks(&status);
    let orphan = uploaded[0].split('/').nth(1).expect("ulid").to_owned();
    let finished: Vec<&str> = status["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .filter_map(|p| p["block"].as_str())
        .collect();
    assert!(
        !finished.contains(&orphan.as_str()),
        "the orphan {orphan} was not kept"
    );
}

#[test]
fn scheduler_restart_mid_run_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start();
    c.proxy.set_rules(slow_chunks(15));
    for b in ["b0", "b1", "b2"] {
        c.start_builder(b, &[]);
    }
    c.wait_for("leases converting", 60, |s| {
        s["plans"].as_array().is_some_and(|ps| {
            ps.iter()
                .filter(|p| {
                    p["progress"]
                        .as_str()
                        .is_some_and(|x| x.starts_with("converting"))
                })
                .count()
                >= 2
        })
    });
    let mut old = c.scheduler.take().expect("scheduler");
    old.kill().expect("kill scheduler");
    old.wait().expect("wait");
    std::thread::sleep(Duration::from_millis(500));
    c.start_scheduler();
    c.wait_for("the restarted scheduler to be ready", 30, |s| {
        s["ready"] == true
    });
    c.proxy.set_rules(Vec::new());
    let status = c.wait_all_finished();
    c.verify_blocks(&status);
    // Nothing was handed out twice: every plan was leased exactly once.
    for_each_plan(|base| {
        assert_eq!(
            c.markers(base, "attempt"),
            1,
            "{base} leased twice\n{}",
            c.logs()
        );
    });
}

#[test]
fn sigterm_builder_releases_its_lease_within_the_grace_period() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start();
    // Slow enough that no plan can finish inside the 1 s grace period (a plan has
    // hundreds of chunks, 4 fetched at a time): the release path is what is tested.
    c.proxy.set_rules(slow_chunks(200));
    c.start_builder("leaving", &["--grace-period", "1s"]);
    let plan = c.wait_for_lease_in_progress("leaving");
    let mut child = c.builders.remove("leaving").expect("child");
    Cluster::signal(&child, "-TERM");
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "builder did not stop\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    // Released, not failed: queued again at once with no failure counted.
    let s = c.status().expect("status");
    let p = Cluster::plan(&s, &plan);
    assert_eq!(p["status"], "new", "{p}");
    assert_eq!(p["failures"], 0, "{p}");
    c.proxy.set_rules(Vec::new());
    c.start_builder("b1", &[]);
    let status = c.wait_all_finished();
    c.verify_blocks(&status);
}

#[test]
fn store_faults_are_retried_and_a_broken_plan_is_quarantined() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start();
    // Two plans that cannot build: acme/18584, whose object the store fails to serve
    // (retriable: retried up to --max-attempts), and one that is not a plan (fatal).
    c.rt.block_on(async {
        c.plans
            .put("corrupt/18584.plan.snappy", b"not a plan".to_vec())
            .await
            .expect("put");
    });
    let rule = |method, path: &str, every, fault| Rule {
        method: Some(method),
        path_contains: path.into(),
        header: None,
        every,
        fault,
    };
    c.proxy.set_rules(vec![
        rule("GET", "/plans/acme/18584.plan", 1, Fault::Status(500)),
        rule("GET", "/chunks/", 7, Fault::Status(503)),
        rule("GET", "/chunks/", 53, Fault::Delay(Duration::from_secs(3))),
        rule("PUT", "/blocks/", 5, Fault::Status(500)),
        rule("PUT", "/plans/", 9, Fault::Status(503)),
    ]);
    for b in ["b0", "b1", "b2"] {
        c.start_builder(b, &[]);
    }
    let status = c.wait_for(
        "both broken plans quarantined and the rest finished",
        240,
        |s| s["counts"]["finished"].as_u64() == Some(8) && s["counts"]["error"].as_u64() == Some(2),
    );
    assert!(
        c.proxy.injected() > 50,
        "only {} faults injected",
        c.proxy.injected()
    );
    let broken = Cluster::plan(&status, "acme/18584");
    let reason = broken["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("gave up after 3 failed attempts"),
        "{broken}"
    );
    assert_eq!(broken["attempts"], 3, "{broken}");
    let corrupt = Cluster::plan(&status, "corrupt/18584");
    assert_eq!(corrupt["attempts"], 1, "fatal: not retried: {corrupt}");
    assert!(
        corrupt["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fatal")),
        "{corrupt}"
    );
    let html = c.get("/plans").expect("html");
    assert!(
        html.contains("gave up after 3 failed attempts"),
        "reason visible on /plans"
    );
    c.proxy.set_rules(Vec::new());

    // An operator retries the quarantined plan once the store is healthy (the admin
    // action needs the token): it builds, and every day is exact.
    let retry = format!("http://127.0.0.1:{}/plans/retry?plan=acme/18584", c.http);
    let anonymous = ureq::post(&retry).send_empty();
    assert!(
        matches!(anonymous, Err(ureq::Error::StatusCode(401))),
        "{anonymous:?}"
    );
    let resp = ureq::post(&retry)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send_empty();
    assert!(resp.is_ok(), "{resp:?}");
    let status = c.wait_for("the retried plan finished", 60, |s| {
        Cluster::plan(s, "acme/18584")["status"] == "finished"
    });
    c.verify_blocks(&status);
}

/// A caller with the cluster token but not the lease's secret (it read the worker
/// name and attempt off /plans) tries to finish, fail, release and adopt a plan a
/// real builder is converting: every call is refused, the lease stays the builder's,
/// and its block is the one that finishes the plan.
#[test]
fn a_caller_without_the_lease_secret_cannot_finish_or_steal_a_plan() {
    use blocksconvert_proto as pb;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start();
    c.proxy.set_rules(slow_chunks(40));
    c.start_builder("victim", &[]);
    let plan = c.wait_for_lease_in_progress("victim");
    let s = c.status().expect("status");
    let attempt = Cluster::plan(&s, &plan)["attempts"]
        .as_u64()
        .expect("attempt") as u32;
    let plan_key = format!("{plan}.plan.snappy");
    let token = transport_security::BearerToken::new(TOKEN, "test").expect("token");
    let client = {
        let _rt = c.rt.enter();
        let channel =
            tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", c.grpc))
                .expect("url")
                .timeout(Duration::from_secs(20))
                .connect_lazy();
        pb::scheduler_client::SchedulerClient::with_interceptor(
            channel,
            transport_security::AttachToken::new(Some(&token)),
        )
    };
    // Its own lease, whose secret it then tries on the victim's plan.
    let own =
        c.rt.block_on(client.clone().lease(pb::LeaseRequest {
            worker: "attacker".into(),
            capacity: 1,
            tool: "builder".into(),
            wait_ms: 1000,
        }))
        .expect("lease")
        .into_inner()
        .leases
        .remove(0);
    for secret in [String::new(), own.lease_token.clone()] {
        let refused = |r: Result<_, tonic::Status>, what: &str| match r {
            Ok(v) => panic!("{what} accepted: {v:?}\n{}", c.logs()),
            Err(s) => assert_eq!(s.code(), tonic::Code::PermissionDenied, "{what}: {s:?}"),
        };
        refused(
            c.rt.block_on(client.clone().complete(pb::CompleteRequest {
                worker: "victim".into(),
                plan: plan_key.clone(),
                attempt,
                block_ulid: "01JD5ZX1Q6R3C6WVM6X2M4B3QK".into(),
                lease_token: secret.clone(),
                ..Default::default()
            }))
            .map(|_| ()),
            "Complete with an invented block",
        );
        refused(
            c.rt.block_on(client.clone().heartbeat(pb::HeartbeatRequest {
                worker: "attacker".into(),
                leases: vec![pb::LeaseProgress {
                    plan: plan_key.clone(),
                    attempt,
                    lease_token: secret.clone(),
                    ..Default::default()
                }],
            }))
            .map(|_| ()),
            "Heartbeat adopting the lease",
        );
        refused(
            c.rt.block_on(client.clone().fail(pb::FailRequest {
                worker: "victim".into(),
                plan: plan_key.clone(),
                attempt,
                retriable: false,
                error: "sabotage".into(),
                lease_token: secret.clone(),
            }))
            .map(|_| ()),
            "Fail",
        );
        refused(
            c.rt.block_on(client.clone().release(pb::ReleaseRequest {
                worker: "victim".into(),
                plan: plan_key.clone(),
                attempt,
                reason: "sabotage".into(),
                lease_token: secret,
            }))
            .map(|_| ()),
            "Release",
        );
    }
    // The attacker's own lease goes back; the victim keeps converting its plan.
    c.rt.block_on(client.clone().release(pb::ReleaseRequest {
        worker: "attacker".into(),
        plan: own.plan.clone(),
        attempt: own.attempt,
        reason: "done".into(),
        lease_token: own.lease_token.clone(),
    }))
    .expect("release own lease");
    let s = c.status().expect("status");
    let p = Cluster::plan(&s, &plan);
    assert_eq!(
        (p["status"].as_str(), p["worker"].as_str()),
        (Some("leased"), Some("victim")),
        "{p}"
    );
    c.proxy.set_rules(Vec::new());
    c.start_builder("b1", &[]);
    let status = c.wait_all_finished();
    c.verify_blocks(&status);
    assert_eq!(
        c.markers(&plan, "attempt"),
        1,
        "{plan}: built by its first lease"
    );
}
