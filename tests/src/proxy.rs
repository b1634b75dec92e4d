//! An HTTP/1.1 fault-injecting reverse proxy for the S3 server, so tests can make a
//! real object store slow, flaky or broken for chosen paths while real processes use
//! it through their normal S3 client.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The name of every thread the proxy runs on.
pub const PROXY_THREAD: &str = "fault-proxy";

/// What a rule does to a matching request.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer with this status (and an S3-style error body) without forwarding.
    Status(u16),
    /// Wait, then forward.
    Delay(Duration),
}

/// A fault applied to requests whose method and path match.
#[derive(Debug, Clone)]
pub struct Rule {
    /// HTTP method (`GET`, `PUT`, …) or `None` for any.
    pub method: Option<&'static str>,
    /// Substring of the path (and query) that selects requests.
    pub path_contains: String,
    /// Only requests carrying this header with this value (name in lower case).
    pub header: Option<(&'static str, &'static str)>,
    /// Apply to every `every`-th matching request (1 = all).
    pub every: u64,
    /// The fault.
    pub fault: Fault,
}

struct State {
    upstream: String,
    /// The `Host` sent upstream instead of the client's (servers that route by it).
    host: Option<String>,
    rules: Mutex<Vec<(Rule, u64)>>,
    injected: AtomicU64,
    client: Client<QuickAckConnector, Full<Bytes>>,
}

/// The proxy (stops with the test process).
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<State>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`) that forwards
    /// the client's `Host` header, which S3 request signatures cover.
    pub fn start(upstream: &str) -> Self {
        Self::start_with_host(upstream, None)
    }

    /// Starts a proxy that sends upstream's own address as `Host`: fake-gcs-server
    /// routes by it and misreads requests naming the proxy.
    pub fn start_rewriting_host(upstream: &str) -> Self {
        let authority = upstream
            .split_once("://")
            .map_or(upstream, |(_, rest)| rest)
            .trim_end_matches('/');
        Self::start_with_host(upstream, Some(authority.to_owned()))
    }

    fn start_with_host(upstream: &str, host: Option<String>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            host,
            rules: Mutex::new(Vec::new()),
            injected: AtomicU64::new(0),
            client: Client::builder(TokioExecutor::new()).build(QuickAckConnector(connector)),
        });
        let st = Arc::clone(&state);
        // Named, so a bench can tell the proxy's CPU time from the builder's.
        let spawned = std::thread::Builder::new()
            .name(PROXY_THREAD.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(PROXY_THREAD)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        // Small answers must not wait for delayed ACKs (see the scheduler).
                        let _ = stream.set_nodelay(true);
                        let st = Arc::clone(&st);
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                let st = Arc::clone(&st);
                                async move { Ok::<_, Infallible>(handle(st, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                });
            });
        spawned.expect("spawn the proxy thread");
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Replaces the rules.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.state.rules.lock().expect("rules") = rules.into_iter().map(|r| (r, 0)).collect();
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let fault = {
        let mut rules = st.rules.lock().expect("rules");
        rules.iter_mut().find_map(|(rule, seen)| {
            let matches = rule.method.is_none_or(|m| m == req.method().as_str())
                && target.contains(&rule.path_contains)
                && rule.header.is_none_or(|(name, value)| {
                    req.headers()
                        .get(name)
                        .is_some_and(|v| v.as_bytes() == value.as_bytes())
                });
            if !matches {
                return None;
            }
            *seen += 1;
            (*seen % rule.every.max(1) == 0).then_some(rule.fault)
        })
    };
    match fault {
        Some(Fault::Status(code)) => {
            st.injected.fetch_add(1, Ordering::SeqCst);
            return Response::builder()
                .status(code)
                .body(Full::new(Bytes::from_static(
                    b"<Error><Code>InternalError</Code><Message>injected fault</Message></Error>",
                )))
                .expect("response");
        }
        Some(Fault::Delay(d)) => {
            st.injected.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(d).await;
        }
        None => {}
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error_response(),
    };
    let mut up = Request::builder()
        .method(parts.method)
        .uri(format!("{}{}", st.upstream, target));
    for (k, v) in &parts.headers {
        if st.host.is_none() || k != hyper::header::HOST {
            up = up.header(k, v);
        }
    }
    if let Some(host) = &st.host {
        up = up.header(hyper::header::HOST, host);
    }
    let Ok(up) = up.body(Full::new(body)) else {
        return error_response();
    };
    match st.client.request(up).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            match body.collect().await {
                Ok(b) => Response::from_parts(parts, Full::new(b.to_bytes())),
                Err(_) => error_response(),
            }
        }
        Err(_) => error_response(),
    }
}

fn error_response() -> Response<Full<Bytes>> {
    Response::builder()
        .status(502)
        .body(Full::new(Bytes::from_static(b"upstream failed")))
        .expect("response")
}

/// The proxy's upstream connector: TCP connections that acknowledge every segment at
/// once (`TCP_QUICKACK`, re-armed before each read because the kernel drops it).
/// A server that leaves Nagle on (s3s-fs does) writes an answer's head and body in
/// two segments and holds the body until the head is acknowledged; with delayed
/// ACKs every answer on a reused connection then waits 40 ms, which measures the
/// loopback's ACK timer instead of the server.
#[derive(Clone)]
struct QuickAckConnector(HttpConnector);

impl tower::Service<hyper::Uri> for QuickAckConnector {
    type Response = QuickAckStream;
    type Error = <HttpConnector as tower::Service<hyper::Uri>>::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<QuickAckStream, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move { connecting.await.map(QuickAckStream) })
    }
}

/// A connection made by [`QuickAckConnector`].
struct QuickAckStream(TokioIo<tokio::net::TcpStream>);

impl hyper::rt::Read for QuickAckStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // Best effort: a socket that refuses it only measures slower. Linux only;
        // elsewhere the proxy keeps the system's ACK timing.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = rustix::net::sockopt::set_tcp_quickack(self.0.inner(), true);
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for QuickAckStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for QuickAckStream {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}
