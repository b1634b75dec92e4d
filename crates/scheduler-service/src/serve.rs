//! Runs a scheduler's servers: the gRPC service (TLS, optional mutual TLS, bearer
//! token on every call), the HTTP status/admin server and the background duties
//! (listings, lease expiry, gauges). `blocksconvert-scheduler` and `blocksconvert
//! convert` both start their scheduler through [`serve`], so the two can never drift.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use transport_security::{BearerToken, ServerTls};

use crate::grpc::SchedulerService;
use crate::http::{HttpAuth, MetricsRender};
use crate::metrics as m;
use crate::scheduler::Scheduler;

/// Credentials and encryption of the listeners.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// TLS for gRPC and HTTP.
    pub tls: Option<ServerTls>,
    /// Bearer token for gRPC and the admin endpoints.
    pub token: Option<BearerToken>,
    /// `/plans` readable without the token.
    pub plans_public: bool,
}

/// The HTTP side: its listener and how to render `/metrics`.
pub struct HttpListener {
    /// Bound listener.
    pub listener: TcpListener,
    /// Prometheus text of the process's metrics.
    pub metrics: MetricsRender,
}

/// Why the servers could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC TLS settings were refused.
    #[error("gRPC TLS: {0}")]
    GrpcTls(#[from] tonic::transport::Error),
    /// A listener could not be handed to the HTTPS server.
    #[error("HTTP listener: {0}")]
    Http(std::io::Error),
}

/// The running servers.
pub struct Servers {
    tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
}

impl Servers {
    /// Waits (up to `limit`) for every server to stop after shutdown was signalled.
    pub async fn stopped(self, limit: Duration) {
        let all = async {
            for (what, task) in self.tasks {
                if let Ok(Err(e)) = task.await {
                    tracing::warn!(server = what, error = %e, "stopped with an error");
                }
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("servers did not stop within {limit:?}");
        }
    }
}

/// Starts the background duties, the gRPC server on `grpc` and, when given, the HTTP
/// server; all stop when `shutdown` is signalled.
pub fn serve(
    scheduler: Arc<Scheduler>,
    grpc: TcpListener,
    http: Option<HttpListener>,
    security: Security,
    shutdown: CancellationToken,
) -> Result<Servers, ServeError> {
    let mut tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)> = Vec::new();
    tasks.push(("background", {
        let (s, sd) = (Arc::clone(&scheduler), shutdown.clone());
        tokio::spawn(async move {
            s.run_background(sd).await;
            Ok(())
        })
    }));

    let token = security.token.clone();
    let check_token = move |req: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
        match &token {
            Some(t) if !t.accepts_metadata(req.metadata()) => {
                ::metrics::counter!(m::AUTH_FAILURES, "api" => "grpc").increment(1);
                Err(tonic::Status::unauthenticated(
                    "missing or wrong bearer token (authorization: Bearer …)",
                ))
            }
            _ => Ok(req),
        }
    };
    let svc = blocksconvert_proto::scheduler_server::SchedulerServer::with_interceptor(
        SchedulerService(Arc::clone(&scheduler)),
        check_token,
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &security.tls {
        builder = builder.tls_config(tls.grpc.clone())?;
    }
    let sd = shutdown.clone();
    let router = builder.add_service(svc);
    tasks.push((
        "gRPC",
        tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(
                    // Without TCP_NODELAY an answer written while the previous one
                    // is unacknowledged waits for the peer's delayed ACK: RPCs then
                    // stall for milliseconds on an idle CPU.
                    tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
                    async move { sd.cancelled().await },
                )
                .await
                .map_err(|e| e.to_string())
        }),
    ));

    if let Some(HttpListener { listener, metrics }) = http {
        let auth = HttpAuth {
            token: security.token.clone(),
            plans_public: security.plans_public,
        };
        let app = crate::http::router(Arc::clone(&scheduler), metrics, auth);
        let sd = shutdown.clone();
        let task = match &security.tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { sd.cancelled().await })
                    .await
                    .map_err(|e| e.to_string())
            }),
            Some(tls) => {
                let std_listener = listener.into_std().map_err(ServeError::Http)?;
                let config =
                    axum_server::tls_rustls::RustlsConfig::from_config(Arc::clone(&tls.http));
                let server = axum_server::tls_rustls::from_tcp_rustls(std_listener, config)
                    .map_err(ServeError::Http)?;
                let handle = axum_server::Handle::new();
                let stopper = handle.clone();
                tokio::spawn(async move {
                    sd.cancelled().await;
                    stopper.graceful_shutdown(Some(Duration::from_secs(5)));
                });
                tokio::spawn(async move {
                    server
                        .handle(handle)
                        .serve(app.into_make_service())
                        .await
                        .map_err(|e| e.to_string())
                })
            }
        };
        tasks.push(("HTTP", task));
    }
    Ok(Servers { tasks })
}
