//! One plan's chunks read from S3 and GCS servers behind a proxy that adds a fixed
//! latency to every chunk GET, built at several `--fetch-concurrency` settings,
//! against the same plan read from local disk. Prints chunks per second and the ratio
//! of each remote build's wall time to the local one, at each setting both without
//! added latency (the server's own ceiling) and with it, and the builder's own CPU
//! time (the proxy's threads left out) against the local build's. The servers: s3s-fs (S3 over a directory, in Rust: fast
//! enough to judge the latency hiding; `S3sFsServer::INSTALL` names its install
//! command), fake-gcs-server (Go) and moto (Python), the last two from the test
//! tools. Outside CI (a few minutes):
//!
//! `cargo bench -p blocksconvert-benches --bench remote_fetch`
//! (env `SERIES` = 1000 series × 5760 samples × RF 3, `DELAY_MS` = 20,
//! `CONCURRENCY` = "8,32,128,512", `STORES` = "s3s,gcs,s3")

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use block_builder::{BuildConfig, BuildProgress, ChunkStores, Destinations, PlanRef, build_plan};
use blocksconvert_tests::proxy::{Fault, FaultProxy, PROXY_THREAD, Rule};
use blocksconvert_tests::{GcsEmulator, MotoServer, S3sFsServer, moto_options};
use futures::StreamExt;
use storage::StoreLocation;
use synthetic_store::{GenerateConfig, generate};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every file below `dir`, relative to it.
fn files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir.join(rel))
        .expect("read dir")
        .flatten()
    {
        let name = format!("{rel}{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            files(dir, &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

/// CPU seconds (user + system) of this process so far, threads that ended included,
/// less the fault proxy's threads: the builder's own CPU, its S3/GCS client included.
fn builder_cpu_seconds() -> f64 {
    // Fields 14 and 15 (utime, stime) after the command name, in USER_HZ (100 on Linux).
    let ticks = |stat: &str| -> f64 {
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let get = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (get(11) + get(12)) / 100.0
    };
    let total = ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    let mut proxy = 0.0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == PROXY_THREAD {
            proxy += ticks(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        }
    }
    total - proxy
}

/// One build's wall time and the builder's CPU time.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    cpu: f64,
}

/// Builds the plan from `chunks` into a fresh output.
async fn build(tmp: &Path, plan: &PlanRef, chunks: StoreLocation, fetch: usize) -> Took {
    let out = tmp.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let blocks = StoreLocation::local(&out.join("blocks"), true).expect("blocks");
    let dest = Destinations {
        blocks: blocks.clone(),
        markers: StoreLocation::local(&out.join("markers"), true).expect("markers"),
        base: None,
        expect: None,
        existing: Default::default(),
    };
    let cfg = BuildConfig {
        work_dir: out.join("work"),
        fetch_concurrency: fetch,
        ..BuildConfig::default()
    };
    let stores = ChunkStores::new(chunks, None);
    let cpu = builder_cpu_seconds();
    let started = Instant::now();
    let o = build_plan(
        plan,
        &stores,
        &dest,
        &cfg,
        &Arc::new(BuildProgress::default()),
    )
    .await
    .expect("build");
    let took = Took {
        wall: started.elapsed(),
        cpu: builder_cpu_seconds() - cpu,
    };
    assert_eq!(
        o.report.bad_chunk_counts.values().sum::<u64>(),
        0,
        "bad chunks"
    );
    took
}

fn main() {
    let series: usize = env_or("SERIES", 1000);
    let delay_ms: u64 = env_or("DELAY_MS", 20);
    let concurrency: Vec<usize> = std::env::var("CONCURRENCY")
        .unwrap_or_else(|_| "8,32,128,512".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let stores = std::env::var("STORES").unwrap_or_else(|_| "s3s,gcs,s3".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tmp");
    let store = tmp.path().join("store");
    let summary = generate(
        &GenerateConfig {
            out: store.clone(),
            series,
            ..GenerateConfig::default()
        },
        |_| {},
    )
    .expect("generate");
    let objects = summary.chunk_objects;
    let plan_path = {
        let mut plans = Vec::new();
        files(&store.join("plans"), "", &mut plans);
        store.join("plans").join(&plans[0])
    };
    let plan = PlanRef::open(&plan_path.display().to_string(), &Default::default()).expect("plan");

    let mut keys = Vec::new();
    files(&store.join("chunks"), "", &mut keys);
    let local = StoreLocation::local(&store.join("chunks"), false).expect("local");
    // Twice, keeping the faster: the first build can meet the generator's writeback.
    let local_time = [0, 1]
        .map(|_| rt.block_on(build(tmp.path(), &plan, local.clone(), 32)))
        .into_iter()
        .min_by(|a, b| a.wall.cmp(&b.wall))
        .expect("two local builds");
    println!(
        "| chunk store | --fetch-concurrency | wall | chunks/s | wall / local | builder CPU | CPU / local |"
    );
    println!("|---|---|---|---|---|---|---|");
    let row = |what: &str, fetch: usize, took: Took| {
        let wall = took.wall.as_secs_f64();
        println!(
            "| {what} | {fetch} | {wall:.2} s | {:.0} | {:.1}× | {:.2} s | {:.2}× |",
            objects as f64 / wall,
            wall / local_time.wall.as_secs_f64(),
            took.cpu,
            took.cpu / local_time.cpu,
        );
    };
    row("local disk", 32, local_time);
    // At every setting: the server's own ceiling (no added latency), then the same
    // build with the latency added to each chunk GET.
    let remote_rows = |server: &str, proxy: &FaultProxy, remote: StoreLocation| {
        let delayed = vec![Rule {
            method: Some("GET"),
            path_contains: "/chunks/".into(),
            header: None,
            every: 1,
            fault: Fault::Delay(Duration::from_millis(delay_ms)),
        }];
        for &c in &concurrency {
            proxy.set_rules(Vec::new());
            let took = rt.block_on(build(tmp.path(), &plan, remote.clone(), c));
            row(&format!("{server}, no added latency"), c, took);
            proxy.set_rules(delayed.clone());
            let took = rt.block_on(build(tmp.path(), &plan, remote.clone(), c));
            row(&format!("{server} + {delay_ms} ms per GET"), c, took);
        }
    };
    for server in stores.split(',').map(str::trim) {
        match server {
            "gcs" => {
                let gcs = GcsEmulator::start();
                gcs.create_bucket("chunks");
                let started = Instant::now();
                gcs.upload_tree("chunks", &store.join("chunks"));
                eprintln!(
                    "{objects} chunk objects uploaded to fake-gcs-server in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                let proxy = FaultProxy::start_rewriting_host(&gcs.endpoint);
                let opts = storage::StorageOptions {
                    gcs_endpoint: Some(proxy.endpoint.clone()),
                    ..Default::default()
                };
                let remote = StoreLocation::open("gs://chunks", &opts, false).expect("gcs");
                remote_rows("fake-gcs-server", &proxy, remote);
            }
            "s3" => {
                let moto = MotoServer::start();
                moto.create_bucket("chunks");
                let direct =
                    StoreLocation::open("s3://chunks", &moto_options(&moto), false).expect("s3");
                let started = Instant::now();
                rt.block_on(
                    futures::stream::iter(keys.iter())
                        .map(|k| {
                            let (direct, path) = (direct.clone(), store.join("chunks").join(k));
                            async move {
                                let bytes = std::fs::read(&path).expect("chunk");
                                direct.put(k, bytes).await.expect("upload");
                            }
                        })
                        .buffer_unordered(32)
                        .collect::<Vec<_>>(),
                );
                eprintln!(
                    "{objects} chunk objects ({:.0} MB) uploaded to moto in {:.1}s",
                    summary.chunk_bytes as f64 / 1e6,
                    started.elapsed().as_secs_f64()
                );
                let proxy = FaultProxy::start(&moto.endpoint);
                let opts = storage::StorageOptions {
                    s3_endpoint: Some(proxy.endpoint.clone()),
                    ..moto_options(&moto)
                };
                let remote = StoreLocation::open("s3://chunks", &opts, false).expect("s3");
                remote_rows("moto", &proxy, remote);
            }
            "s3s" => {
                // s3s-fs serves bucket `chunks` from `root/chunks`: the chunk files are
                // linked in, not uploaded.
                let root = tmp.path().join("s3s-root");
                let started = Instant::now();
                for k in &keys {
                    let to = root.join("chunks").join(k);
                    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                    std::fs::hard_link(store.join("chunks").join(k), &to).expect("link");
                }
                eprintln!(
                    "{objects} chunk objects linked into s3s-fs's root in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                let server = S3sFsServer::start(&root);
                let proxy = FaultProxy::start(&server.endpoint);
                let opts = storage::StorageOptions {
                    s3_endpoint: Some(proxy.endpoint.clone()),
                    s3_region: Some("us-east-1".into()),
                    s3_access_key_id: Some("test".into()),
                    s3_secret_access_key: Some("test".into()),
                    s3_insecure: true,
                    ..Default::default()
                };
                let remote = StoreLocation::open("s3://chunks", &opts, false).expect("s3s");
                remote_rows("s3s-fs", &proxy, remote);
            }
            other => panic!("STORES: unknown server {other:?} (s3s, gcs, s3)"),
        }
    }
}
