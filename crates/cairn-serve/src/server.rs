//! The HTTP side: accept (plain or TLS), limits on requests in flight, `/health`, the access
//! log, graceful shutdown. Everything S3 (XML, SigV4, presigned URLs, errors) is s3s's.

use crate::memory::{Memory, Reservation};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::S3Service;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What every connection shares.
pub(crate) struct Shared {
    pub s3: S3Service,
    /// Answers every request it gets with 503 SlowDown, rendered by s3s.
    pub slow_down: S3Service,
    pub global: Arc<Semaphore>,
    pub per_connection: usize,
    pub memory: Memory,
    pub access_log: bool,
}

/// One connection's service.
#[derive(Clone)]
struct Front {
    shared: Arc<Shared>,
    conn: Arc<Semaphore>,
    peer: SocketAddr,
}

/// Holds a request's permits until its response body has been sent.
pub struct Guarded {
    inner: s3s::Body,
    _permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    _memory: Option<Reservation>,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn is_health(req: &Request<Incoming>) -> bool {
    // Only unsigned requests: a signed GET /health is ListObjects on a bucket "health".
    req.uri().path() == "/health"
        && matches!(*req.method(), http::Method::GET | http::Method::HEAD)
        && !req.headers().contains_key(http::header::AUTHORIZATION)
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature"))
}

/// Bytes a request body holds in memory inside s3s: a payload signed as one chunk is read
/// whole to check its SHA-256. Streamed (aws-chunked) and unsigned payloads are not.
fn buffered_body(req: &Request<Incoming>) -> u64 {
    let signed_whole = req
        .headers()
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    if !signed_whole {
        return 0;
    }
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<Guarded>;
    type Error = s3s::HttpError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let start = Instant::now();
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let shared = &this.shared;
            if is_health(&req) {
                let resp = Response::builder()
                    .status(StatusCode::OK)
                    .header(http::header::CONTENT_TYPE, "text/plain")
                    .body(Guarded {
                        inner: s3s::Body::from("ok\n".to_string()),
                        _permits: None,
                        _memory: None,
                    })
                    .expect("valid response");
                return Ok(resp);
            }
            let permits = match (
                this.conn.clone().try_acquire_owned(),
                shared.global.clone().try_acquire_owned(),
            ) {
                (Ok(c), Ok(g)) => Some((c, g)),
                _ => None,
            };
            let (resp, memory) = if permits.is_some() {
                let memory = match buffered_body(&req) {
                    0 => None,
                    n => Some(shared.memory.reserve(n).await),
                };
                let mut req = req.map(s3s::Body::from);
                if memory.is_some() {
                    req.extensions_mut().insert(crate::memory::Held);
                }
                (shared.s3.call(req).await?, memory)
            } else {
                // Over a limit: s3s renders SlowDown for a bare request; the body is not read.
                let bare = Request::builder()
                    .uri("/")
                    .body(s3s::Body::empty())
                    .expect("valid request");
                (shared.slow_down.call(bare).await?, None)
            };
            let status = resp.status().as_u16();
            metrics::counter!(
                "cairn_serve_requests_total",
                "method" => method.as_str().to_string(),
                "status" => status.to_string()
            )
            .increment(1);
            metrics::histogram!("cairn_serve_request_seconds", "method" => method.as_str().to_string())
                .record(start.elapsed().as_secs_f64());
            if shared.access_log {
                tracing::info!(
                    target: "cairn_serve::access",
                    "{} {method} {path} {} {:.1}ms",
                    this.peer.ip(),
                    resp.status().as_u16(),
                    start.elapsed().as_secs_f64() * 1e3
                );
            }
            Ok(resp.map(|inner| Guarded {
                inner,
                _permits: permits,
                _memory: memory,
            }))
        })
    }
}

/// TLS settings, already loaded.
pub(crate) type Tls = Arc<tokio_rustls::rustls::ServerConfig>;

/// Serves on `listener` until `shutdown` resolves; then stops accepting and lets requests in
/// flight finish, for at most `grace`.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    // Out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        let front = Front {
            conn: Arc::new(Semaphore::new(shared.per_connection)),
            shared: shared.clone(),
            peer,
        };
        let http = http.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(tls) => {
                        let conn = http.serve_connection(TokioIo::new(tls), front);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                    Err(e) => tracing::debug!("TLS handshake with {peer}: {e}"),
                },
                None => {
                    let conn = http.serve_connection(TokioIo::new(socket), front);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("requests still in flight after {grace:?}; stopping anyway");
        }
    }
}
