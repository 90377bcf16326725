//! Use case 001: a distributed ledger's segment store, with S3 as its cold storage.
//!
//! Each shard of the ledger appends records (JSON lines) to an active segment,
//! `segments/active/{shard}.seg`, and seals it as `segments/{shard}/{seq:016}.seg`; an index,
//! `index/{shard}.json`, names every sealed segment with its SHA-256. The use case asked for
//! put/get/delete/list of segments and a health check on S3, then read-through from S3 for
//! cold data, compression of what is archived, and tiering. The example runs the segment store
//! twice:
//!
//! 1. on the plain store, `s3://bucket/prefix/plain`;
//! 2. through a local hot tier, `tier+s3://bucket/prefix/tiered?hot=DIR&mode=write-back&...`:
//!    segments are acknowledged once on local disk and uploaded zstd-compressed by a background
//!    flusher; after `flush()` S3 (opened directly) must hold every byte; `evict` empties hot and
//!    reads refill it; the `hot_max` quota drops old segments while the pinned active ones stay;
//!    `immutable=true` serves sealed segments without asking S3 again, and `verify` audits that.
//!
//! The store comes from the use case's environment names (`STORAGE_TYPE=s3`, `S3_BUCKET_NAME`,
//! `S3_PREFIX`, `S3_ENDPOINT_URL`, `S3_REGION`, `S3_PATH_STYLE`) and the AWS credential chain;
//! without them it runs on the local default store. Any mismatch exits non-zero.

use bytes::Bytes;
use cairn::layer::{TierStats, TieredStore};
use cairn::{DynStore, ErrorKind, Key, StoreExt};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SHARDS: u32 = 3;
const SEALED_PER_SHARD: u64 = 4;
const RECORDS_PER_SEGMENT: u64 = 400;

/// Ends the run with an error (exit 1) unless `ok`.
fn ensure(ok: bool, what: impl std::fmt::Display) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("mismatch: {what}").into())
    }
}

fn segment_key(shard: u32, seq: u64) -> Key {
    Key::new(format!("segments/{shard}/{seq:016}.seg")).expect("valid key")
}

fn active_key(shard: u32) -> Key {
    Key::new(format!("segments/active/{shard}.seg")).expect("valid key")
}

fn index_key(shard: u32) -> Key {
    Key::new(format!("index/{shard}.json")).expect("valid key")
}

/// `n` ledger records from transaction `first` on, one JSON object per line. Deterministic, so
/// any copy can be checked against a fresh rendering.
fn records(shard: u32, first: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for tx in first..first + n {
        let rec = serde_json::json!({
            "tx": tx,
            "shard": shard,
            "from": format!("acct-{:04}", (tx * 7919 + u64::from(shard)) % 500),
            "to": format!("acct-{:04}", (tx * 104_729 + 3) % 500),
            "amount_cents": (tx * 2_654_435_761) % 1_000_000,
            "ts": 1_767_225_600 + tx,
        });
        out.extend_from_slice(rec.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn sealed_bytes(shard: u32, seq: u64) -> Bytes {
    records(shard, seq * RECORDS_PER_SEGMENT, RECORDS_PER_SEGMENT).into()
}

/// What the active segment holds after `appends` appends of 50 records.
fn active_bytes(shard: u32, appends: u64) -> Bytes {
    records(shard, SEALED_PER_SHARD * RECORDS_PER_SEGMENT, 50 * appends).into()
}

/// One sealed segment, as the shard's index records it.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct IndexEntry {
    seq: u64,
    key: String,
    first_tx: u64,
    records: u64,
    bytes: u64,
    sha256: String,
}

/// The ledger's segment store: the operations of the use case's `S3Storage`, over any store.
struct Segments {
    store: DynStore,
}

impl Segments {
    async fn put_segment(&self, shard: u32, seq: u64, data: Bytes) -> Res<()> {
        self.store.put(&segment_key(shard, seq), data).await?;
        Ok(())
    }

    async fn get_segment(&self, shard: u32, seq: u64) -> Res<Bytes> {
        Ok(self.store.get(&segment_key(shard, seq)).await?)
    }

    async fn delete_segment(&self, shard: u32, seq: u64) -> Res<()> {
        Ok(self.store.delete(&segment_key(shard, seq)).await?)
    }

    /// The sealed segments of `shard`, in order: zero-padded numbers list in key order.
    async fn list_segments(&self, shard: u32) -> Res<Vec<u64>> {
        let prefix = format!("segments/{shard}/");
        let metas: Vec<_> = self.store.list_objects(&prefix).try_collect().await?;
        metas
            .iter()
            .map(|m| {
                let name = &m.key.as_str()[prefix.len()..];
                let seq = name.strip_suffix(".seg").and_then(|s| s.parse().ok());
                seq.ok_or_else(|| format!("not a segment: {}", m.key).into())
            })
            .collect()
    }

    async fn health_check(&self) -> Res<()> {
        Ok(self.store.health_check().await?)
    }

    async fn write_index(&self, shard: u32, entries: &[IndexEntry]) -> Res<()> {
        let json = serde_json::to_vec_pretty(entries)?;
        self.store.put(&index_key(shard), json).await?;
        Ok(())
    }

    async fn read_index(&self, shard: u32) -> Res<Vec<IndexEntry>> {
        Ok(serde_json::from_slice(
            &self.store.get(&index_key(shard)).await?,
        )?)
    }
}

/// The ledger's life on `seg`: seal segments, append to the active ones, index them, then list
/// and read everything back against the index.
async fn run_ledger(seg: &Segments) -> Res<()> {
    for shard in 0..SHARDS {
        let mut index = Vec::new();
        for seq in 0..SEALED_PER_SHARD {
            let data = sealed_bytes(shard, seq);
            seg.put_segment(shard, seq, data.clone()).await?;
            index.push(IndexEntry {
                seq,
                key: segment_key(shard, seq).to_string(),
                first_tx: seq * RECORDS_PER_SEGMENT,
                records: RECORDS_PER_SEGMENT,
                bytes: data.len() as u64,
                sha256: hex::encode(Sha256::digest(&data)),
            });
        }
        seg.write_index(shard, &index).await?;
        // S3 cannot append: each append rewrites the active segment. Through a write-back tier
        // a rewrite costs a local write; only what is current at a flush travels.
        for appends in 1..=3 {
            seg.store
                .put(&active_key(shard), active_bytes(shard, appends))
                .await?;
        }
    }
    for shard in 0..SHARDS {
        let listed = seg.list_segments(shard).await?;
        let want: Vec<u64> = (0..SEALED_PER_SHARD).collect();
        ensure(listed == want, format!("shard {shard} lists {listed:?}"))?;
        for e in seg.read_index(shard).await? {
            let data = seg.get_segment(shard, e.seq).await?;
            let sha = hex::encode(Sha256::digest(&data));
            ensure(
                data.len() as u64 == e.bytes && sha == e.sha256,
                format!("{} differs from its index entry", e.key),
            )?;
        }
    }
    seg.health_check().await
}

/// Deletes a sealed segment (retention) and checks it is gone from reads and listings.
async fn retire_first_segment(seg: &Segments) -> Res<()> {
    seg.delete_segment(0, 0).await?;
    let listed = seg.list_segments(0).await?;
    ensure(
        listed == (1..SEALED_PER_SHARD).collect::<Vec<_>>(),
        format!("after the delete shard 0 lists {listed:?}"),
    )?;
    match seg.get_segment(0, 0).await {
        Err(e)
            if e.downcast_ref::<cairn::Error>().map(|e| e.kind()) == Some(ErrorKind::NotFound) =>
        {
            Ok(())
        }
        other => Err(format!(
            "a deleted segment still reads: {:?}",
            other.map(|b| b.len())
        )
        .into()),
    }
}

/// Every key the ledger writes, with its expected bytes.
fn all_objects() -> Vec<(Key, Bytes)> {
    let mut out = Vec::new();
    for shard in 0..SHARDS {
        for seq in 0..SEALED_PER_SHARD {
            out.push((segment_key(shard, seq), sealed_bytes(shard, seq)));
        }
        out.push((active_key(shard), active_bytes(shard, 3)));
    }
    out
}

fn show(what: &str, s: &TierStats) {
    println!(
        "  {what}: {} entries ({} B) hot, {} dirty; hits {} misses {} fills {} evictions {} flushes {}",
        s.entries, s.hot_bytes, s.dirty_entries, s.hits, s.misses, s.fills, s.evictions, s.flushes
    );
}

/// Reads `keys` through the tier and checks the bytes; returns how the counters moved.
async fn read_all(store: &DynStore, tier: &TieredStore, keys: &[(Key, Bytes)]) -> Res<TierStats> {
    let before = tier.stats();
    for (k, want) in keys {
        ensure(
            store.get(k).await? == *want,
            format!("{k} reads other bytes"),
        )?;
    }
    let after = tier.stats();
    Ok(TierStats {
        hits: after.hits - before.hits,
        misses: after.misses - before.misses,
        fills: after.fills - before.fills,
        evictions: after.evictions - before.evictions,
        ..after
    })
}

async fn delete_all(url: &str) -> Res<()> {
    let store = cairn::open(url).await?;
    let keys: Vec<Key> = store
        .list_objects("")
        .map_ok(|m| m.key)
        .try_collect()
        .await?;
    let failed = store.delete_many(keys).await;
    ensure(failed.is_empty(), format!("cleanup failed: {failed:?}"))
}

#[tokio::main]
async fn main() -> Res<()> {
    let base = cairn::url_from_env()?;
    let base = base.trim_end_matches('/');
    let hot_dir = std::env::var("LEDGER_HOT_DIR")
        .unwrap_or_else(|_| "target/examples/ledger_segments/hot".into());
    let _ = std::fs::remove_dir_all(&hot_dir);

    // 1. The plain store.
    let plain_url = format!("{base}/plain");
    println!("plain: {plain_url}");
    let plain = Segments {
        store: cairn::open(&plain_url).await?,
    };
    run_ledger(&plain).await?;
    retire_first_segment(&plain).await?;
    println!(
        "  {} segments written, listed, read and checked",
        all_objects().len()
    );

    // 2. The same ledger through a hot tier in front of S3. Write-back: a segment is safe once
    // on local disk (fsynced journal); zstd: what reaches S3 is compressed; pin: the active
    // segments and the indexes stay hot under the quota; immutable: sealed segments never
    // change, so a hot copy is served without asking S3 whether it did.
    let cold_url = format!("{base}/tiered");
    let url = format!(
        "tier+{cold_url}?hot={hot_dir}&mode=write-back&compression=zstd&hot_max=16KiB\
         &pin=segments/active/,index/&immutable=true"
    );
    println!("tiered: {url}");
    let tiered = cairn::open_tier(&url, cairn::Config::default()).await?;
    let tier = tiered.tier.clone();
    let seg = Segments {
        store: tiered.store.clone(),
    };
    run_ledger(&seg).await?;
    show("written", &tier.stats());

    tier.flush().await?;
    let st = tier.stats();
    show("flushed", &st);
    ensure(
        st.dirty_entries == 0 && st.dirty_bytes == 0,
        "dirty after flush",
    )?;

    // S3 opened directly (no tier, no options: compression is recorded per object).
    let cold = cairn::open(&cold_url).await?;
    let (mut logical, mut stored_bytes) = (0, 0);
    for (k, want) in all_objects() {
        ensure(
            cold.get(&k).await? == want,
            format!("S3 has other bytes for {k}"),
        )?;
        let meta = cold.head(&k).await?;
        ensure(
            meta.compression() == Some("zstd"),
            format!("{k} is stored uncompressed"),
        )?;
        logical += meta.size;
        stored_bytes += meta.stored_size;
    }
    println!("  S3 holds every segment: {logical} B of records in {stored_bytes} B (zstd)");
    ensure(
        stored_bytes * 3 < logical,
        "JSON lines compress at least 3:1",
    )?;

    // Evict is the operator's explicit drop: every clean copy under the prefix leaves hot,
    // pinned ones included (pins hold against the quota, below). Only the indexes stay.
    let segments = all_objects();
    let before = tier.stats();
    let evicted = tier.evict(&tiered.stored_prefix("segments/")).await?;
    let st = tier.stats();
    show("evicted", &st);
    let indexes = u64::from(SHARDS);
    ensure(
        evicted == before.entries - indexes && st.entries == indexes,
        format!("evicted {evicted} of {} hot copies", before.entries),
    )?;

    // Read everything back, active segments first: each read misses and refills from S3.
    // Hot holds 16 KiB, so the sweeps after the fills drop the least recently read sealed
    // segments, and never the pinned active ones.
    let (active, sealed): (Vec<_>, Vec<_>) = segments
        .iter()
        .cloned()
        .partition(|(k, _)| k.as_str().starts_with("segments/active/"));
    let n = segments.len() as u64;
    let moved = read_all(
        &tiered.store,
        &tier,
        &[active.clone(), sealed.clone()].concat(),
    )
    .await?;
    show("read back", &moved);
    ensure(
        (moved.hits, moved.misses, moved.fills) == (0, n, n),
        format!("read back: {moved:?}"),
    )?;
    ensure(moved.evictions > 0, "the quota evicted nothing")?;
    let again = read_all(&tiered.store, &tier, &active).await?;
    ensure(
        (again.hits, again.misses) == (active.len() as u64, 0),
        format!("pinned active segments left hot: {again:?}"),
    )?;
    println!(
        "  the quota evicted {} sealed segments; the {} pinned active segments stayed hot",
        moved.evictions,
        active.len()
    );

    // immutable=true: a hot sealed segment is served without a round trip to S3 (otherwise the
    // tier asks S3 for its ETag once `ttl` has passed). So if something rewrote a segment
    // behind the ledger's back, reads would not notice; `verify` compares hot with cold.
    let (last, original) = sealed.last().expect("sealed segments");
    cold.put(last, Bytes::from_static(b"{\"tx\":0,\"forged\":true}\n"))
        .await?;
    let served = read_all(&tiered.store, &tier, &[(last.clone(), original.clone())]).await?;
    ensure(served.hits == 1, "the immutable hot copy was not served")?;
    let problems = tier.verify().await?;
    ensure(
        problems.len() == 1 && problems[0].0 == tiered.stored_prefix(last.as_str()),
        format!("verify found {problems:?}"),
    )?;
    println!("  verify: {} — {}", problems[0].0, problems[0].1);
    seg.store.put(last, original.clone()).await?; // repair from the ledger's own copy
    tier.flush().await?;
    ensure(tier.verify().await?.is_empty(), "verify after the repair")?;
    ensure(cold.get(last).await? == *original, "S3 after the repair")?;

    // Deletes are write-back too: journaled, then flushed.
    retire_first_segment(&seg).await?;
    tier.flush().await?;
    ensure(
        !cold.exists(&segment_key(0, 0)).await?,
        "the retired segment is still in S3",
    )?;
    seg.health_check().await?;
    show("done", &tier.stats());

    drop((seg, tier, tiered));
    delete_all(&plain_url).await?;
    delete_all(&cold_url).await?;
    let _ = std::fs::remove_dir_all(&hot_dir);
    println!("ledger_segments: ok");
    Ok(())
}
