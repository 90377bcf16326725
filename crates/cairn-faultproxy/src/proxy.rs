//! The server: accepts on 127.0.0.1, applies the plan's fault to each request, forwards the
//! rest unchanged to the upstream (hyper's client, Host header kept) and mangles object GET
//! bodies where the plan says so.

use crate::counts::{Counters, Counts};
use crate::plan::{Fault, Plan};
use bytes::Bytes;
use futures::StreamExt;
use http::{header, Response, StatusCode, Uri};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Request;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// `GET` on this path answers the counts as one text line instead of forwarding (bucket names
/// cannot hold `_`, so no S3 request uses it).
pub const COUNTS_PATH: &str = "/__faultproxy/counts";

/// A running proxy; dropping it stops it and every connection it holds.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: http::uri::Authority,
    client: Client<HttpConnector, Incoming>,
    plan: RwLock<Arc<Plan>>,
    seq: AtomicU64,
    in_flight: AtomicUsize,
    counters: Counters,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, plan: Plan) -> io::Result<FaultProxy> {
        FaultProxy::bind(SocketAddr::from(([127, 0, 0, 1], 0)), upstream, plan).await
    }

    /// Starts a proxy listening on `listen`.
    pub async fn bind(listen: SocketAddr, upstream: &str, plan: Plan) -> io::Result<FaultProxy> {
        let upstream = parse_upstream(upstream)?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
            plan: RwLock::new(Arc::new(plan)),
            seq: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            counters: Counters::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give a client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen and faults injected so far.
    pub fn counts(&self) -> Counts {
        self.shared.counters.snapshot()
    }

    /// Replaces the plan for the requests that come next (e.g. to stop the faults).
    pub fn set_plan(&self, plan: Plan) {
        *self.shared.plan.write().expect("plan lock") = Arc::new(plan);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn parse_upstream(upstream: &str) -> io::Result<http::uri::Authority> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("upstream {upstream:?}: {why}; give it as http://HOST:PORT"),
        )
    };
    let rest = match upstream.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => return Err(bad(&format!("scheme {scheme} is not supported"))),
        None => upstream,
    };
    rest.trim_end_matches('/')
        .parse()
        .map_err(|_| bad("not a host and port"))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here, so aborting this task aborts every connection too.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let shared = shared.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), fd, req));
            // A connection ends in an error whenever a fault cuts it: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Holds one slot of the in-flight count.
struct InFlight<'a>(&'a AtomicUsize, usize);

impl<'a> InFlight<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        let now = n.fetch_add(1, Ordering::SeqCst) + 1;
        InFlight(n, now)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    shared: Arc<Shared>,
    fd: RawFd,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    if req.uri().path() == COUNTS_PATH {
        return Ok(text(StatusCode::OK, shared.counters.snapshot().to_string()));
    }
    shared.counters.request();
    let n = shared.seq.fetch_add(1, Ordering::Relaxed);
    let flight = InFlight::enter(&shared.in_flight);
    let plan = shared.plan.read().expect("plan lock").clone();
    if plan.slowdown_above.is_some_and(|limit| flight.1 > limit) {
        shared.counters.injected(Fault::SlowDown);
        return Ok(slow_down());
    }
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let chosen = plan.choose(n, req.method(), req.uri().query());
    let status = |s: u16, code: &str, msg: &str| {
        Ok(s3_error(StatusCode::from_u16(s).expect("valid"), code, msg))
    };
    if let Some((fault, _)) = chosen {
        if !matches!(fault, Fault::Truncate | Fault::Flip) {
            shared.counters.injected(fault);
        }
        match fault {
            Fault::Reset => {
                reset(fd);
                return Err("fault proxy: injected reset".into());
            }
            Fault::Stall => {
                tokio::time::sleep(plan.stall).await;
                reset(fd);
                return Err("fault proxy: injected stall".into());
            }
            Fault::InternalError => {
                return status(
                    500,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            }
            Fault::SlowDown => return Ok(slow_down()),
            Fault::Unavailable => {
                return status(
                    503,
                    "ServiceUnavailable",
                    "Service is unable to handle request.",
                )
            }
            Fault::TooManyRequests => {
                return status(429, "TooManyRequests", "Too many requests, slow down.")
            }
            Fault::Truncate | Fault::Flip => {}
        }
    }
    let resp = forward(&shared, req).await;
    match chosen {
        Some((fault @ (Fault::Truncate | Fault::Flip), word))
            if matches!(resp.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) =>
        {
            mangle(&shared.counters, resp, fault, word).await
        }
        _ => Ok(resp),
    }
}

async fn forward(shared: &Shared, mut req: Request<Incoming>) -> Response<Body> {
    let pq = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| "/".parse().expect("valid"));
    // Only where the bytes go changes; the Host header (which SigV4 signs) stays.
    *req.uri_mut() = Uri::builder()
        .scheme("http")
        .authority(shared.upstream.clone())
        .path_and_query(pq)
        .build()
        .expect("valid parts");
    match shared.client.request(req).await {
        Ok(r) => r.map(|b| b.map_err(BoxError::from).boxed()),
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            format!("fault proxy: upstream {} failed: {e}", shared.upstream),
        ),
    }
}

/// Reads the whole body, then flips one bit of it, or sends half of it under the full
/// Content-Length and breaks the connection. Bodies under 2 bytes pass untouched (uncounted).
async fn mangle(
    counters: &Counters,
    resp: Response<Body>,
    fault: Fault,
    word: u64,
) -> Result<Response<Body>, BoxError> {
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await?.to_bytes();
    if bytes.len() < 2 {
        return Ok(Response::from_parts(parts, full(bytes)));
    }
    counters.injected(fault);
    if fault == Fault::Flip {
        let mut v = bytes.to_vec();
        let bit = (word % (v.len() as u64 * 8)) as usize;
        v[bit / 8] ^= 1 << (bit % 8);
        return Ok(Response::from_parts(parts, full(Bytes::from(v))));
    }
    let half = bytes.slice(..bytes.len() / 2);
    // The pause lets hyper flush the half before the error closes the connection.
    let frames = futures::stream::once(async move { Ok(Frame::data(half)) }).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(BoxError::from("fault proxy: injected truncation"))
        }),
    );
    Ok(Response::from_parts(
        parts,
        BodyExt::boxed(StreamBody::new(frames)),
    ))
}

/// SO_LINGER 0: closing the socket sends RST instead of FIN.
fn reset(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is the connection this request arrived on; hyper holds it open while the
    // request's service future runs, and the option struct outlives the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().expect("valid"));
    r
}

fn slow_down() -> Response<Body> {
    s3_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "SlowDown",
        "Please reduce your request rate.",
    )
}

/// An S3 error response: `<Error><Code>..</Code><Message>..</Message></Error>`.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>faultproxy</RequestId></Error>"
    );
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/xml".parse().expect("valid"),
    );
    r
}
