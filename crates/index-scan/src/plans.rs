//! From merged records to verified local plans, and from local plans to the bucket.
//!
//! Plans are written sorted (series, then chunk IDs), so the same index always yields
//! byte-identical plans, whether it was read live or from an export. The header carries
//! the entries' digest as `generation` and the footer the entry count and checksum
//! (W8, W17; extra keys Cortex readers ignore). Every plan is read back and verified
//! before upload. An upload never silently collides with earlier work: a plan with the
//! same generation is left alone, a changed plan whose day the scheduler already
//! started, finished or failed is refused (or replaced, by policy), and a second
//! encoding of the same day (W9) is refused.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use plan_format::{Compression, PlanDigest, PlanReader, PlanWriter, encode_entry};
use storage::StoreLocation;

use crate::records::{MAX_FAN_IN, RunMerger, decode_record, reduce_runs};
use crate::{ScanError, metrics as m};

/// A plan written and verified in the work dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPlan {
    /// Tenant.
    pub user: String,
    /// Day index.
    pub day: i64,
    /// The local file.
    pub path: PathBuf,
    /// Generation (entries digest).
    pub generation: String,
    /// Entries (series).
    pub series: u64,
    /// Chunk references.
    pub chunks: u64,
}

impl LocalPlan {
    /// Object name below the plans location.
    pub fn key(&self, compression: Compression) -> String {
        format!("{}/{}{}", self.user, self.day, compression.suffix())
    }
}

struct PlanInProgress {
    user: String,
    day: i64,
    body_path: PathBuf,
    body: BufWriter<File>,
    digest: PlanDigest,
    sid: String,
    chunks: Vec<String>,
    chunk_count: u64,
    /// Scratch for one encoded entry line.
    line: Vec<u8>,
}

impl PlanInProgress {
    fn flush_entry(&mut self) -> Result<(), ScanError> {
        if self.chunks.is_empty() {
            return Ok(());
        }
        self.digest.add(&self.sid, &self.chunks);
        self.chunk_count += self.chunks.len() as u64;
        // Staged exactly as the plan's entry lines, so finishing copies bytes.
        encode_entry(&self.sid, &self.chunks, &mut self.line)
            .and_then(|()| self.body.write_all(&self.line))
            .map_err(|e| ScanError::io(&self.body_path, e))?;
        self.chunks.clear();
        Ok(())
    }
}

/// Merges the runs into one verified local plan per (tenant, day).
pub fn write_plans(
    runs: &[PathBuf],
    out_dir: &Path,
    compression: Compression,
) -> Result<Vec<LocalPlan>, ScanError> {
    std::fs::create_dir_all(out_dir).map_err(|e| ScanError::io(out_dir, e))?;
    // Intermediate merges go next to the plans dir, never inside it (a tenant may have
    // any name).
    let scratch = out_dir.with_file_name("merge");
    std::fs::create_dir_all(&scratch).map_err(|e| ScanError::io(&scratch, e))?;
    let runs = reduce_runs(runs.to_vec(), &scratch, MAX_FAN_IN)?;
    let mut merger = RunMerger::open(&runs)?;
    let mut done = Vec::new();
    let mut cur: Option<PlanInProgress> = None;
    while let Some(bytes) = merger.next_record()? {
        let r = decode_record(bytes)
            .ok_or_else(|| ScanError::Internal("undecodable record in a run".into()))?;
        let same_plan = cur
            .as_ref()
            .is_some_and(|p| p.user == r.user && p.day == r.day);
        if !same_plan {
            if let Some(p) = cur.take() {
                done.push(finish_plan(p, out_dir, compression)?);
            }
            let body_path = out_dir.join(format!(".body-{}", done.len()));
            let f = File::create(&body_path).map_err(|e| ScanError::io(&body_path, e))?;
            metrics::gauge!(m::OPEN_FILES).set(1.0);
            cur = Some(PlanInProgress {
                user: r.user.to_owned(),
                day: r.day,
                body_path,
                body: BufWriter::new(f),
                digest: PlanDigest::default(),
                sid: String::new(),
                chunks: Vec::new(),
                chunk_count: 0,
                line: Vec::new(),
            });
        }
        let Some(p) = cur.as_mut() else {
            continue;
        };
        if p.sid != r.sid {
            p.flush_entry()?;
            p.sid.clear();
            p.sid.push_str(r.sid);
        }
        p.chunks.push(r.chunk.to_owned());
    }
    if let Some(p) = cur.take() {
        done.push(finish_plan(p, out_dir, compression)?);
    }
    drop(merger);
    std::fs::remove_dir_all(&scratch).map_err(|e| ScanError::io(&scratch, e))?;
    metrics::gauge!(m::OPEN_FILES).set(0.0);
    Ok(done)
}

fn finish_plan(
    mut p: PlanInProgress,
    out_dir: &Path,
    compression: Compression,
) -> Result<LocalPlan, ScanError> {
    p.flush_entry()?;
    p.body.flush().map_err(|e| ScanError::io(&p.body_path, e))?;
    let generation = p.digest.hex();
    let user_dir = out_dir.join(&p.user);
    std::fs::create_dir_all(&user_dir).map_err(|e| ScanError::io(&user_dir, e))?;
    let path = user_dir.join(format!("{}{}", p.day, compression.suffix()));
    let out = File::create(&path).map_err(|e| ScanError::io(&path, e))?;
    let mut w = PlanWriter::new(
        BufWriter::new(out),
        compression,
        &p.user,
        p.day,
        &generation,
    )
    .map_err(|e| ScanError::io(&path, e))?;
    let mut body = File::open(&p.body_path).map_err(|e| ScanError::io(&p.body_path, e))?;
    w.append_staged(&mut body, p.digest)
        .map_err(|e| ScanError::io(&path, e))?;
    let digest = w.finish().map_err(|e| ScanError::io(&path, e))?;
    std::fs::remove_file(&p.body_path).map_err(|e| ScanError::io(&p.body_path, e))?;
    let plan = LocalPlan {
        user: p.user,
        day: p.day,
        path,
        generation,
        series: digest.entries(),
        chunks: p.chunk_count,
    };
    verify_plan(&plan, compression)?;
    metrics::counter!(m::PLANS_WRITTEN).increment(1);
    metrics::counter!(m::SERIES_WRITTEN).increment(plan.series);
    Ok(plan)
}

/// Reads a local plan back: header, footer checksum, one entry per series (strictly
/// increasing series IDs), no empty entry, the expected counts and generation.
pub fn verify_plan(plan: &LocalPlan, compression: Compression) -> Result<(), ScanError> {
    let name = plan.path.display().to_string();
    let bad = |reason: String| ScanError::Verify {
        plan: name.clone(),
        reason,
    };
    let f = File::open(&plan.path).map_err(|e| ScanError::io(&plan.path, e))?;
    let mut r = PlanReader::open(&name, f, compression).map_err(|e| bad(e.to_string()))?;
    if r.user() != plan.user || r.day_index() != plan.day {
        return Err(bad(format!("header says {}/{}", r.user(), r.day_index())));
    }
    if r.generation() != plan.generation {
        return Err(bad(format!("header generation {}", r.generation())));
    }
    let (mut series, mut chunks) = (0u64, 0u64);
    let mut last = String::new();
    while let Some(e) = r.next_entry().map_err(|e| bad(e.to_string()))? {
        if series > 0 && e.sid <= last {
            return Err(bad(format!("series {} repeated or out of order", e.sid)));
        }
        if e.chunks.is_empty() {
            return Err(bad(format!("series {} has no chunks", e.sid)));
        }
        series += 1;
        chunks += e.chunks.len() as u64;
        last = e.sid;
    }
    if series != plan.series || chunks != plan.chunks {
        return Err(bad(format!(
            "{series} series / {chunks} chunks, expected {} / {}",
            plan.series, plan.chunks
        )));
    }
    Ok(())
}

/// What to do when a plan's content changed after the scheduler touched its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangedPlans {
    /// Leave the existing plan, report a conflict (the default: nothing is overwritten
    /// behind a builder's back).
    #[default]
    Refuse,
    /// Upload the new generation; the scheduler sees a generation that differs from the
    /// one it finished and rebuilds the day.
    Replace,
}

/// What happened to one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadResult {
    /// Uploaded (new, or replacing a plan nobody started).
    Uploaded,
    /// Already in the bucket with the same generation.
    Unchanged,
    /// Replaced although markers existed (policy `replace`).
    Replaced(String),
    /// Not uploaded; the reason names what is in the way.
    Conflict(String),
}

/// The objects already in a tenant's plans directory, grouped by day base.
#[derive(Debug, Default)]
pub struct TenantListing {
    /// base → file names (without the `<user>/` prefix).
    by_base: HashMap<String, Vec<String>>,
}

impl TenantListing {
    /// Lists `<user>/` once.
    pub async fn load(plans: &StoreLocation, user: &str) -> Result<Self, ScanError> {
        let mut by_base: HashMap<String, Vec<String>> = HashMap::new();
        for (key, _) in plans.list(user).await? {
            let Some(name) = key.strip_prefix(&format!("{user}/")) else {
                continue;
            };
            if name.contains('/') {
                continue; // deeper objects are not plans or markers (non-recursive in Cortex)
            }
            if let Some((base, _)) = name.split_once('.') {
                by_base
                    .entry(base.to_owned())
                    .or_default()
                    .push(name.to_owned());
            }
        }
        Ok(Self { by_base })
    }
}

/// Uploads one plan following the collision rules above.
pub async fn upload_plan(
    plans: &StoreLocation,
    plan: &LocalPlan,
    compression: Compression,
    listing: &TenantListing,
    policy: ChangedPlans,
) -> Result<UploadResult, ScanError> {
    let base = plan.day.to_string();
    let ours = format!("{base}{}", compression.suffix());
    let existing = listing.by_base.get(&base).cloned().unwrap_or_default();
    let other_encodings: Vec<&String> = existing
        .iter()
        .filter(|n| **n != ours && Compression::from_name(n).is_some())
        .collect();
    if let Some(other) = other_encodings.first() {
        return Ok(UploadResult::Conflict(format!(
            "{}/{other} exists; a second encoding would make the plan Invalid (W9) — scan with the same --plan-compression or remove it",
            plan.user
        )));
    }
    let markers: Vec<&String> = existing
        .iter()
        .filter(|n| Compression::from_name(n).is_none())
        .collect();
    let key = plan.key(compression);
    if existing.contains(&ours) {
        let head = plans.get_prefix(&key, 64 << 10).await?;
        let generation = PlanReader::open(&key, &head[..], compression)
            .map(|r| r.generation().to_owned())
            .unwrap_or_default();
        if generation == plan.generation {
            metrics::counter!(m::PLANS_UNCHANGED).increment(1);
            return Ok(UploadResult::Unchanged);
        }
    }
    let mut result = UploadResult::Uploaded;
    if !markers.is_empty() {
        let what = markers
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        match policy {
            ChangedPlans::Refuse => {
                metrics::counter!(m::PLAN_CONFLICTS, "action" => "refused").increment(1);
                return Ok(UploadResult::Conflict(format!(
                    "{key} changed (generation {}) but the day already has {what}; rerun with --changed-plans=replace to rebuild it",
                    plan.generation
                )));
            }
            ChangedPlans::Replace => {
                metrics::counter!(m::PLAN_CONFLICTS, "action" => "replaced").increment(1);
                tracing::warn!(plan = %key, markers = %what, "replacing a plan the scheduler already started");
                result = UploadResult::Replaced(what);
            }
        }
    }
    plans.upload_file(&key, &plan.path).await?;
    metrics::counter!(m::PLANS_UPLOADED).increment(1);
    Ok(result)
}
