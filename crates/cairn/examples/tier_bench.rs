//! The tiered store's benchmark (docs/benchmarks.md, "Tiered store"); run by
//! `bench/tier/run.sh`, which starts Garage with its data on /dev/shm.
//!
//! Interleaved rounds, one process, so both sides of each ratio see the same machine state:
//! - hot read of 1 MiB through `tier+s3://` vs a plain `file://` read;
//! - cold read of 1 MiB through the tier (evicted first) vs a direct `s3://` read;
//! - write-back put of 64 KiB vs a plain `file://` put (both fsync), with the default
//!   `flush_delay` and with uploads at once;
//! - hit rates on a Zipf(1.0) trace over a working set 10x the hot size: the tier itself,
//!   and LRU, SIEVE and S3-FIFO simulated on the same trace;
//! - RSS while the hot tier fills from S3.
//!
//! Env: TIER_BENCH_S3 (an s3:// URL with its options), TIER_BENCH_DIR (the local directory
//! for the file:// baseline and the hot tiers; default target/tier-bench), TIER_BENCH_ROUNDS.

use bytes::Bytes;
use cairn::{Config, DynStore, Key, StoreExt};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn rss_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn body(n: usize, seed: u64) -> Bytes {
    // JSON lines: what segments and reports look like (compressible if a layer compresses).
    let mut s = String::with_capacity(n + 64);
    let mut i = seed;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"seq\":{i},\"account\":\"acct-{:05}\",\"amount\":{}}}\n",
            i % 997,
            i * 31 % 10_007
        ));
        i += 1;
    }
    s.truncate(n);
    Bytes::from(s)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One side of a comparison: per-op seconds of each round, and CPU seconds in total.
#[derive(Default)]
struct Side {
    per_op: Vec<f64>,
    cpu: f64,
}

struct Row {
    what: &'static str,
    a_name: &'static str,
    a: Side,
    b_name: &'static str,
    b: Side,
    ops: usize,
}

fn print_rows(rows: &mut [Row]) {
    println!("| measure | cairn tier | baseline | tier / baseline | CPU s tier / baseline |");
    println!("|---|---|---|---|---|");
    for r in rows.iter_mut() {
        let (ma, mb) = (median(&mut r.a.per_op), median(&mut r.b.per_op));
        println!(
            "| {} ({} ops × {} rounds) | {}: {:.0} µs | {}: {:.0} µs | **{:.2}×** | {:.2} / {:.2} |",
            r.what,
            r.ops,
            r.a.per_op.len(),
            r.a_name,
            ma * 1e6,
            r.b_name,
            mb * 1e6,
            ma / mb,
            r.a.cpu,
            r.b.cpu
        );
    }
}

/// Times `ops` calls of `f` on each side per round, alternating which side goes first.
async fn interleave<FA, FB, A, B>(rounds: usize, ops: usize, mut fa: FA, mut fb: FB) -> (Side, Side)
where
    FA: FnMut(usize) -> A,
    FB: FnMut(usize) -> B,
    A: std::future::Future<Output = Duration>,
    B: std::future::Future<Output = Duration>,
{
    let (mut a, mut b) = (Side::default(), Side::default());
    for r in 0..rounds {
        for first in [r % 2 == 0, r % 2 != 0] {
            let c0 = cpu_secs();
            let mut total = Duration::ZERO;
            for i in 0..ops {
                total += if first {
                    fa(r * ops + i).await
                } else {
                    fb(r * ops + i).await
                };
            }
            let side = if first { &mut a } else { &mut b };
            side.cpu += cpu_secs() - c0;
            side.per_op.push(total.as_secs_f64() / ops as f64);
        }
    }
    (a, b)
}

async fn timed<T>(f: impl std::future::Future<Output = cairn::Result<T>>) -> Duration {
    let t = Instant::now();
    f.await.expect("bench operation");
    t.elapsed()
}

fn tier_url(s3: &str, hot: &Path, extra: &str) -> String {
    let sep = if s3.contains('?') { '&' } else { '?' };
    format!("tier+{s3}{sep}hot={}{extra}", hot.display())
}

fn with_prefix(s3: &str, sub: &str) -> String {
    match s3.split_once('?') {
        Some((base, q)) => format!("{}/{sub}?{q}", base.trim_end_matches('/')),
        None => format!("{}/{sub}", s3.trim_end_matches('/')),
    }
}

// --- Eviction policies, simulated on one trace (equal sizes: capacity in objects) ---------

fn sim_lru(trace: &[usize], cap: usize) -> f64 {
    let mut last: HashMap<usize, u64> = HashMap::new();
    let mut order: std::collections::BTreeMap<u64, usize> = Default::default();
    let mut hits = 0;
    for (t, &k) in trace.iter().enumerate() {
        let t = t as u64;
        if let Some(old) = last.insert(k, t) {
            order.remove(&old);
            hits += 1;
        } else if last.len() > cap {
            let (&ot, &ok) = order.iter().next().unwrap();
            order.remove(&ot);
            last.remove(&ok);
        }
        order.insert(t, k);
    }
    hits as f64 / trace.len() as f64
}

fn sim_sieve(trace: &[usize], cap: usize) -> f64 {
    // Newest at the back; the hand walks from the front (oldest), clearing visited bits.
    let mut q: VecDeque<(usize, bool)> = VecDeque::new();
    let mut pos: HashMap<usize, ()> = HashMap::new();
    let mut hits = 0;
    for &k in trace {
        if pos.contains_key(&k) {
            hits += 1;
            if let Some(e) = q.iter_mut().find(|e| e.0 == k) {
                e.1 = true;
            }
            continue;
        }
        if q.len() >= cap {
            loop {
                let (key, visited) = q.pop_front().unwrap();
                if visited {
                    q.push_back((key, false));
                } else {
                    pos.remove(&key);
                    break;
                }
            }
        }
        q.push_back((k, false));
        pos.insert(k, ());
    }
    hits as f64 / trace.len() as f64
}

fn sim_s3fifo(trace: &[usize], cap: usize) -> f64 {
    let small_cap = (cap / 10).max(1);
    let main_cap = cap - small_cap;
    let (mut small, mut main, mut ghost) = (VecDeque::new(), VecDeque::new(), VecDeque::new());
    let mut freq: HashMap<usize, u8> = HashMap::new();
    let mut hits = 0;
    for &k in trace {
        if let Some(f) = freq.get_mut(&k) {
            *f = (*f + 1).min(3);
            hits += 1;
            continue;
        }
        // Insert: into main if the ghost remembers it, else into small.
        if let Some(i) = ghost.iter().position(|g| *g == k) {
            ghost.remove(i);
            main.push_back(k);
        } else {
            small.push_back(k);
        }
        freq.insert(k, 0);
        while small.len() + main.len() > cap {
            if small.len() > small_cap || main.is_empty() {
                let v = small.pop_front().unwrap();
                if freq[&v] > 0 && main.len() < main_cap + 1 {
                    freq.insert(v, 0);
                    main.push_back(v);
                } else {
                    freq.remove(&v);
                    ghost.push_back(v);
                    if ghost.len() > main_cap {
                        ghost.pop_front();
                    }
                }
            } else {
                let v = main.pop_front().unwrap();
                let f = freq[&v];
                if f > 0 {
                    freq.insert(v, f - 1);
                    main.push_back(v);
                } else {
                    freq.remove(&v);
                }
            }
        }
    }
    hits as f64 / trace.len() as f64
}

fn zipf_trace(n: usize, len: usize, seed: u64) -> Vec<usize> {
    let weights: Vec<f64> = (1..=n).map(|i| 1.0 / i as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            // Ranks are scattered over the key space, so no key range is special.
            let rank = cdf.partition_point(|c| *c < u).min(n - 1);
            (rank * 7919) % n
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> cairn::Result<()> {
    let s3 = std::env::var("TIER_BENCH_S3").expect("TIER_BENCH_S3=s3://bucket/prefix?endpoint=...");
    let dir = PathBuf::from(std::env::var("TIER_BENCH_DIR").unwrap_or("target/tier-bench".into()));
    let rounds: usize = std::env::var("TIER_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = std::fs::canonicalize(&dir).unwrap();
    let run = format!("{:08x}", rand::random::<u32>());
    let s3 = with_prefix(&s3, &format!("tier-bench/{run}"));
    let local: DynStore = cairn::open(&format!("file://{}", dir.join("local").display())).await?;
    let direct: DynStore = cairn::open(&s3).await?;
    let mut rows = Vec::new();

    // Hot read: one 1 MiB object, read whole; the tier serves it from hot.
    {
        let t = cairn::open_tier(
            &tier_url(&s3, &dir.join("hot-read"), "&immutable=true"),
            Config::default(),
        )
        .await?;
        let k = Key::new("hot/1mib.json")?;
        let data = body(MIB, 1);
        local.put(&k, data.clone()).await?;
        t.store.put(&k, data).await?;
        let (a, b) = interleave(
            rounds,
            100,
            |_| timed(t.store.get(&k)),
            |_| timed(local.get(&k)),
        )
        .await;
        assert_eq!(t.tier.stats().misses, 0, "every tier read was a hit");
        rows.push(Row {
            what: "hot read, 1 MiB",
            a_name: "tier+s3 (hit)",
            a,
            b_name: "file://",
            b,
            ops: 100,
        });
    }

    // Cold read: the same object evicted before each tier read (eviction not timed).
    {
        let t = cairn::open_tier(
            &tier_url(&s3, &dir.join("cold-read"), ""),
            Config::default(),
        )
        .await?;
        let k = Key::new("cold/1mib.json")?;
        direct.put(&k, body(MIB, 2)).await?;
        let ops = 30;
        let (a, b) = interleave(
            rounds,
            ops,
            |_| {
                let (t, k) = (&t, &k);
                async move {
                    t.tier
                        .evict(&t.stored_prefix("cold/"))
                        .await
                        .expect("evict");
                    timed(t.store.get(k)).await
                }
            },
            |_| timed(direct.get(&k)),
        )
        .await;
        assert_eq!(t.tier.stats().hits, 0, "every tier read was a miss");
        rows.push(Row {
            what: "cold read, 1 MiB",
            a_name: "tier+s3 (miss, fill)",
            a,
            b_name: "s3://",
            b,
            ops,
        });
    }

    // Write-back put: acknowledged once in hot and the journal (both fsynced); with the
    // default flush_delay (uploads wait 1 s) and with uploads at once, competing.
    for (delay, what, name) in [
        ("1s", "put, 64 KiB", "tier+s3 write-back"),
        (
            "0s",
            "put, 64 KiB, flush_delay=0s",
            "tier+s3 write-back, flush_delay=0s",
        ),
    ] {
        let t = cairn::open_tier(
            &tier_url(
                &s3,
                &dir.join(format!("write-back-{delay}")),
                &format!("&mode=write-back&flush_delay={delay}"),
            ),
            Config::default(),
        )
        .await?;
        let data = body(64 << 10, 3);
        let ops = 50;
        let (a, b) = interleave(
            rounds,
            ops,
            |i| {
                let k = Key::new(format!("wb{delay}/{i:06}.json")).unwrap();
                let (t, data) = (&t, data.clone());
                async move { timed(t.store.put(&k, data)).await }
            },
            |i| {
                let k = Key::new(format!("wb{delay}/{i:06}.json")).unwrap();
                let (local, data) = (&local, data.clone());
                async move { timed(local.put(&k, data)).await }
            },
        )
        .await;
        t.tier.flush().await?;
        rows.push(Row {
            what,
            a_name: name,
            a,
            b_name: "file://",
            b,
            ops,
        });
    }
    print_rows(&mut rows);

    // Hit rates: 1000 objects of 16 KiB, hot_max a tenth of that, a Zipf(1.0) trace.
    {
        let (n, size, len) = (1000usize, 16usize << 10, 20_000usize);
        let cold_dir = dir.join("zipf-cold");
        let cold: DynStore = cairn::open(&format!("file://{}", cold_dir.display())).await?;
        for i in 0..n {
            cold.put(&Key::new(format!("z/{i:04}"))?, body(size, i as u64))
                .await?;
        }
        let hot_max = (n * size / 10) as u64;
        let url = format!(
            "tier+file://{}?hot={}&hot_max={hot_max}&immutable=true",
            cold_dir.display(),
            dir.join("zipf-hot").display()
        );
        let t = cairn::open_tier(&url, Config::default()).await?;
        let trace = zipf_trace(n, len, 42);
        for &k in &trace {
            t.store.get(&Key::new(format!("z/{k:04}"))?).await?;
        }
        let s = t.tier.stats();
        // The tier's records are a few hundred bytes; count capacity in objects.
        let cap = n / 10;
        println!();
        println!("| Zipf(1.0), {n} objects, hot holds {cap} ({len} reads) | hit rate |");
        println!("|---|---|");
        println!(
            "| cairn tier (S3-FIFO, swept to 90% of hot_max when over) | {:.1}% |",
            s.hit_rate * 100.0
        );
        println!("| LRU, simulated | {:.1}% |", sim_lru(&trace, cap) * 100.0);
        println!(
            "| SIEVE, simulated | {:.1}% |",
            sim_sieve(&trace, cap) * 100.0
        );
        println!(
            "| S3-FIFO, simulated | {:.1}% |",
            sim_s3fifo(&trace, cap) * 100.0
        );
    }

    // RSS while the hot tier fills from S3: 256 objects of 1 MiB, read once each.
    {
        let t = cairn::open_tier(&tier_url(&s3, &dir.join("fill"), ""), Config::default()).await?;
        let n = 256;
        for i in 0..n {
            direct
                .put(&Key::new(format!("fill/{i:04}"))?, body(MIB, i as u64))
                .await?;
        }
        println!();
        println!("| hot tier filled | hot bytes | RSS | peak RSS |");
        println!("|---|---|---|---|");
        for i in 0..n {
            t.store.get(&Key::new(format!("fill/{i:04}"))?).await?;
            if (i + 1) % 64 == 0 {
                let s = t.tier.stats();
                println!(
                    "| {}/{n} | {} MiB | {} MiB | {} MiB |",
                    i + 1,
                    s.hot_bytes >> 20,
                    rss_kib("VmRSS:") >> 10,
                    rss_kib("VmHWM:") >> 10
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
