//! `blocksconvert inspect chunk|block|plan`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use cortex_chunk::value_text::value_text;
use cortex_chunk::{ChunkKey, decode_object, decode_samples};
use serde_json::{Value, json};
use tsdb_block::BlockReader;

#[derive(Subcommand)]
pub enum InspectCommand {
    /// Decode one chunk object; its key is taken from the last two path components
    /// (`<tenant>/<fp>:<from>:<through>[:<crc>]`) unless `--key` is given.
    Chunk {
        /// The chunk object file.
        file: PathBuf,
        /// The chunk's external key or object path.
        #[arg(long)]
        key: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read a TSDB block directory.
    Block {
        /// The block directory (holding meta.json, index, chunks/).
        dir: PathBuf,
        /// Print one JSON object with every series and its samples.
        #[arg(long)]
        json: bool,
    },
    /// Read a plan file (Cortex's or ours; compression from its suffix), checking it to
    /// its footer: tenant, day, series, chunks, repeated series.
    Plan {
        /// The plan file (`<day>.plan`, `.plan.snappy` or `.plan.gz`).
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: InspectCommand) -> anyhow::Result<()> {
    match cmd {
        InspectCommand::Chunk { file, key, json } => chunk(&file, key.as_deref(), json),
        InspectCommand::Block { dir, json } => block(&dir, json),
        InspectCommand::Plan { file, json } => plan(&file, json),
    }
}

fn key_from_path(file: &Path) -> anyhow::Result<String> {
    let name = file.file_name().and_then(|n| n.to_str());
    let tenant = file
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    match (tenant, name) {
        (Some(t), Some(n)) => Ok(format!("{t}/{n}")),
        _ => bail!(
            "cannot derive a chunk key from {}; pass --key",
            file.display()
        ),
    }
}

fn samples_json(ts: &[i64], vs: &[f64]) -> Value {
    Value::Array(
        ts.iter()
            .zip(vs)
            .map(|(t, v)| json!([t, value_text(*v)]))
            .collect(),
    )
}

fn labels_json(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn chunk(file: &Path, key: Option<&str>, as_json: bool) -> anyhow::Result<()> {
    let key_text = match key {
        Some(k) => k.to_owned(),
        None => key_from_path(file)?,
    };
    let key = ChunkKey::parse_object_path(&key_text)
        .with_context(|| format!("chunk key {key_text:?}"))?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let chunk = decode_object(&key, &bytes)?;
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    decode_samples(chunk.encoding, chunk.data, &mut ts, &mut vs)
        .with_context(|| format!("chunk {key_text}"))?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({
            "key": chunk.key.external_key(),
            "object_path": chunk.key.object_path(),
            "user": chunk.metadata.user_id,
            "fingerprint": format!("{:016x}", chunk.metadata.fingerprint),
            "encoding": chunk.encoding.name(),
            "labels": labels_json(&chunk.metadata.labels),
            "from": chunk.key.from,
            "through": chunk.key.through,
            "samples": samples_json(&ts, &vs),
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "key:         {}", chunk.key.external_key())?;
        writeln!(out, "user:        {}", chunk.metadata.user_id)?;
        writeln!(out, "fingerprint: {:016x}", chunk.metadata.fingerprint)?;
        writeln!(out, "encoding:    {}", chunk.encoding.name())?;
        writeln!(out, "labels:      {}", labels_json(&chunk.metadata.labels))?;
        writeln!(out, "from:        {}", chunk.key.from)?;
        writeln!(out, "through:     {}", chunk.key.through)?;
        writeln!(out, "samples:     {}", ts.len())?;
        for (t, v) in ts.iter().zip(&vs) {
            writeln!(out, "  {t} {}", value_text(*v))?;
        }
    }
    Ok(())
}

fn plan(file: &Path, as_json: bool) -> anyhow::Result<()> {
    use plan_format::{Compression, PlanReader};
    let name = file.display().to_string();
    let compression = [Compression::Snappy, Compression::Gzip, Compression::None]
        .into_iter()
        .find(|c| name.ends_with(c.suffix()))
        .with_context(|| format!("{name}: not a plan file name (.plan, .plan.snappy, .plan.gz)"))?;
    let input = std::fs::File::open(file).with_context(|| format!("opening {name}"))?;
    let mut reader = PlanReader::open(&name, input, compression)?;
    let (mut entries, mut chunks) = (0u64, 0u64);
    let mut series = std::collections::HashSet::new();
    while let Some(e) = reader.next_entry()? {
        entries += 1;
        chunks += e.chunks.len() as u64;
        series.insert(e.sid);
    }
    let day = reader.day_index();
    let date = cortex_index::schema::format_day(day);
    let repeated = entries - series.len() as u64;
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({
            "user": reader.user(), "day_index": day, "date": date,
            "generation": reader.generation(), "entries": entries,
            "series": series.len(), "chunks": chunks, "repeated_entries": repeated,
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "tenant:     {}", reader.user())?;
        writeln!(out, "day:        {date} ({day})")?;
        writeln!(out, "series:     {}", series.len())?;
        writeln!(out, "chunks:     {chunks}")?;
        writeln!(
            out,
            "repeated:   {repeated} entries of a series already listed"
        )?;
        let generation = match reader.generation() {
            "" => "none (written by Cortex)",
            g => g,
        };
        writeln!(out, "generation: {generation}")?;
    }
    Ok(())
}

fn block(dir: &Path, as_json: bool) -> anyhow::Result<()> {
    let r = BlockReader::open(dir).with_context(|| format!("block {}", dir.display()))?;
    let series = r.series()?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let mut list = Vec::with_capacity(series.len());
        for s in &series {
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            r.read_samples(s, &mut ts, &mut vs)?;
            list.push(json!({"labels": labels_json(&s.labels), "samples": samples_json(&ts, &vs)}));
        }
        let doc = json!({"meta": r.meta, "series_count": series.len(), "series": list});
        writeln!(out, "{doc}")?;
    } else {
        let m = &r.meta;
        writeln!(out, "ulid:     {}", m.ulid)?;
        writeln!(out, "tenant:   {}", m.tenant().unwrap_or("-"))?;
        writeln!(
            out,
            "range:    [{}, {}) ms = {} .. {} UTC",
            m.min_time,
            m.max_time,
            utc(m.min_time),
            utc(m.max_time)
        )?;
        writeln!(out, "series:   {}", series.len())?;
        writeln!(out, "chunks:   {}", m.stats.num_chunks)?;
        writeln!(out, "samples:  {}", m.stats.num_samples)?;
        writeln!(out, "segments: {}", m.thanos.segment_files.join(", "))?;
    }
    Ok(())
}

/// `ms` since the epoch as `2020-11-18T00:00:00.000`.
fn utc(ms: i64) -> String {
    let day = ms.div_euclid(cortex_index::DAY_MS);
    let rest = ms.rem_euclid(cortex_index::DAY_MS);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}",
        cortex_index::schema::format_day(day),
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}
