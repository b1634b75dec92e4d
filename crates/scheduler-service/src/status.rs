//! What `/plans` shows: a snapshot of the registry as JSON and as one HTML page an
//! operator reads at a glance.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use cortex_index::schema::format_day;
use cortex_index::tenant::with_date;

use crate::registry::{Millis, PlanRecord, Registry, STATUS_NAMES, Status};

/// One plan's line.
#[derive(Debug, PartialEq, Serialize)]
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
    /// Overall progress, rate and ETA.
    pub progress: Progress,
}

/// How far the whole conversion is.
#[derive(Debug, Default, Serialize)]
pub struct Progress {
    /// Tenant-days known (invalid plan names excluded).
    pub total: u64,
    /// Finished tenant-days.
    pub finished: u64,
    /// Quarantined tenant-days (need an operator).
    pub quarantined: u64,
    /// Tenant-days still to build (queued, waiting for a retry or being built).
    pub remaining: u64,
    /// Finished share of `total`, in percent.
    pub percent: f64,
    /// Tenant-days finished per hour, recently; absent before two completions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_per_hour: Option<f64>,
    /// Seconds until `remaining` is done at that rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
}

impl Progress {
    /// Progress from the plans per status and the recent completion rate.
    pub fn of(counts: &BTreeMap<&'static str, u64>, finished_per_hour: Option<f64>) -> Self {
        let n = |s: &str| counts.get(s).copied().unwrap_or(0);
        let finished = n("finished");
        let quarantined = n("error");
        let remaining = n("new") + n("waiting") + n("starting") + n("leased");
        let total = finished + quarantined + remaining;
        let percent = if total == 0 {
            0.0
        } else {
            (finished as f64 * 1000.0 / total as f64).round() / 10.0
        };
        let eta_seconds = finished_per_hour
            .filter(|r| *r > 0.0)
            .map(|r| (remaining as f64 / r * 3600.0).round());
        Progress {
            total,
            finished,
            quarantined,
            remaining,
            percent,
            finished_per_hour: finished_per_hour.map(|r| (r * 10.0).round() / 10.0),
            eta_seconds,
        }
    }
}

/// One plan's line with absolute times: what the registry records whenever a plan
/// changes (O(1) per change) and the status view keeps; [`StatusLine::at`] turns it
/// into the [`PlanLine`] of a given moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    plan: String,
    tenant: String,
    day: Option<i32>,
    status: &'static str,
    attempts: u32,
    failures: u32,
    worker: Option<String>,
    granted: Option<Millis>,
    last_heartbeat: Option<Millis>,
    progress: Option<String>,
    block: Option<String>,
    reason: Option<String>,
    retry_at: Option<Millis>,
}

impl StatusLine {
    /// The line of a plan as it is now.
    pub fn of(r: &PlanRecord) -> Self {
        let mut line = StatusLine {
            plan: r.base.clone(),
            tenant: r.tenant.clone(),
            day: r.day,
            status: r.status.name(),
            attempts: r.last_attempt,
            failures: r.counted_failures(),
            worker: None,
            granted: None,
            last_heartbeat: None,
            progress: None,
            block: None,
            reason: None,
            retry_at: None,
        };
        match &r.status {
            Status::Leased(l) => {
                line.worker = Some(l.worker.clone());
                line.granted = Some(l.granted);
                line.last_heartbeat = Some(l.last_heartbeat);
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
                line.retry_at = Some(*until);
                line.reason = r.failures.last().map(|f| f.error.clone());
            }
            Status::New | Status::Starting { .. } => {}
        }
        line
    }

    /// The plan's name (`<tenant>/<day>`).
    pub fn plan(&self) -> &str {
        &self.plan
    }

    /// The line as shown at `now`.
    pub fn at(&self, now: Millis) -> PlanLine {
        let secs = |ms: Millis| (ms.max(0) as f64 / 100.0).round() / 10.0;
        PlanLine {
            plan: self.plan.clone(),
            tenant: self.tenant.clone(),
            day: self.day,
            status: self.status,
            attempts: self.attempts,
            failures: self.failures,
            worker: self.worker.clone(),
            lease_age_s: self.granted.map(|g| secs(now - g)),
            silent_s: self.last_heartbeat.map(|h| secs(now - h)),
            progress: self.progress.clone(),
            block: self.block.clone(),
            reason: self.reason.clone(),
            retry_in_s: self.retry_at.map(|u| secs(u - now)),
        }
    }
}

/// The status page's copy of every plan's line. It is filled once by reading the
/// registry in slices of [`VIEW_SLICE`] plans, then kept current from the registry's
/// change feed, so no request walks every plan under the registry's lock.
#[derive(Debug, Default)]
pub struct StatusView {
    lines: BTreeMap<String, StatusLine>,
}

/// Plans read per registry lock while the status view is first filled.
pub const VIEW_SLICE: usize = 1024;

impl StatusView {
    /// Brings the view up to date with the registry (`reg` runs a closure under the
    /// registry's lock) and returns every line as of `now`. Each registry call is O(1),
    /// O(changes since the last request) or O(log plans + [`VIEW_SLICE`]).
    pub fn refresh<R>(&mut self, mut reg: R, now: Millis) -> Vec<PlanLine>
    where
        R: FnMut(&mut dyn FnMut(&mut Registry)),
    {
        let mut changes = None;
        reg(&mut |r| changes = Some(r.take_line_changes()));
        if let Some(None) = changes {
            // The feed just started: read every line once, slice by slice; plans that
            // change meanwhile come again through the feed below.
            self.lines.clear();
            let mut cursor: Option<String> = None;
            loop {
                let mut slice = Vec::new();
                reg(&mut |r| slice = r.lines_after(cursor.as_deref(), VIEW_SLICE));
                let Some(last) = slice.last() else { break };
                cursor = Some(last.plan.clone());
                for line in slice {
                    self.lines.insert(line.plan.clone(), line);
                }
            }
            reg(&mut |r| changes = Some(r.take_line_changes()));
        }
        for (plan, line) in changes.flatten().unwrap_or_default() {
            match line {
                Some(line) => {
                    self.lines.insert(plan, line);
                }
                None => {
                    self.lines.remove(&plan);
                }
            }
        }
        self.lines.values().map(|l| l.at(now)).collect()
    }
}

/// The queue's part of the status page, copied under the registry's lock (O(1) plus
/// the 20 plans at its head).
#[derive(Debug)]
pub struct QueueSummary {
    counts: BTreeMap<&'static str, u64>,
    queue_length: usize,
    queue_days: Option<(i32, i32)>,
    queue_head: Vec<String>,
}

impl QueueSummary {
    /// The registry's counts and queue head.
    pub fn of(reg: &Registry) -> Self {
        QueueSummary {
            counts: STATUS_NAMES.iter().copied().zip(reg.counts()).collect(),
            queue_length: reg.queue().len(),
            queue_days: reg.queue().day_range(),
            queue_head: reg.queue().peek(20),
        }
    }

    /// The snapshot of `plans` (sorted and totalled per tenant here, outside any lock).
    pub fn into_snapshot(
        self,
        mut plans: Vec<PlanLine>,
        ready: bool,
        tool: &str,
        location: &str,
    ) -> Snapshot {
        let QueueSummary {
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
            progress: Progress::default(),
        }
    }
}

/// `3h 20m`, `12m`, `40s`.
fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match (s / 3600, (s % 3600) / 60) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h {m}m"),
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
    let p = &s.progress;
    let _ = write!(
        h,
        "<p><b>{}%</b> done: {} of {} tenant-days finished, {} to build, {} quarantined",
        p.percent, p.finished, p.total, p.remaining, p.quarantined
    );
    if let Some(rate) = p.finished_per_hour {
        let _ = write!(h, " · {rate} per hour recently");
    }
    if let Some(eta) = p.eta_seconds {
        let _ = write!(h, " · about {} left", human_duration(eta));
    }
    h.push_str("</p>");
    for name in s.counts.keys() {
        let _ = write!(h, "<th>{name}</th>");
    }
    h.push_str("</tr><tr>");
    for n in s.counts.values() {
        let _ = write!(h, "<td>{n}</td>");
    }
    let _ = write!(h, "</tr></table><h2>Queue: {} plans", s.queue_length);
    if let Some((lo, hi)) = s.queue_days {
        let _ = write!(
            h,
            " (days {} to {})",
            format_day(i64::from(lo)),
            format_day(i64::from(hi))
        );
    }
    let next: Vec<String> = s.queue_head.iter().map(|p| with_date(p)).collect();
    let _ = write!(h, "</h2><p>Next: {}</p>", esc(&next.join(", ")));
    h.push_str("<h2>Running leases</h2><table><tr><th>plan</th><th>worker</th><th>attempt</th><th>age (s)</th><th>last heartbeat (s ago)</th><th>progress</th></tr>");
    for p in s.plans.iter().filter(|p| p.status == "leased") {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&with_date(&p.plan)),
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
            esc(&with_date(&p.plan)),
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
    h.push_str("</table><p><a href=\"?format=json\">JSON</a> · <a href=\"/metrics\">metrics</a> · retry / cancel (bearer token): <code>POST /plans/retry?plan=&lt;tenant&gt;/&lt;day&gt;</code>, every quarantined plan <code>POST /plans/retry?plan=all</code> or one tenant's <code>?tenant=&lt;tenant&gt;</code>, <code>POST /plans/cancel?plan=…</code></p></body></html>");
    h
}
