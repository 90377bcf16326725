//! The write-back journal: one line per record, `<crc> <json>\n`, appended and fsynced
//! before a write is acknowledged.
//!
//! - `crc` is the first 16 hex digits of the SHA-256 of the JSON, so a torn or corrupt line
//!   is recognised. A bad *last* line is a crash mid-append (that write was never
//!   acknowledged) and is dropped; a bad line before a good one is an `Integrity` error.
//! - Records: `put {seq, key, size, at, after_delete?}` (the key's bytes are in hot, or a
//!   crash cut the put off before they got there: the record is written beside them, and
//!   replay checks; `after_delete` names an owed delete the put replaced, owed again then),
//!   `delete {seq, key, at}`, and `clean {seq, key, hot_etag?, cold_etag?}` (every record of the key up to `seq`
//!   reached cold; a flushed put names the hot copy's ETag and the one cold gave it, so the copy
//!   still answers to both after a restart). `at` is the write's time (Unix ms), so the flush
//!   lag survives a restart.
//! - Replay folds the records into what cold owes per key and the flushed copies' ETags; on
//!   open, and whenever the file grows past a bound, it is rewritten (temp, fsync, rename,
//!   fsync dir) with only those, folded from the file itself under its lock, so a record
//!   appended meanwhile is never lost.

use crate::error::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Record {
    /// `key` was written in hot: `size` bytes to upload.
    Put {
        /// Order of the record.
        seq: u64,
        /// The key.
        key: String,
        /// Its size.
        size: u64,
        /// When it was written (Unix ms).
        #[serde(default)]
        at: u64,
        /// The time of an owed delete this put replaces: owed again if the put's bytes never
        /// reached hot (the record is written beside them, so a crash can keep it alone).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_delete: Option<u64>,
    },
    /// `key` was deleted: cold must delete it too.
    Delete {
        /// Order of the record.
        seq: u64,
        /// The key.
        key: String,
        /// When it was deleted (Unix ms).
        #[serde(default)]
        at: u64,
    },
    /// Every record of `key` up to `seq` reached cold.
    Clean {
        /// The last record covered.
        seq: u64,
        /// The key.
        key: String,
        /// The flushed hot copy's ETag (a put's flush only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hot_etag: Option<String>,
        /// The ETag cold gave the flushed put.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cold_etag: Option<String>,
    },
}

impl Record {
    /// The record's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Record::Put { seq, .. } | Record::Delete { seq, .. } | Record::Clean { seq, .. } => {
                *seq
            }
        }
    }
}

/// What cold still owes for one key: its newest record's operation, order and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// The record's sequence number.
    pub seq: u64,
    /// The operation.
    pub op: PendingOp,
    /// When it was acknowledged (Unix ms).
    pub at_ms: u64,
    /// For a put: the time of the owed delete it replaced (see [`Record::Put`]).
    pub after_delete: Option<u64>,
}

impl Owed {
    /// The journal record that owes this for `key`.
    pub fn record(&self, key: &str) -> Record {
        let (seq, key, at) = (self.seq, key.to_string(), self.at_ms);
        match self.op {
            PendingOp::Put(size) => Record::Put {
                seq,
                key,
                size,
                at,
                after_delete: self.after_delete,
            },
            PendingOp::Delete => Record::Delete { seq, key, at },
        }
    }

    /// What is owed instead when this put's bytes never reached hot (a crash between its
    /// record and its rename, or a failed write): the delete it replaced, or nothing.
    pub fn without_copy(&self) -> Option<Owed> {
        let at_ms = self.after_delete?;
        Some(Owed {
            seq: self.seq,
            op: PendingOp::Delete,
            at_ms,
            after_delete: None,
        })
    }
}

/// A pending operation: what cold still has to do for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOp {
    /// Upload the hot copy (`size` bytes).
    Put(u64),
    /// Delete the key.
    Delete,
}

fn crc(json: &str) -> String {
    hex::encode(&Sha256::digest(json.as_bytes())[..8])
}

fn line(r: &Record) -> String {
    let json = serde_json::to_string(r).expect("records serialize");
    format!("{} {json}\n", crc(&json))
}

/// What cold owes, by key.
pub type Pending = BTreeMap<String, Owed>;

/// A flushed write-back copy's two ETags: the hot copy's (what its put returned) and cold's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flushed {
    /// The clean record's sequence number.
    pub seq: u64,
    /// The hot copy's ETag.
    pub hot_etag: String,
    /// Cold's ETag for the same bytes.
    pub cold_etag: String,
}

/// What a journal holds once folded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// What cold owes, by key.
    pub pending: Pending,
    /// Flushed write-back copies, by key (a later write of the key forgets it).
    pub flushed: BTreeMap<String, Flushed>,
    /// The highest sequence number seen.
    pub max_seq: u64,
}

impl Replay {
    /// The records that reproduce this replay: flushed copies first, then what is owed.
    fn records(&self) -> Vec<Record> {
        let flushed = self.flushed.iter().map(|(k, f)| Record::Clean {
            seq: f.seq,
            key: k.clone(),
            hot_etag: Some(f.hot_etag.clone()),
            cold_etag: Some(f.cold_etag.clone()),
        });
        let owed = self.pending.iter().map(|(k, o)| o.record(k));
        flushed.chain(owed).collect()
    }
}

/// The journal file, appended under a mutex.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (creating) the journal at `path`, replays it and compacts it to what the replay
    /// holds.
    pub fn open(path: &Path) -> Result<(Journal, Replay)> {
        let replay = read(path)?;
        rewrite(path, &replay.records())?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::from(e).with_operation("open journal"))?;
        Ok((
            Journal {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            replay,
        ))
    }

    /// Appends records, and fsyncs them if `sync` (blocking: call from `spawn_blocking`).
    pub fn append(&self, records: &[Record], sync: bool) -> Result<()> {
        let mut buf = String::new();
        for r in records {
            buf.push_str(&line(r));
        }
        let mut f = self.file.lock().expect("journal lock");
        f.write_all(buf.as_bytes())
            .and_then(|_| if sync { f.sync_data() } else { Ok(()) })
            .map_err(|e| {
                Error::from(e).with_operation("journal").with_hint(
                    "the hot directory's disk is failing or full; nothing was acknowledged",
                )
            })
    }

    /// Bytes in the journal file.
    pub fn len(&self) -> u64 {
        fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Whether the journal file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rewrites the file with what it folds to, atomically. Under the append lock, from the
    /// file itself: nothing appended before or during the rewrite is lost.
    /// The flushed copies' ETags are kept only for keys `hot(key)` says are still in hot.
    pub fn compact(&self, hot: impl Fn(&str) -> bool) -> Result<()> {
        let mut f = self.file.lock().expect("journal lock");
        let mut replay = read(&self.path)?;
        replay.flushed.retain(|k, _| hot(k));
        rewrite(&self.path, &replay.records())?;
        *f = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::from(e).with_operation("journal"))?;
        Ok(())
    }
}

fn parse(text: &[u8], path: &Path) -> Result<(Vec<Record>, u64)> {
    let mut out = Vec::new();
    let mut max = 0;
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    // The piece after the last `\n` is empty, or a torn tail.
    let n = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        let last = i + 1 == n;
        if raw.is_empty() {
            continue;
        }
        let good = std::str::from_utf8(raw).ok().and_then(|l| {
            let (c, json) = l.split_once(' ')?;
            (c == crc(json))
                .then(|| serde_json::from_str::<Record>(json).ok())
                .flatten()
        });
        match good {
            Some(r) => {
                max = max.max(r.seq());
                out.push(r);
            }
            None if last => {
                tracing::warn!(journal = %path.display(), "dropping a torn last journal record (an unacknowledged write)");
            }
            None => {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!("journal {} is corrupt at line {}", path.display(), i + 1),
                )
                .with_operation("open tier")
                .with_hint(
                    "the writes it records may not have reached cold: inspect the file; \
                     moving it away loses them",
                ))
            }
        }
    }
    Ok((out, max))
}

fn read(path: &Path) -> Result<Replay> {
    let text = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::from(e).with_operation("open journal")),
    };
    let (records, max_seq) = parse(&text, path)?;
    let mut replay = fold(&records);
    replay.max_seq = max_seq;
    Ok(replay)
}

/// What cold owes per key after `records`, and the flushed copies' ETags.
pub fn fold(records: &[Record]) -> Replay {
    let mut r = Replay::default();
    for rec in records {
        match rec {
            Record::Put {
                seq,
                key,
                size,
                at,
                after_delete,
            } => {
                let op = PendingOp::Put(*size);
                let owed = Owed {
                    seq: *seq,
                    op,
                    at_ms: *at,
                    after_delete: *after_delete,
                };
                r.flushed.remove(key);
                r.pending.insert(key.clone(), owed);
            }
            Record::Delete { seq, key, at } => {
                let op = PendingOp::Delete;
                let owed = Owed {
                    seq: *seq,
                    op,
                    at_ms: *at,
                    after_delete: None,
                };
                r.flushed.remove(key);
                r.pending.insert(key.clone(), owed);
            }
            Record::Clean {
                seq,
                key,
                hot_etag,
                cold_etag,
            } => {
                if r.pending.get(key).is_some_and(|o| o.seq > *seq) {
                    continue; // an older op's flush: the newer one is still owed
                }
                r.pending.remove(key);
                if let (Some(h), Some(c)) = (hot_etag, cold_etag) {
                    let f = Flushed {
                        seq: *seq,
                        hot_etag: h.clone(),
                        cold_etag: c.clone(),
                    };
                    r.flushed.insert(key.clone(), f);
                }
            }
        }
    }
    r
}

fn rewrite(path: &Path, keep: &[Record]) -> Result<()> {
    let dir = path.parent().expect("journal has a parent");
    let tmp = dir.join("journal.tmp");
    let io = |e: std::io::Error| Error::from(e).with_operation("compact journal");
    let mut f = File::create(&tmp).map_err(io)?;
    for r in keep {
        f.write_all(line(r).as_bytes()).map_err(io)?;
    }
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_keeps_pending_drops_torn_tail_and_refuses_corruption() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal");
        {
            let (j, replay) = Journal::open(&p).unwrap();
            assert_eq!(replay, Replay::default());
            j.append(
                &[
                    Record::Put {
                        seq: 1,
                        key: "a".into(),
                        size: 3,
                        at: 10,
                        after_delete: None,
                    },
                    Record::Put {
                        seq: 2,
                        key: "b".into(),
                        size: 4,
                        at: 20,
                        after_delete: Some(15),
                    },
                    Record::Clean {
                        seq: 1,
                        key: "a".into(),
                        hot_etag: Some("h1".into()),
                        cold_etag: Some("c1".into()),
                    },
                    Record::Delete {
                        seq: 3,
                        key: "c".into(),
                        at: 30,
                    },
                ],
                true,
            )
            .unwrap();
        }
        // A torn last record: dropped.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"0123 {\"op\":\"put\",\"se").unwrap();
        drop(f);
        let (j, replay) = Journal::open(&p).unwrap();
        assert_eq!(replay.max_seq, 3);
        let flushed = Flushed {
            seq: 1,
            hot_etag: "h1".into(),
            cold_etag: "c1".into(),
        };
        assert_eq!(
            replay.flushed.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), flushed)]
        );
        assert_eq!(
            replay.pending.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    "b".to_string(),
                    Owed {
                        seq: 2,
                        op: PendingOp::Put(4),
                        at_ms: 20,
                        after_delete: Some(15),
                    }
                ),
                (
                    "c".to_string(),
                    Owed {
                        seq: 3,
                        op: PendingOp::Delete,
                        at_ms: 30,
                        after_delete: None,
                    }
                )
            ]
        );
        // Compaction forgets the ETags of copies no longer in hot, and keeps what is owed.
        j.compact(|k| k != "a").unwrap();
        let now = read(&p).unwrap();
        assert!(now.flushed.is_empty());
        assert_eq!(now.pending.len(), 2);
        // A newer write forgets the flushed ETags; compaction keeps what is owed.
        j.append(
            &[Record::Put {
                seq: 4,
                key: "a".into(),
                size: 9,
                at: 40,
                after_delete: None,
            }],
            true,
        )
        .unwrap();
        j.compact(|_| true).unwrap();
        drop(j);
        let (j, replay) = Journal::open(&p).unwrap();
        assert!(replay.flushed.is_empty());
        assert_eq!(replay.pending.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        // Compaction keeps the delete a put replaced, for a put whose bytes never landed.
        let b = &replay.pending["b"];
        assert_eq!(b.after_delete, Some(15));
        let undo = b.without_copy().unwrap();
        assert_eq!((undo.op, undo.at_ms), (PendingOp::Delete, 15));
        assert_eq!(replay.pending["a"].without_copy(), None);
        drop(j);
        // Corruption before a good line: refused.
        let text = fs::read_to_string(&p).unwrap();
        fs::write(&p, format!("garbage\n{text}")).unwrap();
        let e = Journal::open(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(e.to_string().contains("corrupt at line 1"), "{e}");
    }
}
