//! What `/plans` shows: a snapshot of the registry as JSON and as one HTML page an
//! operator reads at a glance.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use cortex_index::schema::format_day;
use cortex_index::tenant::with_date;

use crate::registry::{Millis, Registry, STATUS_NAMES, StatusLine};

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

impl StatusLine {
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

/// A button that posts `action` (`retry` or `cancel`) for one plan.
fn plan_button(action: &str, plan: &str) -> String {
    let confirm = if action == "cancel" {
        format!(
            " data-confirm=\"Cancel {}? Its builder stops and it stays quarantined until retried.\"",
            esc(&with_date(plan))
        )
    } else {
        String::new()
    };
    format!(
        "<button data-action={action} data-plan=\"{}\"{confirm}>{action}</button>",
        esc(plan)
    )
}

/// The buttons' behaviour: POST the action (relative to the page, so a path prefix
/// in front of the scheduler keeps working); on 401 ask for the bearer token once and
/// keep it for this tab only; show the answer and reload on success. A token is
/// sent only in the Authorization header, which a cross-site form cannot set.
const ADMIN_SCRIPT: &str = r#"<script>
document.addEventListener('click', async (event) => {
  const b = event.target.closest('button[data-action]');
  if (!b) return;
  if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
  const query = b.dataset.plan ? 'plan=' + encodeURIComponent(b.dataset.plan)
    : b.dataset.tenant ? 'tenant=' + encodeURIComponent(b.dataset.tenant) : 'plan=all';
  const url = 'plans/' + b.dataset.action + '?' + query;
  const out = document.getElementById('admin-result');
  const send = (token) => fetch(url, {method: 'POST', headers: token ? {Authorization: 'Bearer ' + token} : {}});
  let token = sessionStorage.getItem('blocksconvert-token');
  let r = await send(token);
  if (r.status === 401) {
    token = prompt("The scheduler's bearer token (kept for this tab only):");
    if (!token) { out.textContent = 'not sent: this action needs the token'; out.className = 'error'; return; }
    r = await send(token);
    if (r.ok) sessionStorage.setItem('blocksconvert-token', token);
  }
  const text = await r.text();
  out.textContent = (r.ok ? '' : 'refused (' + r.status + '): ') + text;
  out.className = r.ok ? 'finished' : 'error';
  if (r.ok) setTimeout(() => location.reload(), 1500);
});
</script>"#;

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
    if p.quarantined > 0 {
        h.push_str(
            " <button data-action=retry data-confirm=\"Retry every quarantined tenant-day?\">retry all quarantined</button>",
        );
    }
    h.push_str("</p><p id=admin-result role=status></p>");
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
    h.push_str("<h2>Running leases</h2><table><tr><th>plan</th><th>worker</th><th>attempt</th><th>age (s)</th><th>last heartbeat (s ago)</th><th>progress</th><th></th></tr>");
    for p in s.plans.iter().filter(|p| p.status == "leased") {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&with_date(&p.plan)),
            esc(p.worker.as_deref().unwrap_or("")),
            p.attempts,
            p.lease_age_s.unwrap_or_default(),
            p.silent_s.unwrap_or_default(),
            esc(p.progress.as_deref().unwrap_or("")),
            plan_button("cancel", &p.plan)
        );
    }
    h.push_str("</table><h2>Errors and retries</h2><table><tr><th>plan</th><th>status</th><th>failures</th><th>reason</th><th></th></tr>");
    for p in s
        .plans
        .iter()
        .filter(|p| matches!(p.status, "error" | "invalid" | "waiting"))
    {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class={}>{}</td><td>{}</td><td><pre>{}</pre></td><td>{}</td></tr>",
            esc(&with_date(&p.plan)),
            p.status,
            p.status,
            p.failures,
            esc(p.reason.as_deref().unwrap_or("")),
            if p.status == "waiting" {
                String::new()
            } else {
                plan_button("retry", &p.plan)
            }
        );
    }
    h.push_str("</table><h2>Tenants</h2><table><tr><th>tenant</th><th>finished</th><th>total</th><th>leased</th><th>pending</th><th>failed</th><th></th></tr>");
    for (t, l) in &s.tenants {
        let button = if l.failed > 0 {
            format!(
                "<button data-action=retry data-tenant=\"{}\">retry failed</button>",
                esc(t)
            )
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
            esc(t),
            l.finished,
            l.total,
            l.leased,
            l.pending,
            l.failed
        );
    }
    h.push_str("</table><p><a href=\"?format=json\">JSON</a> · <a href=\"/metrics\">metrics</a> · retry / cancel (bearer token): <code>POST /plans/retry?plan=&lt;tenant&gt;/&lt;day&gt;</code>, every quarantined plan <code>POST /plans/retry?plan=all</code> or one tenant's <code>?tenant=&lt;tenant&gt;</code>, <code>POST /plans/cancel?plan=…</code></p>");
    h.push_str(ADMIN_SCRIPT);
    h.push_str("</body></html>");
    h
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lease_token::LeaseProof;
    use crate::queue::QueueOrder;
    use crate::registry::{FailureRecord, PlanRecord, RegistryConfig, WorkProgress};

    fn registry(bases: &[&str]) -> Registry {
        let mut r = Registry::new(RegistryConfig {
            order: QueueOrder::NewestFirst,
            fair: false,
            max_attempts: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3),
            lease_ttl: Duration::from_secs(10),
            legacy_lease_ttl: Duration::from_secs(100),
        });
        let recs = bases
            .iter()
            .map(|b| PlanRecord::new(b, &format!("{b}.plan.snappy")))
            .collect();
        r.apply_scan(recs, 0);
        r
    }

    fn failure(attempt: u32) -> FailureRecord {
        FailureRecord {
            attempt,
            worker: "w".into(),
            retriable: true,
            error: format!("boom {attempt}"),
            at_unix: 0,
        }
    }

    /// What a status view must show: every plan's line, read afresh.
    fn all_lines(r: &Registry, now: Millis) -> Vec<PlanLine> {
        r.lines_after(None, usize::MAX)
            .iter()
            .map(|l| l.at(now))
            .collect()
    }

    fn refreshed(view: &mut StatusView, r: &mut Registry, now: Millis) -> Vec<PlanLine> {
        view.refresh(|f| f(r), now)
    }

    #[test]
    fn the_status_view_follows_every_change_through_the_feed() {
        // More plans than one slice, so the first fill takes several registry calls.
        let bases: Vec<String> = (1..=VIEW_SLICE + 10).map(|d| format!("a/{d}")).collect();
        let refs: Vec<&str> = bases.iter().map(String::as_str).collect();
        let mut r = registry(&refs);
        let mut view = StatusView::default();
        assert_eq!(refreshed(&mut view, &mut r, 0), all_lines(&r, 0));

        // A lease and a heartbeat: the feed carries that plan only.
        let h = r.take_next(0).expect("queued");
        r.grant(&h, "w1", false, Some(LeaseProof::of("t1")), "m".into(), 0);
        // Before the plan is read: the phase alone, no "0/0 series".
        let reading = WorkProgress {
            phase: "validating".into(),
            series_done: 0,
            series_total: 0,
        };
        r.heartbeat(&h.base, h.attempt, "w1", "t1", reading, 1_000)
            .expect("heartbeat");
        let line = refreshed(&mut view, &mut r, 1_000)
            .into_iter()
            .find(|l| l.plan == h.base)
            .expect("leased plan");
        assert_eq!(line.progress.as_deref(), Some("validating"));
        let progress = WorkProgress {
            phase: "building".into(),
            series_done: 5,
            series_total: 9,
        };
        r.heartbeat(&h.base, h.attempt, "w1", "t1", progress, 2_000)
            .expect("heartbeat");
        assert_eq!(
            r.pending_line_changes(),
            [h.base.as_str()],
            "only the leased plan is in the feed"
        );
        assert_eq!(refreshed(&mut view, &mut r, 3_000), all_lines(&r, 3_000));
        let line = refreshed(&mut view, &mut r, 3_000)
            .into_iter()
            .find(|l| l.plan == h.base)
            .expect("leased plan");
        assert_eq!(line.progress.as_deref(), Some("building 5/9 series"));
        assert_eq!(line.silent_s, Some(1.0));

        // A failure (waiting), a finish, a removal and a new plan.
        r.begin_close(&h.base, h.attempt, "w1", "t1")
            .expect("close");
        let f = failure(h.attempt);
        let outcome = r.failure_outcome(&h.base, &f, 4_000);
        r.record_failure(&h.base, f, &outcome);
        let h2 = r.take_next(4_500).expect("queued");
        r.grant(
            &h2,
            "w2",
            false,
            Some(LeaseProof::of("t2")),
            "m2".into(),
            5_000,
        );
        r.begin_close(&h2.base, h2.attempt, "w2", "t2")
            .expect("close");
        r.finish(&h2.base, "01BX5ZZKBKACTAV9WEVGEMMVRZ");
        let mut kept: Vec<PlanRecord> = r.plans().filter(|p| p.base != "a/3").cloned().collect();
        kept.push(PlanRecord::new("b/1", "b/1.plan.snappy"));
        r.apply_scan(kept, r.generation());
        let now = 6_000;
        let shown = refreshed(&mut view, &mut r, now);
        assert_eq!(shown, all_lines(&r, now));
        assert!(shown.iter().any(|l| l.plan == "b/1"));
        assert!(
            !shown.iter().any(|l| l.plan == "a/3"),
            "removed plans leave the view"
        );
        assert!(
            shown
                .iter()
                .any(|l| l.status == "waiting" && l.reason.is_some())
        );
        assert!(shown.iter().any(|l| l.block.is_some()));
    }
}
