//! Table dumps: every row and cell of a table as gzip-compressed JSON lines
//! (`{"key": b64, "cells": [{"family", "qualifier": b64, "ts": µs, "value": b64}]}`),
//! and loading such a dump into a table. The format knows nothing of what the cells
//! mean; it moves raw Bigtable content between an instance and files (test fixtures,
//! reproductions).

use std::io::BufRead;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::Deserialize;

use crate::{BigtableError, Cell, Client, Row};

#[derive(Deserialize)]
struct DumpRow {
    key: String,
    cells: Vec<DumpCell>,
}

#[derive(Deserialize)]
struct DumpCell {
    family: String,
    qualifier: String,
    ts: i64,
    value: String,
}

/// Loading a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The dump file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not a dump row.
    #[error("{path} line {line}: {reason}")]
    Format {
        /// The dump file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Writing to Bigtable failed.
    #[error(transparent)]
    Bigtable(#[from] BigtableError),
}

/// Reads every row of a `.jsonl.gz` dump.
pub fn read_dump(path: &Path) -> Result<Vec<Row>, DumpError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| DumpError::Io {
        path: name.clone(),
        source,
    })?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| DumpError::Io {
            path: name.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| DumpError::Format {
            path: name.clone(),
            line: i + 1,
            reason,
        };
        let row: DumpRow = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let b64 = |s: &str| {
            B64.decode(s)
                .map(Bytes::from)
                .map_err(|e| bad(format!("bad base64: {e}")))
        };
        let mut cells = Vec::with_capacity(row.cells.len());
        for c in row.cells {
            cells.push(Cell {
                family: c.family,
                qualifier: b64(&c.qualifier)?,
                timestamp_micros: c.ts,
                value: b64(&c.value)?,
            });
        }
        rows.push(Row {
            key: b64(&row.key)?,
            cells,
        });
    }
    Ok(rows)
}

/// Creates `table` (with the dump's column families) and writes every cell of the
/// dump with its own timestamp. Returns the number of cells written.
pub async fn load_dump(client: &Client, table: &str, path: &Path) -> Result<usize, DumpError> {
    let rows = read_dump(path)?;
    let mut families: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.family.as_str()))
        .collect();
    families.sort_unstable();
    families.dedup();
    client.create_table(table, &families).await?;
    let mut cells = 0;
    // Batches well under MutateRows' 100k-mutation limit and a few MB each.
    let mut batch_start = 0;
    let mut batch_bytes = 0;
    let mut batch_cells = 0;
    for (i, row) in rows.iter().enumerate() {
        batch_bytes += row.key.len()
            + row
                .cells
                .iter()
                .map(|c| c.value.len() + c.qualifier.len())
                .sum::<usize>();
        batch_cells += row.cells.len();
        if batch_bytes > 4 << 20 || batch_cells > 10_000 || i + 1 == rows.len() {
            client.write_rows(table, &rows[batch_start..=i]).await?;
            cells += batch_cells;
            batch_start = i + 1;
            batch_bytes = 0;
            batch_cells = 0;
        }
    }
    Ok(cells)
}
