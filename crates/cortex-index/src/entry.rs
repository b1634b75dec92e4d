//! Index rows: what Cortex's v9/v10/v11 schemas write for a chunk, and the parser
//! for the only rows a converter needs (series→chunk, type `'3'`).

use crate::DAY_MS;
use crate::schema::PeriodConfig;
use crate::series_id::{series_id, shard, value_hash};

/// One index row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexEntry {
    /// Table name.
    pub table: String,
    /// Hash key (`h`, string).
    pub hash: String,
    /// Range key (`r`, bytes).
    pub range: Vec<u8>,
    /// Value (`c`, bytes), absent for v9 chunk rows.
    pub value: Option<Vec<u8>>,
}

/// Marker of series→chunk rows.
pub const CHUNK_ROW: u8 = b'3';

/// `comp1 00 comp2 00 … marker 00`.
pub fn range_value(components: &[&[u8]], marker: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for c in components {
        out.extend_from_slice(c);
        out.push(0);
    }
    out.push(marker);
    out.push(0);
    out
}

/// The UTC day buckets a chunk `[from, through]` touches (Cortex's truncating division).
pub fn day_buckets(from: i64, through: i64) -> std::ops::RangeInclusive<i64> {
    (from / 1000 / 86_400)..=(through / 1000 / 86_400)
}

/// Rows for one chunk of `user`/`labels` under period `p`: per day bucket, the label
/// rows (`7`, `8`, and `9` for v11) and the series→chunk row (`3`).
pub fn chunk_entries(
    p: &PeriodConfig,
    user: &str,
    labels: &[(String, String)],
    chunk_id: &str,
    from: i64,
    through: i64,
) -> Vec<IndexEntry> {
    let sid = series_id(labels);
    let metric = labels
        .iter()
        .find(|(n, _)| n == "__name__")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let sharded = matches!(p.schema.as_str(), "v10" | "v11");
    let prefix = if sharded {
        format!("{:02}:", shard(&sid, p.effective_row_shards()))
    } else {
        String::new()
    };
    let mut out = Vec::new();
    for d in day_buckets(from, through) {
        let table = p.index_table_for_day(d);
        let bucket = format!("{user}:d{d}");
        let rel_through = (through - d * DAY_MS).min(DAY_MS) as u32;
        let entry = |hash: String, range: Vec<u8>, value: Option<Vec<u8>>| IndexEntry {
            table: table.clone(),
            hash,
            range,
            value,
        };
        out.push(entry(
            format!("{prefix}{bucket}:{metric}"),
            range_value(&[sid.as_bytes(), b"", b""], b'7'),
            Some(b"-".to_vec()),
        ));
        for (n, v) in labels.iter().filter(|(n, _)| n != "__name__") {
            out.push(entry(
                format!("{prefix}{bucket}:{metric}:{n}"),
                range_value(&[value_hash(v).as_bytes(), sid.as_bytes(), b""], b'8'),
                Some(v.as_bytes().to_vec()),
            ));
        }
        let through_hex = format!("{rel_through:08x}");
        out.push(entry(
            format!("{bucket}:{sid}"),
            range_value(
                &[through_hex.as_bytes(), b"", chunk_id.as_bytes()],
                CHUNK_ROW,
            ),
            if sharded { Some(b"-".to_vec()) } else { None },
        ));
        if p.schema == "v11" {
            let names: Vec<&str> = labels
                .iter()
                .filter(|(n, _)| n != "__name__")
                .map(|(n, _)| n.as_str())
                .collect();
            out.push(entry(
                sid.clone(),
                range_value(&[b"", b"", b""], b'9'),
                Some(serde_json::to_vec(&names).unwrap_or_default()),
            ));
        }
    }
    out
}

/// A parsed series→chunk row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    /// Tenant.
    pub user: String,
    /// UTC day index of the bucket.
    pub day: i64,
    /// Series ID.
    pub series_id: String,
    /// Chunk ID (external key).
    pub chunk_id: String,
}

/// A parsed series→chunk row borrowing the hash and range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRowRef<'a> {
    /// Tenant.
    pub user: &'a str,
    /// UTC day index of the bucket.
    pub day: i64,
    /// Series ID.
    pub series_id: &'a str,
    /// Chunk ID (external key).
    pub chunk_id: &'a str,
}

/// Parses a `'3'` row without allocating; `None` for every other row kind. The hash is
/// split from the right, so tenants containing `:` still parse.
pub fn parse_chunk_row_ref<'a>(hash: &'a str, range: &'a [u8]) -> Option<ChunkRowRef<'a>> {
    if range.len() < 3 || range[range.len() - 3..] != [0, CHUNK_ROW, 0] {
        return None;
    }
    let mut comps = range[..range.len() - 1].split(|b| *b == 0);
    // Exactly four components (through, empty, chunk ID, marker), as Cortex reads them.
    let (_through, _empty, chunk, _marker) =
        (comps.next()?, comps.next()?, comps.next()?, comps.next()?);
    if comps.next().is_some() {
        return None;
    }
    let chunk_id = std::str::from_utf8(chunk).ok()?;
    let mut parts = hash.rsplitn(3, ':');
    let series_id = parts.next()?;
    let day = parts.next()?.strip_prefix('d')?.parse().ok()?;
    let user = parts.next()?;
    Some(ChunkRowRef {
        user,
        day,
        series_id,
        chunk_id,
    })
}

/// Parses a `'3'` row; returns `None` for every other row kind.
pub fn parse_chunk_row(hash: &str, range: &[u8]) -> Option<ChunkRow> {
    parse_chunk_row_ref(hash, range).map(|r| ChunkRow {
        user: r.user.to_owned(),
        day: r.day,
        series_id: r.series_id.to_owned(),
        chunk_id: r.chunk_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{PeriodConfig, PeriodicTableConfig};

    fn period(schema: &str) -> PeriodConfig {
        PeriodConfig {
            from: "2020-01-01".into(),
            store: "aws-dynamo".into(),
            object_store: Some("s3".into()),
            schema: schema.into(),
            index: PeriodicTableConfig {
                prefix: "index_".into(),
                period: Some("168h".into()),
                tags: None,
            },
            chunks: None,
            row_shards: None,
        }
    }

    const CHUNK: &str = "user1/1a2b3c4d5e6f7081:174876e8000:174876ef530:50e90e4";

    #[test]
    fn worked_example_rows() {
        let labels = vec![
            ("__name__".to_string(), "up".to_string()),
            ("job".to_string(), "node".to_string()),
        ];
        let rows = chunk_entries(
            &period("v9"),
            "user1",
            &labels,
            CHUNK,
            1600000000000,
            1600000030000,
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[2].hash,
            "user1:d18518:Uu1K7DI7IcXNgNR3d4psYf/gxT4sEM4W5tIsjrXXXSc"
        );
        assert_eq!(rows[2].table, "index_2645");
        let want = hex::decode("303261633064333000007573657231 2f316132623363346435653666373038313a31373438373665383030303a31373438373665663533303a35306539306534003300".replace(' ', "")).expect("hex");
        assert_eq!(rows[2].range, want);
        assert_eq!(rows[2].value, None);
        let v11 = chunk_entries(
            &period("v11"),
            "user1",
            &labels,
            CHUNK,
            1600000000000,
            1600000030000,
        );
        assert_eq!(v11[0].hash, "11:user1:d18518:up");
        assert_eq!(v11[1].hash, "11:user1:d18518:up:job");
        assert_eq!(v11[3].hash, "Uu1K7DI7IcXNgNR3d4psYf/gxT4sEM4W5tIsjrXXXSc");
        assert_eq!(v11[3].value.as_deref(), Some(&b"[\"job\"]"[..]));
        let row = parse_chunk_row(&rows[2].hash, &rows[2].range).expect("chunk row");
        assert_eq!(
            (row.user.as_str(), row.day, row.chunk_id.as_str()),
            ("user1", 18518, CHUNK)
        );
        assert!(parse_chunk_row(&v11[0].hash, &v11[0].range).is_none());
    }

    #[test]
    fn midnight_crossing_chunk_is_in_both_days() {
        let labels = vec![("__name__".to_string(), "up".to_string())];
        let rows = chunk_entries(
            &period("v9"),
            "u",
            &labels,
            "u/1:2:3:4",
            1600041540000,
            1600041660000,
        );
        let chunk_rows: Vec<_> = rows
            .iter()
            .filter_map(|r| parse_chunk_row(&r.hash, &r.range))
            .collect();
        assert_eq!(
            chunk_rows.iter().map(|r| r.day).collect::<Vec<_>>(),
            vec![18518, 18519]
        );
        let ranges: Vec<&[u8]> = rows
            .iter()
            .filter(|r| r.range.ends_with(b"\x003\x00"))
            .map(|r| &r.range[..8])
            .collect();
        assert_eq!(ranges, vec![&b"05265c00"[..], &b"0000ea60"[..]]);
    }
}
