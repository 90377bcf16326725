//! The tier's policy, as data: write mode, quotas, revalidation, demotion, pins, and the
//! eviction order (S3-FIFO).
//!
//! Quotas are soft between sweeps: a sweep runs after each fill or hot write that leaves the
//! tier over `hot_max` or `hot_max_entries`, and brings it back to 90% of both. Fills and
//! writes in flight can push it over in between, by at most what they write. Dirty entries
//! (write-back, not yet flushed) and pinned entries are never chosen.
//!
//! Eviction is S3-FIFO (Yang et al., SOSP '23), measured above LRU and SIEVE on the Zipf
//! benchmark (docs/benchmarks.md): new entries join a small FIFO queue (10% of the quota);
//! one read there earns a place in the main queue, none sends the key to a ghost list, and a
//! key the ghost remembers goes straight to main when it comes back. Main is FIFO with
//! reinsertion: a read (counted up to 3) buys one more pass. One-hit wonders (a scan, a
//! one-off download) so leave through the small queue without pushing out the working set.

use crate::config::Config;
use crate::error::{Error, Result};
use std::collections::VecDeque;
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
    /// `flush_delay`: how long a write-back write waits before the flusher uploads it, so a
    /// burst of writes is acknowledged without uploads competing for the machine, and a key
    /// rewritten within it is uploaded once. Ignored past half of `dirty_max`, and by `flush`.
    pub flush_delay: Duration,
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
            flush_delay: Duration::from_secs(1),
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
            flush_delay: c.flush_delay.unwrap_or(d.flush_delay),
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
    /// Queue order (higher joined its queue later).
    pub tick: u64,
    /// Wall-clock time of the last access, ms since the epoch.
    pub access_ms: u64,
    /// Reads since it joined its queue, up to [`MAX_FREQ`].
    pub freq: u8,
    /// In the main queue (else the small one).
    pub main: bool,
    /// Not yet flushed: never chosen.
    pub dirty: bool,
}

/// Reads an entry's counter keeps: at most this many extra passes through main.
pub const MAX_FREQ: u8 = 3;

/// What a sweep does, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Keys to remove; `true` for those that leave from the small queue (the ghost keeps
    /// their names).
    pub evict: Vec<(String, bool)>,
    /// Keys that go to the back of main, with their counters after the move, in order.
    pub requeue: Vec<(String, u8)>,
}

/// What a sweep does: first remove clean unpinned entries idle longer than `demote_after`,
/// then run S3-FIFO until bytes and entries are at 90% of the quotas.
pub fn victims(
    policy: &TierPolicy,
    mut entries: Vec<Candidate>,
    bytes: u64,
    count: u64,
    now_ms: u64,
) -> Sweep {
    entries.retain(|c| !c.dirty && !policy.pinned(&c.key));
    entries.sort_by_key(|c| c.tick);
    let mut out = Sweep::default();
    let (mut bytes, mut count) = (bytes, count);
    let evict = |c: &Candidate, small: bool, bytes: &mut u64, count: &mut u64| {
        *bytes -= c.size.min(*bytes);
        *count = count.saturating_sub(1);
        (c.key.clone(), small)
    };
    if let Some(d) = policy.demote_after.map(|d| d.as_millis() as u64) {
        entries.retain(|c| {
            let idle = now_ms.saturating_sub(c.access_ms) > d;
            if idle {
                out.evict.push(evict(c, !c.main, &mut bytes, &mut count));
            }
            !idle
        });
    }
    if bytes <= policy.hot_max && count <= policy.hot_max_entries {
        return out;
    }
    let target_bytes = policy.hot_max / 10 * 9;
    let target_count = (policy.hot_max_entries / 10 * 9).max(1);
    let (mut small, mut main): (VecDeque<_>, VecDeque<_>) =
        entries.into_iter().partition(|c| !c.main);
    let mut small_bytes: u64 = small.iter().map(|c| c.size).sum();
    while bytes > target_bytes || count > target_count {
        let small_over = small_bytes > target_bytes / 10 || small.len() as u64 > target_count / 10;
        if (small_over || main.is_empty()) && !small.is_empty() {
            let mut c = small.pop_front().expect("not empty");
            small_bytes -= c.size;
            if c.freq > 0 {
                c.freq = 0;
                out.requeue.push((c.key.clone(), 0));
                main.push_back(c);
            } else {
                out.evict.push(evict(&c, true, &mut bytes, &mut count));
            }
        } else if let Some(mut c) = main.pop_front() {
            if c.freq > 0 {
                c.freq -= 1;
                out.requeue.push((c.key.clone(), c.freq));
                main.push_back(c);
            } else {
                out.evict.push(evict(&c, false, &mut bytes, &mut count));
            }
        } else {
            break;
        }
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
            freq: 0,
            main: false,
            dirty,
        }
    }

    fn keys(s: &Sweep) -> Vec<&str> {
        s.evict.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn fifo_skips_dirty_and_pinned_and_stops_at_90_percent() {
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
        // 150 bytes: drop clean unpinned entries oldest-first until <= 90.
        let s = victims(&p, e.clone(), 150, 5, 0);
        assert_eq!(s.evict, vec![("c".into(), true), ("d".into(), true)]);
        assert!(s.requeue.is_empty());
        assert_eq!(victims(&p, e, 90, 5, 0), Sweep::default());
    }

    #[test]
    fn a_read_in_the_small_queue_earns_main_an_unread_entry_leaves() {
        let p = TierPolicy {
            hot_max: 100,
            ..Default::default()
        };
        let read = Candidate {
            freq: 1,
            ..cand("read", 40, 1, false)
        };
        let e = vec![
            read,
            cand("unread", 40, 2, false),
            cand("new", 40, 3, false),
        ];
        let s = victims(&p, e, 120, 3, 0);
        // Small holds 120 > 9: "read" moves to main (counter reset), "unread" leaves with its
        // name kept in the ghost; 80 <= 90 stops the sweep before "new".
        assert_eq!(s.requeue, vec![("read".into(), 0)]);
        assert_eq!(s.evict, vec![("unread".into(), true)]);
    }

    #[test]
    fn main_reinserts_read_entries_and_a_scan_does_not_flush_it() {
        let p = TierPolicy {
            hot_max: 1000,
            ..Default::default()
        };
        let m = |key: &str, tick, freq| Candidate {
            freq,
            main: true,
            ..cand(key, 100, tick, false)
        };
        // Main: hot (read twice), warm (once), cold (never); then a scan of 7 new entries
        // in small, each read never.
        let mut e = vec![m("hot", 1, 2), m("warm", 2, 1), m("cold", 3, 0)];
        for i in 0..7 {
            e.push(cand(&format!("scan{i}"), 100, 10 + i, false));
        }
        let s = victims(&p, e, 1000 + 700, 10, 0);
        // 1700 bytes (700 dirty or pinned) down to 900: the scan leaves through small before
        // main is touched, then main reinserts what was read and drops "cold".
        let k = keys(&s);
        assert_eq!(
            k,
            vec!["scan0", "scan1", "scan2", "scan3", "scan4", "scan5", "scan6", "cold"],
            "{s:?}"
        );
        assert!(s.evict[..7].iter().all(|(_, small)| *small));
        assert!(!s.evict[7].1, "cold left from main");
        assert_eq!(s.requeue, vec![("hot".into(), 1), ("warm".into(), 0)]);
    }

    #[test]
    fn demotion_by_age() {
        let p = TierPolicy {
            demote_after: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let e = vec![cand("old", 1, 1, false), cand("new", 1, 100, false)];
        assert_eq!(keys(&victims(&p, e, 2, 2, 50_000)), vec!["old"]);
    }
}
