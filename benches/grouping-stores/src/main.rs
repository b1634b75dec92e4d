//! Groups N synthetic scanner records in key order with one of several stores.
//!
//! Usage: `grouping-stores <gen|extsort|sled|fjall|redb> <data-dir> [records]`
//!
//! Prints one line: `candidate insert_s iterate_s disk_bytes distinct_keys`.
//! Peak RSS is measured from outside (`/usr/bin/time -v`), so each candidate runs
//! in its own process.

use std::path::{Path, PathBuf};
use std::time::Instant;

// The scanner's record format, the very same source file as the `blocksconvert-index-scan`
// crate's, compiled in directly so the benchmark does not build the AWS/object_store
// tree; the sort itself is the `external-sort` crate.
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../../crates/index-scan/src/records.rs"]
mod records;

use records::{RecordBuffer, RunMerger, encode_record};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TENANTS: u64 = 20;
const DAYS: u64 = 8;
const CHUNKS_PER_SERIES: u64 = 8;
const DUP_PERCENT: u64 = 20;
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic record stream: `n` records, ~20% re-deliveries of earlier ones,
/// keys in hash (i.e. table-scan-like, unordered) order.
struct Gen {
    n: u64,
    i: u64,
    next_id: u64,
    rng: u64,
    series_count: u64,
    user: String,
    sid: String,
    chunk: String,
}

impl Gen {
    fn new(n: u64) -> Self {
        Self {
            n,
            i: 0,
            next_id: 0,
            rng: 0x1234_5678_9abc_def0,
            series_count: (n / CHUNKS_PER_SERIES).max(1),
            user: String::new(),
            sid: String::new(),
            chunk: String::new(),
        }
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Encodes the next record into `out`; false at the end.
    fn next(&mut self, out: &mut Vec<u8>) -> bool {
        use std::fmt::Write;
        if self.i == self.n {
            return false;
        }
        self.i += 1;
        let id = if self.next_id > 0 && self.rand() % 100 < DUP_PERCENT {
            self.rand() % self.next_id
        } else {
            self.next_id += 1;
            self.next_id - 1
        };
        let h = splitmix(id);
        let series = splitmix(h) % self.series_count;
        let sh = splitmix(series ^ 0x5eed);
        let tenant = sh % TENANTS;
        let day = 18000 + (h >> 8) % DAYS;
        self.user.clear();
        write!(self.user, "tenant-{tenant}").ok();
        self.sid.clear();
        let (mut a, mut b) = (sh, splitmix(sh));
        for k in 0..43 {
            if k == 21 {
                a = b;
                b = splitmix(b);
            }
            self.sid.push(B64[(a & 63) as usize] as char);
            a = (a >> 6) | (b << 58);
            b >>= 6;
        }
        let from = 0x17a_0000_0000 + (h >> 20) % 0x1_0000_0000;
        self.chunk.clear();
        write!(
            self.chunk,
            "{}/{:016x}:{:011x}:{:011x}:{:08x}",
            self.user,
            sh,
            from,
            from + 7_200_000,
            splitmix(h) as u32
        )
        .ok();
        encode_record(out, &self.user, day as i64, &self.sid, &self.chunk);
        true
    }
}

/// Checks strict key order while counting.
#[derive(Default)]
struct Check {
    prev: Vec<u8>,
    count: u64,
}

impl Check {
    fn see(&mut self, key: &[u8]) {
        assert!(
            self.count == 0 || key > self.prev.as_slice(),
            "keys out of order at #{}",
            self.count
        );
        self.prev.clear();
        self.prev.extend_from_slice(key);
        self.count += 1;
    }
}

fn du(dir: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .arg("-sb")
        .arg(dir)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} <gen|extsort|sled|fjall|redb> <data-dir> [records]", args[0]);
        std::process::exit(2);
    }
    let cand = args[1].as_str();
    let dir = PathBuf::from(&args[2]);
    let n: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(3_000_000);
    std::fs::create_dir_all(&dir)?;
    let mut g = Gen::new(n);
    let mut key = Vec::with_capacity(256);
    let mut chk = Check::default();

    let t0 = Instant::now();
    let mut t_insert = std::time::Duration::ZERO;
    let mut disk = 0u64;
    let mut t1 = Instant::now();
    // Ends the insert phase: records its time and the bytes on disk (du is not timed).
    let end_insert = |t_insert: &mut std::time::Duration, disk: &mut u64, t1: &mut Instant| {
        *t_insert = t0.elapsed();
        *disk = du(&dir);
        *t1 = Instant::now();
    };
    match cand {
        "gen" => {
            // Baseline: generation + a BTreeSet-free count of produced records.
            let mut produced = 0u64;
            while g.next(&mut key) {
                produced += 1;
            }
            end_insert(&mut t_insert, &mut disk, &mut t1);
            chk.count = produced;
        }
        "extsort" => {
            let mut buf = RecordBuffer::default();
            let mut runs = Vec::new();
            while g.next(&mut key) {
                buf.push(&key);
                if buf.is_full(64 << 20) {
                    let p = dir.join(format!("{:05}.run", runs.len()));
                    buf.spill(&p)?;
                    runs.push(p);
                }
            }
            if !buf.is_empty() {
                let p = dir.join(format!("{:05}.run", runs.len()));
                buf.spill(&p)?;
                runs.push(p);
            }
            drop(buf);
            end_insert(&mut t_insert, &mut disk, &mut t1);
            eprintln!("extsort: {} runs", runs.len());
            let mut m = RunMerger::open(&runs)?;
            while let Some(r) = m.next_record()? {
                chk.see(r);
            }
        }
        "sled" => {
            let db = sled::open(&dir)?;
            while g.next(&mut key) {
                db.insert(key.as_slice(), &[] as &[u8])?;
            }
            db.flush()?;
            end_insert(&mut t_insert, &mut disk, &mut t1);
            for kv in db.iter() {
                let (k, _) = kv?;
                chk.see(&k);
            }
        }
        "fjall" => {
            use fjall::{Database, KeyspaceCreateOptions, PersistMode};
            let db = Database::builder(&dir).open()?;
            let ks = db.keyspace("records", KeyspaceCreateOptions::default)?;
            while g.next(&mut key) {
                ks.insert(key.as_slice(), &[] as &[u8])?;
            }
            db.persist(PersistMode::SyncAll)?;
            end_insert(&mut t_insert, &mut disk, &mut t1);
            for guard in ks.iter() {
                let k = guard.key()?;
                chk.see(&k);
            }
        }
        "redb" => {
            use redb::{ReadableDatabase, ReadableTable, TableDefinition};
            const T: TableDefinition<&[u8], ()> = TableDefinition::new("records");
            let db = redb::Database::create(dir.join("records.redb"))?;
            let mut more = true;
            while more {
                let tx = db.begin_write()?;
                {
                    let mut table = tx.open_table(T)?;
                    for _ in 0..100_000 {
                        if !g.next(&mut key) {
                            more = false;
                            break;
                        }
                        table.insert(key.as_slice(), ())?;
                    }
                }
                tx.commit()?;
            }
            end_insert(&mut t_insert, &mut disk, &mut t1);
            let rx = db.begin_read()?;
            let table = rx.open_table(T)?;
            for kv in table.iter()? {
                let (k, _) = kv?;
                chk.see(k.value());
            }
        }
        other => return Err(format!("unknown candidate {other}").into()),
    }
    let t_iter = t1.elapsed();
    println!(
        "{cand} insert_s={:.2} iterate_s={:.2} disk_bytes={disk} distinct={}",
        t_insert.as_secs_f64(),
        t_iter.as_secs_f64(),
        chk.count
    );
    Ok(())
}
