//! The scheduler's HTTP server: `/plans` (HTML, or JSON with `?format=json`), the admin
//! actions `POST /plans/retry?plan=…` and `POST /plans/cancel?plan=…`, `/metrics`,
//! `/ready` and `/healthz`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::scheduler::Scheduler;

/// Renders the process's metrics in Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct HttpState {
    scheduler: Arc<Scheduler>,
    metrics: MetricsRender,
}

/// The router.
pub fn router(scheduler: Arc<Scheduler>, metrics: MetricsRender) -> Router {
    Router::new()
        .route("/plans", get(plans))
        .route("/", get(plans))
        .route("/plans/retry", post(retry))
        .route("/plans/cancel", post(cancel))
        .route("/metrics", get(metrics_page))
        .route("/ready", get(ready))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(HttpState { scheduler, metrics })
}

async fn plans(State(s): State<HttpState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let snap = s.scheduler.snapshot();
    if q.get("format").is_some_and(|f| f == "json") {
        return axum::Json(snap).into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::status::html(&snap),
    )
        .into_response()
}

async fn admin(s: &HttpState, q: &HashMap<String, String>, cancel: bool) -> Response {
    let Some(plan) = q.get("plan") else {
        return (StatusCode::BAD_REQUEST, "missing ?plan=<tenant>/<day>\n").into_response();
    };
    let r = if cancel {
        s.scheduler.cancel(plan).await
    } else {
        s.scheduler.retry(plan).await
    };
    match r {
        Ok(msg) => (StatusCode::OK, format!("{msg}\n")).into_response(),
        Err(e) => (
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("{e}\n"),
        )
            .into_response(),
    }
}

async fn retry(State(s): State<HttpState>, Query(q): Query<HashMap<String, String>>) -> Response {
    admin(&s, &q, false).await
}

async fn cancel(State(s): State<HttpState>, Query(q): Query<HashMap<String, String>>) -> Response {
    admin(&s, &q, true).await
}

async fn metrics_page(State(s): State<HttpState>) -> Response {
    // Gauges current at scrape time, not up to a background tick old.
    s.scheduler.with_registry(crate::metrics::update_gauges);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (s.metrics)(),
    )
        .into_response()
}

async fn ready(State(s): State<HttpState>) -> Response {
    if s.scheduler.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "reading the bucket\n").into_response()
    }
}
