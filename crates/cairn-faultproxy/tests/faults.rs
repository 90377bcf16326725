//! Each fault, seen from a plain HTTP client, against a tiny upstream that echoes what it got.

use bytes::Bytes;
use cairn_faultproxy::{Fault, FaultProxy, Plan, Rule};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;

const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Answers every request with BODY and an `x-host` header echoing the Host it received.
async fn upstream() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let host = req.headers()["host"].to_str().unwrap().to_string();
                        let mut r = Response::new(Full::new(Bytes::from_static(BODY)));
                        r.headers_mut().insert("x-host", host.parse().unwrap());
                        Ok::<_, std::convert::Infallible>(r)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn rule(s: &str) -> Plan {
    Plan {
        rules: vec![s.parse::<Rule>().unwrap()],
        stall: Duration::from_millis(300),
        ..Plan::clean()
    }
}

/// GETs `path` through `proxy` with Host `signed.example`: the status and body, or the error.
async fn get(proxy: &FaultProxy, path: &str) -> Result<(u16, Bytes, String), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::get(format!("{}{path}", proxy.endpoint()))
        .header("host", "signed.example")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| format!("request: {e:?}"))?;
    let status = r.status().as_u16();
    let host = r
        .headers()
        .get("x-host")
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e:?}"))?
        .to_bytes();
    Ok((status, body, host))
}

#[tokio::test]
async fn clean_requests_pass_unchanged_with_their_host() {
    let p = FaultProxy::start(&upstream().await, Plan::clean())
        .await
        .unwrap();
    let (status, body, host) = get(&p, "/bucket/key").await.unwrap();
    assert_eq!(
        (status, &body[..], host.as_str()),
        (200, BODY, "signed.example")
    );
    assert_eq!(p.counts().requests, 1);
    assert_eq!(p.counts().total(), 0);
}

#[tokio::test]
async fn each_fault_does_what_it_says() {
    let up = upstream().await;
    let p = FaultProxy::start(&up, Plan::clean()).await.unwrap();
    for (code, name, s3code) in [
        (500, "500", "InternalError"),
        (503, "slowdown", "SlowDown"),
        (503, "unavailable", "ServiceUnavailable"),
        (429, "429", "TooManyRequests"),
    ] {
        p.set_plan(rule(&format!("{name}=1")));
        let (status, body, _) = get(&p, "/b/k").await.unwrap();
        assert_eq!(status, code, "{name}");
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains(&format!("<Error><Code>{s3code}</Code>")),
            "{name}: {body}"
        );
    }
    p.set_plan(rule("reset=1"));
    let e = get(&p, "/b/k").await.unwrap_err();
    assert!(e.starts_with("request"), "{e}");

    p.set_plan(rule("stall=1"));
    let t = std::time::Instant::now();
    let e = get(&p, "/b/k").await.unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(300), "{e}");

    p.set_plan(rule("flip=1"));
    let (status, body, _) = get(&p, "/b/k").await.unwrap();
    assert_eq!((status, body.len()), (200, BODY.len()));
    let diff: u32 = body
        .iter()
        .zip(BODY)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert_eq!(diff, 1, "exactly one bit flipped");
    // Listings are never mangled.
    let (_, body, _) = get(&p, "/b?list-type=2").await.unwrap();
    assert_eq!(&body[..], BODY);

    p.set_plan(rule("truncate=1"));
    let e = get(&p, "/b/k").await.unwrap_err();
    assert!(e.starts_with("body"), "{e}");

    let c = p.counts();
    assert_eq!(c.requests, 9);
    for f in Fault::ALL {
        assert_eq!(c.of(f), 1, "{f}: {c}");
    }
}

#[tokio::test]
async fn slowdown_above_n_in_flight() {
    let p = FaultProxy::start(
        &upstream().await,
        Plan {
            slowdown_above: Some(2),
            ..Plan::clean()
        },
    )
    .await
    .unwrap();
    // One at a time: never over the limit.
    for _ in 0..5 {
        assert_eq!(get(&p, "/b/k").await.unwrap().0, 200);
    }
    assert_eq!(p.counts().of(Fault::SlowDown), 0);
    // Many at once, half of them held 300 ms by a stall: more than 2 are in flight.
    p.set_plan(Plan {
        slowdown_above: Some(2),
        ..rule("stall=0.5")
    });
    let p = std::sync::Arc::new(p);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let p = p.clone();
        set.spawn(async move { get(&p, "/b/k").await });
    }
    let _ = set.join_all().await;
    assert!(p.counts().of(Fault::SlowDown) > 0, "{}", p.counts());
}
