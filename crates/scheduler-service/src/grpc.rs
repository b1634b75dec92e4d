//! The gRPC face of the [`Scheduler`]: request validation, latency metrics, and error
//! codes through [`SchedulerError`]'s single mapping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blocksconvert_proto as pb;
use tonic::{Request, Response, Status};

use crate::error::SchedulerError;
use crate::metrics as m;
use crate::registry::WorkProgress;
use crate::scheduler::{CompletionStats, HeartbeatItem, LeaseRef, Scheduler};

/// tonic service over a shared scheduler.
#[derive(Clone)]
pub struct SchedulerService(pub Arc<Scheduler>);

fn observe<T>(
    method: &'static str,
    started: Instant,
    r: Result<T, SchedulerError>,
) -> Result<Response<T>, Status> {
    let code = match &r {
        Ok(_) => "OK".to_owned(),
        Err(e) => format!("{:?}", e.grpc_code()),
    };
    ::metrics::histogram!(m::RPC_SECONDS, "method" => method, "code" => code)
        .record(started.elapsed().as_secs_f64());
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl pb::scheduler_server::Scheduler for SchedulerService {
    async fn next_plan(
        &self,
        req: Request<pb::NextPlanRequest>,
    ) -> Result<Response<pb::NextPlanResponse>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let out = self.0.next_plan(&r.name, &r.tool).await;
        // Cortex workers know no error codes: anything but a plan is "nothing to do".
        let out = match out {
            Ok(Some((plan_file, progress_file))) => Ok(pb::NextPlanResponse {
                plan_file,
                progress_file,
            }),
            Ok(None) => Ok(pb::NextPlanResponse::default()),
            Err(e) => {
                tracing::warn!(worker = %r.name, error = %e, "NextPlan refused");
                Ok(pb::NextPlanResponse::default())
            }
        };
        observe("NextPlan", started, out)
    }

    async fn lease(
        &self,
        req: Request<pb::LeaseRequest>,
    ) -> Result<Response<pb::LeaseResponse>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let cfg = self.0.config();
        let out = self
            .0
            .lease(
                &r.worker,
                r.capacity,
                &r.tool,
                Duration::from_millis(u64::from(r.wait_ms)),
            )
            .await
            .map(|leases| pb::LeaseResponse {
                leases: leases
                    .into_iter()
                    .map(|l| pb::Lease {
                        plan: l.plan,
                        plan_url: l.plan_url,
                        attempt: l.attempt,
                        ttl_ms: cfg.registry.lease_ttl.as_millis() as u64,
                        heartbeat_ms: cfg.heartbeat.as_millis() as u64,
                        tenant: l.tenant,
                        day_index: l.day,
                        lease_token: l.token.expose().to_owned(),
                    })
                    .collect(),
            });
        observe("Lease", started, out)
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let items = r
            .leases
            .into_iter()
            .map(|l| HeartbeatItem {
                plan: l.plan,
                attempt: l.attempt,
                token: l.lease_token,
                progress: WorkProgress {
                    phase: l.phase,
                    series_done: l.series_done,
                    series_total: l.series_total,
                },
            })
            .collect();
        let out = self
            .0
            .heartbeat(&r.worker, items)
            .await
            .map(|lost| pb::HeartbeatResponse {
                lost: lost
                    .into_iter()
                    .map(|(plan, attempt, reason)| pb::LostLease {
                        plan,
                        attempt,
                        reason,
                    })
                    .collect(),
            });
        observe("Heartbeat", started, out)
    }

    async fn complete(
        &self,
        req: Request<pb::CompleteRequest>,
    ) -> Result<Response<pb::CompleteResponse>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let s = r.stats.unwrap_or_default();
        let stats = CompletionStats {
            series: s.series,
            samples: s.samples,
            chunks: s.chunks,
            bad_chunks: s.bad_chunks,
            block_bytes: s.block_bytes,
            duration_ms: s.duration_ms,
            status: s.status,
        };
        let out = self
            .0
            .complete(
                &LeaseRef {
                    worker: &r.worker,
                    plan: &r.plan,
                    attempt: r.attempt,
                    token: &r.lease_token,
                },
                &r.block_ulid,
                &stats,
            )
            .await
            .map(|()| pb::CompleteResponse {});
        observe("Complete", started, out)
    }

    async fn fail(
        &self,
        req: Request<pb::FailRequest>,
    ) -> Result<Response<pb::FailResponse>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let out = self
            .0
            .fail(
                &LeaseRef {
                    worker: &r.worker,
                    plan: &r.plan,
                    attempt: r.attempt,
                    token: &r.lease_token,
                },
                r.retriable,
                &r.error,
            )
            .await
            .map(|(quarantined, failures)| pb::FailResponse {
                quarantined,
                failures,
            });
        observe("Fail", started, out)
    }

    async fn release(
        &self,
        req: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let out = self
            .0
            .release(
                &LeaseRef {
                    worker: &r.worker,
                    plan: &r.plan,
                    attempt: r.attempt,
                    token: &r.lease_token,
                },
                &r.reason,
            )
            .await
            .map(|()| pb::ReleaseResponse {});
        observe("Release", started, out)
    }
}
