//! A real Prometheus server (Debian package) serves our blocks: raw samples from a
//! range selector and a `query_range` both match the ground truth.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use blocksconvert_tests::{DAY_MS, DAYS, Labels, expected, write_expected_block};

const TENANT: &str = "acme";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn get(url: &str) -> Result<serde_json::Value, String> {
    let mut resp = ureq::get(url).call().map_err(|e| e.to_string())?;
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_serves_our_blocks() {
    let data = tempfile::tempdir().expect("tmp");
    for (i, day) in DAYS.iter().enumerate() {
        write_expected_block(
            TENANT,
            *day,
            &format!("01M7XKPNRX3J9BK4WV9CHQSEX{i}"),
            data.path(),
        );
    }
    let config = data.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("config");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.path().display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the `prometheus` server is required (Debian package `prometheus`; scripts/test installs it)");
    let _server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{base}/-/ready")).call().is_err() {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    for day in DAYS {
        let want = expected(TENANT, day);
        // Raw samples: a 1d range selector evaluated at the last millisecond of the day.
        let t = ((day + 1) * DAY_MS - 1) as f64 / 1000.0;
        let q = enc("{__name__=~\".+\"}[1d]");
        let v = get(&format!("{base}/api/v1/query?query={q}&time={t}")).expect("query");
        assert_eq!(v["status"], "success", "{v}");
        let mut got: BTreeMap<Labels, Vec<(i64, String)>> = BTreeMap::new();
        for r in v["data"]["result"].as_array().expect("matrix") {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(r["metric"].clone()).expect("labels");
            let samples = r["values"]
                .as_array()
                .expect("values")
                .iter()
                .filter_map(|p| {
                    let ts = (p[0].as_f64().expect("ts") * 1000.0).round() as i64;
                    (ts >= day * DAY_MS).then(|| (ts, p[1].as_str().expect("value").to_owned()))
                });
            got.insert(labels.into_iter().collect(), samples.collect());
        }
        let mut compared = 0;
        for s in &want {
            // PromQL drops stale markers from range vectors.
            let w: Vec<(i64, u64)> = s
                .samples
                .iter()
                .copied()
                .filter(|x| x.1 != blocksconvert_tests::STALE_BITS)
                .collect();
            let g = got.get(&s.labels).cloned().unwrap_or_default();
            assert_eq!(g.len(), w.len(), "{day} {:?}", s.labels);
            for ((gt, gv), (wt, wv)) in g.iter().zip(&w) {
                assert_eq!(gt, wt);
                let gv: f64 = gv.parse().expect("float");
                let wv = f64::from_bits(*wv);
                assert!(
                    gv.to_bits() == wv.to_bits() || (gv.is_nan() && wv.is_nan()),
                    "{day} {:?} @{gt}",
                    s.labels
                );
            }
            compared += w.len();
        }
        assert!(compared > 20_000, "compared {compared} samples");

        // query_range: hourly sample counts of the node target over the day.
        let series = want
            .iter()
            .find(|s| {
                s.labels
                    .iter()
                    .any(|l| l == &("__name__".into(), "node_load1".into()))
            })
            .expect("node_load1 in the corpus");
        let q = enc("count_over_time(node_load1[1h])");
        let (start, end) = (day * DAY_MS / 1000 + 3600, (day + 1) * DAY_MS / 1000 - 3600);
        let v = get(&format!(
            "{base}/api/v1/query_range?query={q}&start={start}&end={end}&step=3600"
        ))
        .expect("range");
        let result = v["data"]["result"].as_array().expect("matrix");
        assert_eq!(result.len(), 1, "{v}");
        let points = result[0]["values"].as_array().expect("values");
        assert_eq!(points.len(), 23);
        for p in points {
            let t = p[0].as_i64().expect("ts") * 1000;
            let n: usize = p[1].as_str().expect("v").parse().expect("count");
            let want_n = series
                .samples
                .iter()
                .filter(|(ts, v)| {
                    *ts >= t - 3_600_000 && *ts <= t && *v != blocksconvert_tests::STALE_BITS
                })
                .count();
            assert_eq!(n, want_n, "count at {t}");
        }
    }
}
