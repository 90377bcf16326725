//! Backpressure: 2,000 small objects copied to Garage through a proxy that answers 503
//! SlowDown to every request beyond 8 in flight (as S3 does per prefix under load). cairn's
//! AIMD limit (backend/s3/throttle.rs) comes down to what the server takes, the transfer
//! completes with every object intact, and the limit goes back up once the SlowDowns stop.
//!
//! Its time against fixed concurrency is measured by bench/reliability/backpressure.sh, not
//! here: a timed test is a flaky test.

mod proxy_support;

use bytes::Bytes;
use cairn::ops::reporter::NoReporter;
use cairn::transfer::{transfer_tree, TransferOptions};
use cairn::{Key, StoreExt};
use cairn_faultproxy::{Fault, Plan};
use futures::{StreamExt, TryStreamExt};
use proxy_support::{knob, unique_prefix, GARAGE};

/// Requests the proxy lets through at once.
const IN_FLIGHT: usize = 8;
/// Every request is held this long at the proxy: requests then stay in flight as long on a
/// loaded machine as on an idle one, so the client keeps more than `IN_FLIGHT` of them going
/// and meets the SlowDowns however slowly it runs itself (under CI's load it once did not,
/// and the limit never came down).
const LATENCY: std::time::Duration = std::time::Duration::from_millis(20);

/// The AIMD limit, as the gauge `cairn_http_concurrency_limit` shows it.
fn limit() -> f64 {
    try_limit()
        .unwrap_or_else(|| panic!("no limit gauge in:\n{}", cairn::metrics::prometheus_text()))
}

/// The limit, None before the first request set the gauge.
fn try_limit() -> Option<f64> {
    cairn::metrics::prometheus_text()
        .lines()
        .find_map(|l| l.strip_prefix("cairn_http_concurrency_limit "))
        .map(|v| v.trim().parse().unwrap())
}

async fn source(n: usize, tag: &str) -> cairn::DynStore {
    let mem = cairn::open("memory://").await.unwrap();
    for i in 0..n {
        let k = Key::new(format!("{tag}/o{i:05}")).unwrap();
        mem.put(&k, body(tag, i)).await.unwrap();
    }
    mem
}

fn body(tag: &str, i: usize) -> Bytes {
    cairn::testkit::pattern(1024 + i % 512, i as u64 ^ tag.len() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_objects_complete_under_slowdown_and_the_limit_recovers() {
    cairn::metrics::install_prometheus(None).unwrap();
    let n: usize = knob("CAIRN_BACKPRESSURE_OBJECTS", 2000);
    let proxy = GARAGE
        .proxy(Plan {
            slowdown_above: Some(IN_FLIGHT),
            latency: LATENCY,
            ..Plan::clean()
        })
        .await;
    let prefix = unique_prefix("backpressure");
    let via = GARAGE.open(&proxy.endpoint(), &prefix, &[]).await;
    let opts = TransferOptions {
        object_concurrency: 32,
        ..Default::default()
    };

    let src = source(n, "a").await;
    // The limit is sampled while the SlowDowns come: at the very end it drifts up again, as
    // the last requests drain with fewer than the server takes in flight.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn({
        let done = done.clone();
        async move {
            let mut samples = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                samples.extend(try_limit());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            samples
        }
    });
    let s = transfer_tree(&*src, "", &*via, "", &opts, &NoReporter)
        .await
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut samples = sampler.await.unwrap();
    assert_eq!((s.transferred, s.failed), (n as u64, 0), "{:?}", s.failures);
    let throttled = proxy.counts().of(Fault::SlowDown);
    assert!(
        throttled > 0,
        "the proxy never pushed back: {}",
        proxy.counts()
    );
    // The median over the second half of the run, once the first halvings brought it down
    // from its start: AIMD saws around what the server takes, far below the 32 objects asked.
    let mut late = samples.split_off(samples.len() / 2);
    late.sort_by(f64::total_cmp);
    let after_slowdown = late[late.len() / 2];
    assert!(
        after_slowdown <= 2.0 * IN_FLIGHT as f64,
        "the limit stayed at {after_slowdown} (median of the second half) under SlowDown \
         above {IN_FLIGHT}"
    );

    // The SlowDowns stop: the limit climbs back above what the server took before.
    proxy.set_plan(Plan {
        latency: LATENCY,
        ..Plan::clean()
    });
    let src_b = source(n / 2, "b").await;
    let s = transfer_tree(&*src_b, "", &*via, "", &opts, &NoReporter)
        .await
        .unwrap();
    assert_eq!(s.failed, 0, "{:?}", s.failures);
    let recovered = limit();
    assert!(
        recovered >= 2.0 * after_slowdown && recovered > IN_FLIGHT as f64,
        "the limit rose only from {after_slowdown} to {recovered}"
    );
    println!(
        "backpressure: {n} objects, {throttled} SlowDowns, limit {after_slowdown} under them, \
         {recovered} after {} clean copies",
        n / 2
    );

    // Every object is on the server as it was sent, read around the proxy.
    let direct = GARAGE.direct(&prefix).await;
    let listed: Vec<_> = direct.list_objects("").try_collect().await.unwrap();
    assert_eq!(listed.len(), n + n / 2);
    let bad = futures::stream::iter(listed)
        .map(|m| {
            let direct = &direct;
            async move {
                let (tag, i) = m.key.as_str().split_once("/o").unwrap();
                let want = body(tag, i.parse().unwrap());
                (direct.get(&m.key).await.unwrap() != want).then_some(m.key)
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect::<Vec<_>>()
        .await;
    assert!(bad.is_empty(), "objects not as sent: {bad:?}");
}
