//! The scheduler's HTTP server: `/plans` (HTML, or JSON with `?format=json`), the admin
//! actions `POST /plans/retry?plan=…` (or `?plan=all`, `?tenant=…` for every quarantined
//! plan, or a tenant's) and `POST /plans/cancel?plan=…`, `/metrics`,
//! `/ready` and `/healthz`. With a bearer token configured, the admin actions (and
//! `/plans` unless it is made public) answer 401 without it; the probes and
//! `/metrics` stay open.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use cortex_index::tenant::with_date;
use transport_security::BearerToken;

use crate::metrics as m;
use crate::scheduler::Scheduler;

/// Renders the process's metrics in Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// Who may use the HTTP endpoints.
#[derive(Clone, Debug, Default)]
pub struct HttpAuth {
    /// Required on admin actions (and `/plans` unless `plans_public`).
    pub token: Option<BearerToken>,
    /// `/plans` readable without the token (it shows tenants, days, worker names).
    pub plans_public: bool,
}

#[derive(Clone)]
struct HttpState {
    scheduler: Arc<Scheduler>,
    metrics: MetricsRender,
    auth: HttpAuth,
}

impl HttpState {
    /// A 401 answer unless the request carries the token (or none is configured).
    fn denied(&self, headers: &HeaderMap, public: bool) -> Option<Response> {
        let Some(token) = &self.auth.token else {
            return None;
        };
        if public
            || token.accepts(
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
            )
        {
            return None;
        }
        ::metrics::counter!(m::AUTH_FAILURES, "api" => "http").increment(1);
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "this endpoint needs the scheduler's bearer token (Authorization: Bearer …)\n",
            )
                .into_response(),
        )
    }
}

/// The router.
pub fn router(scheduler: Arc<Scheduler>, metrics: MetricsRender, auth: HttpAuth) -> Router {
    Router::new()
        .route("/plans", get(plans))
        .route("/", get(plans))
        .route("/plans/retry", post(retry))
        .route("/plans/cancel", post(cancel))
        .route("/metrics", get(metrics_page))
        .route("/ready", get(ready))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(HttpState {
            scheduler,
            metrics,
            auth,
        })
}

async fn plans(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(denied) = s.denied(&headers, s.auth.plans_public) {
        return denied;
    }
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

async fn admin(
    s: &HttpState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    cancel: bool,
) -> Response {
    if let Some(denied) = s.denied(headers, false) {
        return denied;
    }
    // Bulk retries: every quarantined plan, or one tenant's (never a bulk cancel).
    let bulk = match (cancel, q.get("plan").map(String::as_str), q.get("tenant")) {
        (false, Some("all"), None) => Some(None),
        (false, None, Some(tenant)) => Some(Some(tenant.as_str())),
        _ => None,
    };
    let r = if let Some(tenant) = bulk {
        s.scheduler.retry_failed(tenant).await.map(|plans| {
            if plans.is_empty() {
                "no quarantined plans to retry".to_owned()
            } else {
                let named: Vec<String> = plans.iter().map(|p| with_date(p)).collect();
                format!("{} plans queued again: {}", plans.len(), named.join(", "))
            }
        })
    } else {
        let Some(plan) = q.get("plan") else {
            let usage = if cancel {
                "missing ?plan=<tenant>/<day>\n"
            } else {
                "missing ?plan=<tenant>/<day>, ?plan=all or ?tenant=<tenant>\n"
            };
            return (StatusCode::BAD_REQUEST, usage).into_response();
        };
        if cancel {
            s.scheduler.cancel(plan).await
        } else {
            s.scheduler.retry(plan).await
        }
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

async fn retry(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    admin(&s, &headers, &q, false).await
}

async fn cancel(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    admin(&s, &headers, &q, true).await
}

async fn metrics_page(State(s): State<HttpState>) -> Response {
    // Gauges current at scrape time, not up to a background tick old.
    s.scheduler.publish_gauges();
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
