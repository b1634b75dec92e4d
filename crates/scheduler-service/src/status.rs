//! What `/plans` shows: a snapshot of the registry as JSON and as one HTML page an
//! operator reads at a glance.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::registry::{Millis, Registry, STATUS_NAMES, Status};

/// One plan's line.
#[derive(Debug, Serialize)]
pub struct PlanLine {
    /// `<tenant>/<day>`.
    pub plan: String,
    /// Tenant.
    pub tenant: String,
    /// Day index.
    pub day: Option<i32>,
    /// Status name.
    pub status: &'static str,
    /// Attempts started.
    pub attempts: u32,
    /// Failures that count towards quarantine.
    pub failures: u32,
    /// Worker holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Lease age in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_age_s: Option<f64>,
    /// Seconds since the last heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent_s: Option<f64>,
    /// Build phase and series progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Block ULID of a finished plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
    /// Error or invalid reason; last failure of a waiting plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds until a waiting plan is queued again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_s: Option<f64>,
}

/// Per-tenant progress.
#[derive(Debug, Default, Serialize)]
pub struct TenantLine {
    /// Plans.
    pub total: u64,
    /// Finished plans.
    pub finished: u64,
    /// Leased now.
    pub leased: u64,
    /// Queued or waiting.
    pub pending: u64,
    /// Quarantined or invalid.
    pub failed: u64,
}

/// The whole status.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// First listing done.
    pub ready: bool,
    /// Tool served.
    pub tool: String,
    /// Plans location.
    pub plans_location: String,
    /// Plans per status.
    pub counts: BTreeMap<&'static str, u64>,
    /// Queue length.
    pub queue_length: usize,
    /// Oldest and newest queued day.
    pub queue_days: Option<(i32, i32)>,
    /// Next plans to be handed out.
    pub queue_head: Vec<String>,
    /// Per tenant.
    pub tenants: BTreeMap<String, TenantLine>,
    /// Every plan, sorted by tenant then day.
    pub plans: Vec<PlanLine>,
}

/// What the status page needs from the registry, copied under its lock; sorting and
/// per-tenant totals happen after the lock is released ([`RegistryCopy::into_snapshot`]).
#[derive(Debug)]
pub struct RegistryCopy {
    plans: Vec<PlanLine>,
    counts: BTreeMap<&'static str, u64>,
    queue_length: usize,
    queue_days: Option<(i32, i32)>,
    queue_head: Vec<String>,
}

/// Copies one line per plan and the queue's head: the only work done under the lock.
pub fn copy(reg: &Registry, now: Millis) -> RegistryCopy {
    let secs = |ms: Millis| (ms.max(0) as f64 / 100.0).round() / 10.0;
    let plans: Vec<PlanLine> = reg
        .plans()
        .map(|r| {
            let mut line = PlanLine {
                plan: r.base.clone(),
                tenant: r.tenant.clone(),
                day: r.day,
                status: r.status.name(),
                attempts: r.last_attempt,
                failures: r.counted_failures(),
                worker: None,
                lease_age_s: None,
                silent_s: None,
                progress: None,
                block: None,
                reason: None,
                retry_in_s: None,
            };
            match &r.status {
                Status::Leased(l) => {
                    line.worker = Some(l.worker.clone());
                    line.lease_age_s = Some(secs(now - l.granted));
                    line.silent_s = Some(secs(now - l.last_heartbeat));
                    if !l.progress.phase.is_empty() {
                        line.progress = Some(format!(
                            "{} {}/{} series",
                            l.progress.phase, l.progress.series_done, l.progress.series_total
                        ));
                    }
                }
                Status::Finished { id } => line.block = Some(id.clone()),
                Status::Error { reason } | Status::Invalid { reason } => {
                    line.reason = Some(reason.clone());
                }
                Status::Waiting { until } => {
                    line.retry_in_s = Some(secs(until - now));
                    line.reason = r.failures.last().map(|f| f.error.clone());
                }
                Status::New | Status::Starting { .. } => {}
            }
            line
        })
        .collect();
    RegistryCopy {
        plans,
        counts: STATUS_NAMES.iter().copied().zip(reg.counts()).collect(),
        queue_length: reg.queue().len(),
        queue_days: reg.queue().day_range(),
        queue_head: reg.queue().peek(20),
    }
}

impl RegistryCopy {
    /// Sorts the plans and totals them per tenant.
    pub fn into_snapshot(self, ready: bool, tool: &str, location: &str) -> Snapshot {
        let RegistryCopy {
            mut plans,
            counts,
            queue_length,
            queue_days,
            queue_head,
        } = self;
        plans.sort_by(|a, b| (&a.tenant, a.day, &a.plan).cmp(&(&b.tenant, b.day, &b.plan)));
        let mut tenants: BTreeMap<String, TenantLine> = BTreeMap::new();
        for p in &plans {
            let t = tenants.entry(p.tenant.clone()).or_default();
            t.total += 1;
            match p.status {
                "finished" => t.finished += 1,
                "leased" | "starting" => t.leased += 1,
                "new" | "waiting" => t.pending += 1,
                _ => t.failed += 1,
            }
        }
        Snapshot {
            ready,
            tool: tool.to_owned(),
            plans_location: location.to_owned(),
            counts,
            queue_length,
            queue_days,
            queue_head,
            tenants,
            plans,
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The status page.
pub fn html(s: &Snapshot) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=10>\
         <title>blocksconvert scheduler</title><style>body{{font-family:sans-serif;margin:1.5em}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}\
         .error,.invalid{{color:#b00}}.finished{{color:#070}}pre{{margin:0;white-space:pre-wrap}}</style></head><body>\
         <h1>blocksconvert scheduler</h1><p>Plans: <code>{}</code> · tool: {} · {}</p><h2>Plans by status</h2><table><tr>",
        esc(&s.plans_location),
        esc(&s.tool),
        if s.ready {
            "ready"
        } else {
            "reading the bucket…"
        }
    );
    for name in s.counts.keys() {
        let _ = write!(h, "<th>{name}</th>");
    }
    h.push_str("</tr><tr>");
    for n in s.counts.values() {
        let _ = write!(h, "<td>{n}</td>");
    }
    let _ = write!(h, "</tr></table><h2>Queue: {} plans", s.queue_length);
    if let Some((lo, hi)) = s.queue_days {
        let _ = write!(h, " (days {lo}–{hi})");
    }
    let _ = write!(h, "</h2><p>Next: {}</p>", esc(&s.queue_head.join(", ")));
    h.push_str("<h2>Running leases</h2><table><tr><th>plan</th><th>worker</th><th>attempt</th><th>age (s)</th><th>last heartbeat (s ago)</th><th>progress</th></tr>");
    for p in s.plans.iter().filter(|p| p.status == "leased") {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.plan),
            esc(p.worker.as_deref().unwrap_or("")),
            p.attempts,
            p.lease_age_s.unwrap_or_default(),
            p.silent_s.unwrap_or_default(),
            esc(p.progress.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table><h2>Errors and retries</h2><table><tr><th>plan</th><th>status</th><th>failures</th><th>reason</th></tr>");
    for p in s
        .plans
        .iter()
        .filter(|p| matches!(p.status, "error" | "invalid" | "waiting"))
    {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class={}>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            esc(&p.plan),
            p.status,
            p.status,
            p.failures,
            esc(p.reason.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table><h2>Tenants</h2><table><tr><th>tenant</th><th>finished</th><th>total</th><th>leased</th><th>pending</th><th>failed</th></tr>");
    for (t, l) in &s.tenants {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(t),
            l.finished,
            l.total,
            l.leased,
            l.pending,
            l.failed
        );
    }
    h.push_str("</table><p><a href=\"?format=json\">JSON</a> · <a href=\"/metrics\">metrics</a> · retry / cancel: <code>POST /plans/retry?plan=&lt;tenant&gt;/&lt;day&gt;</code>, <code>POST /plans/cancel?plan=…</code></p></body></html>");
    h
}
