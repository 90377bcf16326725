//! The tier's policy, as data: write mode, quotas, revalidation, demotion, pins, and the
//! eviction order (LRU by last access).
//!
//! Quotas are soft between sweeps: a sweep runs after each fill or hot write that leaves the
//! tier over `hot_max` or `hot_max_entries`, and brings it back to 90% of both. Fills and
//! writes in flight can push it over in between, by at most what they write. Dirty entries
//! (write-back, not yet flushed) and pinned entries are never chosen.

use crate::config::Config;
use crate::error::{Error, Result};
use std::time::Duration;

/// How writes reach the cold store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// Cold first, then hot; acknowledged once cold has it.
    WriteThrough,
    /// Hot plus an fsynced journal record; a background flusher uploads.
    WriteBack,
}

/// Everything that decides what the tier keeps and for how long.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TierPolicy {
    /// `mode=write-through|write-back`.
    pub mode: WriteMode,
    /// `hot_max`: bytes the hot tier aims to hold (soft, see the module docs).
    pub hot_max: u64,
    /// `hot_max_entries`: objects the hot tier aims to hold.
    pub hot_max_entries: u64,
    /// `ttl`: how long a hot entry is served before it is revalidated against cold by ETag.
    pub ttl: Duration,
    /// `immutable=true`: never revalidate (objects are never rewritten, e.g. segments).
    pub immutable: bool,
    /// `dirty_max`: write-back bytes not yet flushed; past it writes go synchronous.
    pub dirty_max: u64,
    /// `demote_after`: a clean entry not read for this long leaves hot (cold keeps it).
    pub demote_after: Option<Duration>,
    /// `pin`: key prefixes that stay hot (never evicted or demoted by policy).
    pub pins: Vec<String>,
    /// `flush_concurrency`: uploads the flusher runs at once.
    pub flush_concurrency: usize,
    /// Objects larger than this are served from cold without filling hot.
    pub fill_max: u64,
}

impl Default for TierPolicy {
    fn default() -> Self {
        TierPolicy {
            mode: WriteMode::WriteThrough,
            hot_max: 10 << 30,
            hot_max_entries: 1_000_000,
            ttl: Duration::from_secs(30),
            immutable: false,
            dirty_max: 1 << 30,
            demote_after: None,
            pins: Vec::new(),
            flush_concurrency: 4,
            fill_max: 1 << 30,
        }
    }
}

impl TierPolicy {
    /// The policy a config describes (defaults for what it leaves unset).
    pub fn from_config(c: &Config) -> Result<Self> {
        let d = TierPolicy::default();
        let mode = match c.mode.as_deref() {
            None | Some("write-through") => WriteMode::WriteThrough,
            Some("write-back") => WriteMode::WriteBack,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "mode must be write-through or write-back, not {other:?}"
                )))
            }
        };
        let hot_max = c.hot_max.unwrap_or(d.hot_max);
        let p = TierPolicy {
            mode,
            hot_max,
            hot_max_entries: c.hot_max_entries.unwrap_or(d.hot_max_entries),
            ttl: c.ttl.unwrap_or(d.ttl),
            immutable: c.immutable.unwrap_or(false),
            dirty_max: c.dirty_max.unwrap_or(d.dirty_max),
            demote_after: c.demote_after,
            pins: c.pin.clone().unwrap_or_default(),
            flush_concurrency: c.flush_concurrency.unwrap_or(d.flush_concurrency),
            fill_max: d.fill_max.min(hot_max),
        };
        if p.flush_concurrency == 0 {
            return Err(Error::invalid("flush_concurrency must be at least 1"));
        }
        if p.hot_max_entries == 0 {
            return Err(Error::invalid("hot_max_entries must be at least 1"));
        }
        Ok(p)
    }

    /// Whether `key` is under a pinned prefix.
    pub fn pinned(&self, key: &str) -> bool {
        self.pins.iter().any(|p| key.starts_with(p.as_str()))
    }
}

/// `10GiB`, `512MiB`, `64k`, `1000`: a byte count (binary units; `KB`/`MB`/`GB` are decimal).
pub fn parse_size(name: &str, v: &str) -> Result<u64> {
    let t = v.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::invalid(format!(
            "{name} must be a size like `10GiB`, `512MiB` or `1000`, not {v:?}"
        ))
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

/// One hot entry as eviction sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The key.
    pub key: String,
    /// Bytes in hot.
    pub size: u64,
    /// Access order (higher is more recent).
    pub tick: u64,
    /// Wall-clock time of the last access, ms since the epoch.
    pub access_ms: u64,
    /// Not yet flushed: never chosen.
    pub dirty: bool,
}

/// The keys a sweep removes: first clean unpinned entries idle longer than `demote_after`,
/// then least recently used clean unpinned entries until bytes and entries are at 90% of the
/// quotas.
pub fn victims(
    policy: &TierPolicy,
    mut entries: Vec<Candidate>,
    bytes: u64,
    count: u64,
    now_ms: u64,
) -> Vec<String> {
    entries.retain(|c| !c.dirty && !policy.pinned(&c.key));
    entries.sort_by_key(|c| c.tick);
    let (target_bytes, target_count) = if bytes > policy.hot_max || count > policy.hot_max_entries {
        (
            policy.hot_max / 10 * 9,
            (policy.hot_max_entries / 10 * 9).max(1),
        )
    } else {
        (u64::MAX, u64::MAX)
    };
    let demote_ms = policy.demote_after.map(|d| d.as_millis() as u64);
    let (mut bytes, mut count) = (bytes, count);
    let mut out = Vec::new();
    for c in entries {
        let idle = demote_ms.is_some_and(|d| now_ms.saturating_sub(c.access_ms) > d);
        if !idle && bytes <= target_bytes && count <= target_count {
            // LRU order: the rest are more recent, but may still be idle.
            if demote_ms.is_none() {
                break;
            }
            continue;
        }
        bytes -= c.size.min(bytes);
        count = count.saturating_sub(1);
        out.push(c.key);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("hot_max", "10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("hot_max", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("hot_max", "64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("hot_max", "1000").unwrap(), 1000);
        assert_eq!(parse_size("hot_max", "2MB").unwrap(), 2_000_000);
        let e = parse_size("hot_max", "lots").unwrap_err();
        assert!(e.to_string().contains("hot_max must be a size"), "{e}");
        assert!(parse_size("hot_max", "5XB").is_err());
    }

    fn cand(key: &str, size: u64, tick: u64, dirty: bool) -> Candidate {
        Candidate {
            key: key.into(),
            size,
            tick,
            access_ms: 1000 * tick,
            dirty,
        }
    }

    #[test]
    fn lru_skips_dirty_and_pinned_and_stops_at_90_percent() {
        let p = TierPolicy {
            hot_max: 100,
            pins: vec!["keep/".into()],
            ..Default::default()
        };
        let e = vec![
            cand("a", 30, 1, true),
            cand("keep/b", 30, 2, false),
            cand("c", 30, 3, false),
            cand("d", 30, 4, false),
            cand("e", 30, 5, false),
        ];
        // 150 bytes: drop clean unpinned LRU-first until <= 90.
        assert_eq!(victims(&p, e.clone(), 150, 5, 0), vec!["c", "d"]);
        assert!(victims(&p, e, 90, 5, 0).is_empty());
    }

    #[test]
    fn demotion_by_age() {
        let p = TierPolicy {
            demote_after: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let e = vec![cand("old", 1, 1, false), cand("new", 1, 100, false)];
        assert_eq!(victims(&p, e, 2, 2, 50_000), vec!["old"]);
    }
}
