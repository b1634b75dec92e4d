//! Scheduler throughput: lease and complete `BENCH_PLANS` plans (default 100,000)
//! through the real gRPC API with 8 concurrent workers, over an in-memory object store
//! (protocol and registry cost) and a local directory (plus one file per marker).
//! Every lease writes two markers and every completion one plus two deletes, as in
//! production, and every completion reads its block's meta.json (from an in-memory
//! blocks store, written during setup). Prints plans per second; run with
//! `cargo bench --bench scheduler`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blocksconvert_proto as pb;
use index_scan::select::TenantFilter;
use scheduler_service::{QueueOrder, RegistryConfig, Scheduler, SchedulerConfig};
use storage::StoreLocation;

const WORKERS: usize = 8;

fn config() -> SchedulerConfig {
    SchedulerConfig {
        tool: "builder".into(),
        registry: RegistryConfig {
            order: QueueOrder::NewestFirst,
            fair: true,
            max_attempts: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(600),
            legacy_lease_ttl: Duration::from_secs(1800),
        },
        heartbeat: Duration::from_secs(60),
        scan_interval: Duration::from_secs(3600),
        max_wait: Duration::from_millis(10),
        tenants: TenantFilter::new(&[], None).expect("filter"),
        days: Default::default(),
        recheck_finished: false,
    }
}

/// The block ULID the bench's workers report for plan `tenant-<t>/<day>`.
fn block_of(tenant: usize, day: i32) -> String {
    ulid::Ulid::from_parts(u64::try_from(day).unwrap_or(0) + 1, tenant as u128).to_string()
}

async fn run(label: &str, plans: StoreLocation, n: usize) {
    let started = Instant::now();
    let blocks = StoreLocation::from_store(
        Arc::new(object_store::memory::InMemory::new()),
        "",
        "memory",
    );
    for i in 0..n {
        let (tenant, day) = (i % 100, 10_000 + (i / 100) as i32);
        let key = format!("tenant-{tenant}/{day}.plan.snappy");
        plans.put(&key, b"x".to_vec()).await.expect("put plan");
        let ulid = block_of(tenant, day);
        let start = i64::from(day) * 86_400_000;
        let meta = tsdb_block::BlockMeta::new(
            &ulid,
            &format!("tenant-{tenant}"),
            start,
            start + 86_400_000,
        );
        blocks
            .put(
                &format!("tenant-{tenant}/{ulid}/meta.json"),
                meta.to_go_json(),
            )
            .await
            .expect("put meta");
    }
    let setup = started.elapsed();
    let scheduler = Arc::new(Scheduler::new(
        config(),
        plans,
        "mem://plans".into(),
        blocks,
    ));
    let started = Instant::now();
    scheduler.sync_with_bucket().await.expect("scan");
    let scan = started.elapsed();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = tokio_util::sync::CancellationToken::new();
    let sd = stop.clone();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::scheduler_server::SchedulerServer::new(
                scheduler_service::grpc::SchedulerService(Arc::clone(&scheduler)),
            ))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move { sd.cancelled().await },
            ),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        tasks.push(tokio::spawn(async move {
            let mut client =
                pb::scheduler_client::SchedulerClient::connect(format!("http://{addr}"))
                    .await
                    .expect("connect");
            let worker = format!("w{w}");
            let mut done = 0usize;
            loop {
                let leases = client
                    .lease(pb::LeaseRequest {
                        worker: worker.clone(),
                        capacity: 16,
                        tool: "builder".into(),
                        wait_ms: 0,
                    })
                    .await
                    .expect("lease")
                    .into_inner()
                    .leases;
                if leases.is_empty() {
                    return done;
                }
                for l in leases {
                    let tenant: usize = l
                        .tenant
                        .trim_start_matches("tenant-")
                        .parse()
                        .expect("tenant number");
                    client
                        .complete(pb::CompleteRequest {
                            worker: worker.clone(),
                            plan: l.plan,
                            attempt: l.attempt,
                            block_ulid: block_of(tenant, l.day_index),
                            lease_token: l.lease_token,
                            stats: None,
                        })
                        .await
                        .expect("complete");
                    done += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    let took = started.elapsed();
    assert_eq!(total, n, "every plan leased and completed once");
    let finished = scheduler.with_registry(|r| r.counts()[4]);
    assert_eq!(finished as usize, n);
    stop.cancel();
    let _ = server.await;
    println!(
        "{label}: {n} plans (setup {setup:.1?}, first listing {scan:.2?}): leased + completed in {took:.2?} = {:.0} plans/s with {WORKERS} workers",
        n as f64 / took.as_secs_f64()
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_PLANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mem = StoreLocation::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            "",
            "memory",
        );
        run("in-memory store", mem, n).await;
        let dir = tempfile::tempdir().expect("dir");
        let local = StoreLocation::local(dir.path(), true).expect("local");
        run("local directory", local, n).await;
    });
}
