//! Reassembling rows from a ReadRows stream.
//!
//! The server sends rows as a sequence of cell chunks: a chunk may start a row, start
//! a cell (family and qualifier carry over when omitted), or continue a value split
//! over several chunks (`value_size` announces the remainder); `commit_row` ends a
//! row, `reset_row` throws away the row in progress (the server will resend it). Any
//! sequence that breaks these rules is an error, never a silently wrong row.

use bytes::{Bytes, BytesMut};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::read_rows_response::{
    CellChunk, cell_chunk::RowStatus,
};

use crate::BigtableError;

/// One cell version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Column family.
    pub family: String,
    /// Column qualifier (arbitrary bytes).
    pub qualifier: Bytes,
    /// Cell timestamp in microseconds.
    pub timestamp_micros: i64,
    /// Value (empty when read with values stripped).
    pub value: Bytes,
}

/// A row: its key and its cells in the server's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Row key.
    pub key: Bytes,
    /// Cells by family, qualifier, then timestamp descending.
    pub cells: Vec<Cell>,
}

/// The merge state of one ReadRows stream.
pub(crate) struct RowMerger {
    table: String,
    last_committed: Option<Bytes>,
    row: Option<Row>,
    family: Option<String>,
    qualifier: Option<Bytes>,
    /// A value split over chunks: the cell being assembled and its bytes so far.
    partial: Option<(Cell, BytesMut)>,
}

impl RowMerger {
    pub(crate) fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            last_committed: None,
            row: None,
            family: None,
            qualifier: None,
            partial: None,
        }
    }

    fn bad(&self, reason: impl Into<String>) -> BigtableError {
        BigtableError::Protocol {
            table: self.table.clone(),
            reason: reason.into(),
        }
    }

    /// Feeds one chunk; returns the row it completed, if any.
    pub(crate) fn push(&mut self, chunk: CellChunk) -> Result<Option<Row>, BigtableError> {
        if matches!(chunk.row_status, Some(RowStatus::ResetRow(true))) {
            if !chunk.row_key.is_empty()
                || chunk.family_name.is_some()
                || chunk.qualifier.is_some()
                || !chunk.value.is_empty()
                || chunk.timestamp_micros != 0
            {
                return Err(self.bad("reset_row chunk carries data"));
            }
            if self.row.is_none() {
                return Err(self.bad("reset_row with no row in progress"));
            }
            self.row = None;
            self.partial = None;
            self.family = None;
            self.qualifier = None;
            return Ok(None);
        }
        if let Some((cell, mut value)) = self.partial.take() {
            // Continuation of a split value: only more bytes (and maybe the commit).
            if (!chunk.row_key.is_empty()
                && self.row.as_ref().is_some_and(|r| r.key != chunk.row_key))
                || chunk.family_name.is_some()
                || chunk.qualifier.is_some()
                || chunk.timestamp_micros != 0
            {
                return Err(self.bad("a split value's continuation starts a new cell"));
            }
            value.extend_from_slice(&chunk.value);
            if chunk.value_size > 0 {
                self.partial = Some((cell, value));
                if matches!(chunk.row_status, Some(RowStatus::CommitRow(true))) {
                    return Err(self.bad("commit_row in the middle of a split value"));
                }
                return Ok(None);
            }
            self.add_cell(Cell {
                value: value.freeze(),
                ..cell
            })?;
        } else {
            if self.row.is_none() {
                if chunk.row_key.is_empty() {
                    return Err(self.bad("a new row without a row key"));
                }
                if self
                    .last_committed
                    .as_ref()
                    .is_some_and(|k| chunk.row_key <= *k)
                {
                    return Err(self.bad("row keys out of order"));
                }
                if chunk.family_name.is_none() || chunk.qualifier.is_none() {
                    return Err(self.bad("a new row's first chunk lacks family or qualifier"));
                }
                self.row = Some(Row {
                    key: chunk.row_key.clone(),
                    cells: Vec::new(),
                });
                self.family = None;
                self.qualifier = None;
            } else if !chunk.row_key.is_empty()
                && self.row.as_ref().is_some_and(|r| r.key != chunk.row_key)
            {
                return Err(self.bad("a new row key before the previous row was committed"));
            }
            if let Some(f) = chunk.family_name {
                if chunk.qualifier.is_none() {
                    return Err(self.bad("a family without a qualifier"));
                }
                self.family = Some(f);
            }
            if let Some(q) = chunk.qualifier {
                self.qualifier = Some(Bytes::from(q));
            }
            let (Some(family), Some(qualifier)) = (self.family.clone(), self.qualifier.clone())
            else {
                return Err(self.bad("a cell without family or qualifier"));
            };
            let cell = Cell {
                family,
                qualifier,
                timestamp_micros: chunk.timestamp_micros,
                value: Bytes::new(),
            };
            if chunk.value_size > 0 {
                let mut value = BytesMut::with_capacity(
                    usize::try_from(chunk.value_size).unwrap_or(0) + chunk.value.len(),
                );
                value.extend_from_slice(&chunk.value);
                if matches!(chunk.row_status, Some(RowStatus::CommitRow(true))) {
                    return Err(self.bad("commit_row in the middle of a split value"));
                }
                self.partial = Some((cell, value));
                return Ok(None);
            }
            self.add_cell(Cell {
                value: chunk.value,
                ..cell
            })?;
        }
        if matches!(chunk.row_status, Some(RowStatus::CommitRow(true))) {
            let row = self
                .row
                .take()
                .ok_or_else(|| self.bad("commit_row with no row in progress"))?;
            self.last_committed = Some(row.key.clone());
            self.family = None;
            self.qualifier = None;
            return Ok(Some(row));
        }
        Ok(None)
    }

    fn add_cell(&mut self, cell: Cell) -> Result<(), BigtableError> {
        match &mut self.row {
            Some(row) => {
                row.cells.push(cell);
                Ok(())
            }
            None => Err(self.bad("a cell outside a row")),
        }
    }

    /// The stream ended: a row still in progress means the response was cut short.
    pub(crate) fn finish(self) -> Result<(), BigtableError> {
        if self.row.is_some() || self.partial.is_some() {
            return Err(self.bad("the stream ended inside a row"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(key: &str, q: Option<&str>, value: &str, size: i32, commit: bool) -> CellChunk {
        CellChunk {
            row_key: Bytes::copy_from_slice(key.as_bytes()),
            family_name: q.map(|_| "f".to_owned()),
            qualifier: q.map(|q| q.as_bytes().to_vec()),
            timestamp_micros: 0,
            labels: Vec::new(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            value_size: size,
            row_status: commit.then_some(RowStatus::CommitRow(true)),
        }
    }

    #[test]
    fn merges_split_values_and_rows() {
        let mut m = RowMerger::new("t");
        assert_eq!(
            m.push(chunk("a", Some("c"), "he", 3, false)).ok(),
            Some(None)
        );
        assert_eq!(m.push(chunk("", None, "llo", 0, false)).ok(), Some(None));
        let row = m
            .push(chunk("", Some("d"), "x", 0, true))
            .expect("valid")
            .expect("committed");
        assert_eq!(row.key.as_ref(), b"a");
        assert_eq!(row.cells.len(), 2);
        assert_eq!(row.cells[0].value.as_ref(), b"hello");
        assert_eq!(row.cells[1].qualifier.as_ref(), b"d");
        let row = m
            .push(chunk("b", Some("c"), "", 0, true))
            .expect("valid")
            .expect("committed");
        assert_eq!(row.cells[0].value.as_ref(), b"");
        assert!(m.finish().is_ok());
    }

    #[test]
    fn reset_discards_the_row() {
        let mut m = RowMerger::new("t");
        assert!(m.push(chunk("a", Some("c"), "1", 0, false)).is_ok());
        let reset = CellChunk {
            row_status: Some(RowStatus::ResetRow(true)),
            ..Default::default()
        };
        assert!(m.push(reset).is_ok());
        let row = m
            .push(chunk("a", Some("c"), "2", 0, true))
            .expect("valid")
            .expect("committed");
        assert_eq!(row.cells.len(), 1);
        assert_eq!(row.cells[0].value.as_ref(), b"2");
    }

    #[test]
    fn rejects_broken_streams() {
        let mut m = RowMerger::new("t");
        assert!(m.push(chunk("", Some("c"), "1", 0, true)).is_err());
        let mut m = RowMerger::new("t");
        assert!(m.push(chunk("b", Some("c"), "1", 0, true)).is_ok());
        assert!(m.push(chunk("a", Some("c"), "1", 0, true)).is_err());
        let mut m = RowMerger::new("t");
        assert!(m.push(chunk("a", Some("c"), "1", 0, false)).is_ok());
        assert!(m.push(chunk("b", Some("c"), "1", 0, true)).is_err());
        let mut m = RowMerger::new("t");
        assert!(m.push(chunk("a", Some("c"), "1", 5, false)).is_ok());
        assert!(m.finish().is_err());
    }
}
