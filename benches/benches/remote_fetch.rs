//! One plan's chunks read from S3 and GCS servers behind a proxy that adds a fixed
//! latency to every chunk GET, built at several `--fetch-concurrency` settings,
//! against the same plan read from local disk. Prints chunks per second and the ratio
//! of each remote build's wall time to the local one, at each setting both without
//! added latency (the server's own ceiling) and with it, and the builder's own CPU
//! time (the proxy's threads left out) against the local build's, and the server's.
//!
//! Servers: `s3s` is s3s-fs (S3 over a directory, in Rust), the only one fast enough
//! to judge the latency hiding (not installed by the test tools:
//! `S3sFsServer::install_command` names the command); `gcs` is fake-gcs-server (Go)
//! and `s3` is moto (Python), both from the test tools. Outside CI (minutes):
//!
//! `cargo bench -p blocksconvert-benches --bench remote_fetch`
//! (env `SERIES` = 1000 series × 5760 samples × RF 3, `DELAY_MS` = 20,
//! `CONCURRENCY` = "8,32,128,512", `STORES` = "gcs,s3"; `STORES=s3s` for s3s-fs)

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use block_builder::{BuildConfig, BuildProgress, ChunkStores, Destinations, PlanRef, build_plan};
use blocksconvert_tests::proxy::{Fault, FaultProxy, PROXY_THREAD, Rule};
use blocksconvert_tests::{GcsEmulator, MotoServer, S3sFsServer, moto_options, s3_options};
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

/// CPU seconds (user + system) in a `/proc/.../stat` file: utime and stime are fields
/// 14 and 15 of the line, indexes 11 and 12 after the `)` that closes the command
/// name, in USER_HZ (100 on x86 and ARM Linux). A process's line counts its threads
/// that ended too.
fn cpu_seconds(stat: &Path) -> f64 {
    let line = std::fs::read_to_string(stat)
        .unwrap_or_else(|e| panic!("{}: {e} (this bench needs Linux /proc)", stat.display()));
    let fields: Vec<&str> = line
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{}: no CPU time field {i}", stat.display()))
    };
    (get(11) + get(12)) / 100.0
}

/// CPU seconds of this process so far less the fault proxy's threads: the builder's
/// own CPU, its S3/GCS client included.
fn builder_cpu_seconds() -> f64 {
    let mut proxy = 0.0;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == PROXY_THREAD {
            proxy += cpu_seconds(&task.path().join("stat"));
        }
    }
    cpu_seconds(Path::new("/proc/self/stat")) - proxy
}

/// Puts every chunk file of `store` (`keys`, relative to it) into `direct`, 32 at a
/// time; prints how long it took.
fn upload(
    rt: &tokio::runtime::Runtime,
    direct: &StoreLocation,
    store: &Path,
    keys: &[String],
    server: &str,
) {
    let started = Instant::now();
    rt.block_on(
        futures::stream::iter(keys)
            .map(|k| {
                let (direct, path) = (direct.clone(), store.join(k));
                async move {
                    let bytes = std::fs::read(&path).expect("chunk");
                    direct.put(k, bytes).await.expect("upload");
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>(),
    );
    eprintln!(
        "{} chunk objects uploaded to {server} in {:.1}s",
        keys.len(),
        started.elapsed().as_secs_f64()
    );
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
    let stores = std::env::var("STORES").unwrap_or_else(|_| "gcs,s3".into());
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
    let local_time = (0..2)
        .map(|_| rt.block_on(build(tmp.path(), &plan, local.clone(), 32)))
        .min_by_key(|t| t.wall)
        .expect("two local builds");
    println!(
        "| chunk store | --fetch-concurrency | wall | chunks/s | wall / local | builder CPU | CPU / local | server CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let row = |what: &str, fetch: usize, took: Took, server_cpu: Option<f64>| {
        let wall = took.wall.as_secs_f64();
        println!(
            "| {what} | {fetch} | {wall:.2} s | {:.0} | {:.1}× | {:.2} s | {:.2}× | {} |",
            objects as f64 / wall,
            wall / local_time.wall.as_secs_f64(),
            took.cpu,
            took.cpu / local_time.cpu,
            server_cpu.map_or("—".to_owned(), |c| format!("{c:.2} s")),
        );
    };
    row("local disk", 32, local_time, None);
    // At every setting: the server's own ceiling (no added latency), then the same
    // build with the latency added to each chunk GET; with the server's CPU time.
    let remote_rows = |server: &str, pid: u32, proxy: &FaultProxy, remote: StoreLocation| {
        let stat = std::path::PathBuf::from(format!("/proc/{pid}/stat"));
        let timed = |c: usize| {
            let before = cpu_seconds(&stat);
            let took = rt.block_on(build(tmp.path(), &plan, remote.clone(), c));
            (took, Some(cpu_seconds(&stat) - before))
        };
        let delayed = vec![Rule {
            method: Some("GET"),
            path_contains: "/chunks/".into(),
            header: None,
            every: 1,
            fault: Fault::Delay(Duration::from_millis(delay_ms)),
        }];
        for &c in &concurrency {
            proxy.set_rules(Vec::new());
            let (took, server_cpu) = timed(c);
            row(&format!("{server}, no added latency"), c, took, server_cpu);
            proxy.set_rules(delayed.clone());
            let (took, server_cpu) = timed(c);
            row(
                &format!("{server} + {delay_ms} ms per GET"),
                c,
                took,
                server_cpu,
            );
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
                remote_rows("fake-gcs-server", gcs.pid(), &proxy, remote);
            }
            "s3" => {
                let moto = MotoServer::start();
                moto.create_bucket("chunks");
                let direct =
                    StoreLocation::open("s3://chunks", &moto_options(&moto), false).expect("s3");
                upload(&rt, &direct, &store.join("chunks"), &keys, "moto");
                let proxy = FaultProxy::start(&moto.endpoint);
                let remote =
                    StoreLocation::open("s3://chunks", &s3_options(&proxy.endpoint), false)
                        .expect("s3");
                remote_rows("moto", moto.pid(), &proxy, remote);
            }
            "s3s" => {
                let root = tmp.path().join("s3s-root");
                std::fs::create_dir_all(root.join("chunks")).expect("bucket directory");
                let server = S3sFsServer::start(&root);
                let direct =
                    StoreLocation::open("s3://chunks", &s3_options(&server.endpoint), false)
                        .expect("s3s");
                upload(&rt, &direct, &store.join("chunks"), &keys, "s3s-fs");
                let proxy = FaultProxy::start(&server.endpoint);
                let remote =
                    StoreLocation::open("s3://chunks", &s3_options(&proxy.endpoint), false)
                        .expect("s3s");
                remote_rows("s3s-fs", server.pid(), &proxy, remote);
            }
            other => panic!("STORES: unknown server {other:?} (s3s, gcs, s3)"),
        }
    }
}
