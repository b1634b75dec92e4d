//! Series→chunk records and the external sort that groups them with bounded memory.
//!
//! A record is `user 0x00 day(8 bytes BE) sid 0x00 chunk`, so byte order is
//! (tenant, day, series, chunk) order. The sort itself is the project's one external
//! sort (`external-sort`): a full [`RecordBuffer`] is spilled as a sorted run that the
//! scanner's checkpoints name, and [`RunMerger`] merges every run of a table in order,
//! dropping duplicates, so plans stream out one (tenant, day) at a time and memory
//! never depends on the table size.

pub use external_sort::{MAX_FAN_IN, RecordBuffer, RunError, RunMerger, reduce_runs};

/// Encodes one record into `out` (cleared first).
pub fn encode_record(out: &mut Vec<u8>, user: &str, day: i64, sid: &str, chunk: &str) {
    out.clear();
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.extend_from_slice(&(day as u64 ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(sid.as_bytes());
    out.push(0);
    out.extend_from_slice(chunk.as_bytes());
}

/// A decoded record borrowing the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Tenant.
    pub user: &'a str,
    /// Day index.
    pub day: i64,
    /// Series ID.
    pub sid: &'a str,
    /// Chunk ID.
    pub chunk: &'a str,
}

/// Decodes a record; `None` if the bytes are not a record (a damaged run file).
pub fn decode_record(bytes: &[u8]) -> Option<Record<'_>> {
    let u = bytes.iter().position(|b| *b == 0)?;
    let user = std::str::from_utf8(&bytes[..u]).ok()?;
    let day_bytes: [u8; 8] = bytes.get(u + 1..u + 9)?.try_into().ok()?;
    let day = (u64::from_be_bytes(day_bytes) ^ (1 << 63)) as i64;
    let rest = &bytes[u + 9..];
    let s = rest.iter().position(|b| *b == 0)?;
    Some(Record {
        user,
        day,
        sid: std::str::from_utf8(&rest[..s]).ok()?,
        chunk: std::str::from_utf8(&rest[s + 1..]).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_order() {
        let mut a = Vec::new();
        encode_record(&mut a, "u", 18584, "sid", "u/1:2:3:4");
        let r = decode_record(&a).expect("decode");
        assert_eq!(
            (r.user, r.day, r.sid, r.chunk),
            ("u", 18584, "sid", "u/1:2:3:4")
        );
        let mut b = Vec::new();
        encode_record(&mut b, "u", 18585, "aaa", "x");
        assert!(a < b, "day orders before series");
        let mut c = Vec::new();
        encode_record(&mut c, "u2", 1, "a", "x");
        let mut d = Vec::new();
        encode_record(&mut d, "u", 99999, "a", "x");
        assert!(d < c, "a tenant that is a prefix of another sorts first");
    }
}
