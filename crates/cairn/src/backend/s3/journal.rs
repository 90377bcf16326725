//! Multipart uploads this machine's cairn processes started and have not ended, so that a
//! later cairn aborts what a killed one (SIGKILL, OOM, power cut) left open: S3 keeps such
//! an upload, and bills its parts, until someone aborts it.
//!
//! - Each process appends to a file of its own under `$XDG_STATE_HOME/cairn/uploads/` (else
//!   `~/.local/state/cairn/uploads/`), and holds an exclusive lock on it while it lives. A
//!   file nobody holds locked belongs to a dead process.
//! - Records, one JSON line each: `begin` (store, key, time) before CreateMultipartUpload,
//!   `id` once the server named the upload, `end` after complete or abort.
//! - Before its first write to a bucket, cairn aborts the dead processes' uploads in that
//!   bucket (every key they name, written now or not; every write to the bucket waits for
//!   this): by id, or, for one a kill cut off while its creation was in flight (no id
//!   recorded), the uploads to exactly its key the server started within [`CREATE_WINDOW`] of
//!   the `begin` record (any upload to that key on a server that reports no real start
//!   times, as moto does). Nothing else is touched: other keys, other tools' uploads (outside
//!   that window), live cairn processes' uploads.
//!
//! Records are not fsynced: a kill leaves them in the page cache, a power cut may lose the
//! last ones (`cairn multipart abort --older-than` is the remedy then). Written by hand
//! rather than with a crate: it is a few appends and one lock, with std's `File::try_lock`.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far from its `begin` record an upload of unknown id may have been started by the server
/// (clock skew between this machine and the server, plus the creation's own time).
pub(crate) const CREATE_WINDOW: Duration = Duration::from_secs(120);

/// One journal line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "lowercase")]
enum Record {
    Begin {
        n: u64,
        store: String,
        key: String,
        /// Unix milliseconds, this machine's clock.
        t: i64,
    },
    Id {
        n: u64,
        upload: String,
    },
    End {
        n: u64,
    },
}

/// An upload a dead process left without an `end` record.
#[derive(Debug, Clone)]
pub(crate) struct Orphan {
    /// The dead process's file this came from.
    file: usize,
    n: u64,
    pub key: String,
    /// Unix milliseconds of its `begin` record.
    pub begun_ms: i64,
    /// The server's upload id, if it was recorded.
    pub upload: Option<String>,
}

/// A dead process's file, held locked while its orphans are handled.
struct Dead {
    path: PathBuf,
    file: File,
    open: usize,
}

struct State {
    own: Option<File>,
    next: u64,
    dead: Vec<Dead>,
    /// Orphans by (store, key).
    orphans: HashMap<(String, String), Vec<Orphan>>,
    /// Per store: its orphans have been (or are being) aborted.
    reaped: HashMap<String, Arc<tokio::sync::OnceCell<()>>>,
}

/// This process's journal (one per process: every S3 store shares it).
pub(crate) struct Journal {
    dir: PathBuf,
    state: Mutex<State>,
}

static JOURNAL: OnceLock<Option<Journal>> = OnceLock::new();

/// The process's journal, opened on first use; `None` (with one warning) if there is no
/// state directory to keep it in.
pub(crate) fn get() -> Option<&'static Journal> {
    JOURNAL
        .get_or_init(|| match Journal::open() {
            Ok(j) => Some(j),
            Err(e) => {
                tracing::warn!(
                    "multipart uploads are not journaled ({e}); uploads a killed cairn leaves \
                     open need `cairn multipart abort`"
                );
                None
            }
        })
        .as_ref()
}

fn state_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty());
    let base = match xdg {
        Some(x) => PathBuf::from(x),
        None => {
            PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".local/state")
        }
    };
    Some(base.join("cairn/uploads"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Journal {
    fn open() -> std::io::Result<Journal> {
        let dir = state_dir().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither XDG_STATE_HOME nor HOME is set",
            )
        })?;
        std::fs::create_dir_all(&dir)?;
        let mut state = State {
            own: None,
            next: 0,
            dead: Vec::new(),
            orphans: HashMap::new(),
            reaped: HashMap::new(),
        };
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "log") {
                adopt(&path, &mut state);
            }
        }
        Ok(Journal {
            dir,
            state: Mutex::new(state),
        })
    }

    fn append(&self, state: &mut State, r: &Record) {
        if state.own.is_none() {
            let name = format!("{}-{:016x}.log", std::process::id(), rand::random::<u64>());
            let path = self.dir.join(name);
            let opened = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .and_then(|f| f.try_lock().map(|()| f).map_err(std::io::Error::other));
            match opened {
                Ok(f) => state.own = Some(f),
                Err(e) => {
                    tracing::warn!(
                        "cannot journal multipart uploads in {}: {e}",
                        path.display()
                    );
                    return;
                }
            }
        }
        write_line(state.own.as_mut().expect("opened above"), r);
    }

    /// Records that an upload to `key` of `store` is about to be created; returns its number.
    pub(crate) fn begin(&self, store: &str, key: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let n = s.next;
        let r = Record::Begin {
            n,
            store: store.to_string(),
            key: key.to_string(),
            t: now_ms(),
        };
        self.append(&mut s, &r);
        n
    }

    /// Records the server's id of upload `n`.
    pub(crate) fn id(&self, n: u64, upload: &str) {
        let r = Record::Id {
            n,
            upload: upload.to_string(),
        };
        self.append(&mut self.state.lock().unwrap(), &r);
    }

    /// Records that upload `n` was completed or aborted.
    pub(crate) fn end(&self, n: u64) {
        self.append(&mut self.state.lock().unwrap(), &Record::End { n });
    }

    /// The once-per-process cleanup of `store`: every write to it awaits this cell, whose
    /// first caller aborts the store's orphans ([`Journal::take_orphans`]).
    pub(crate) fn reaped(&self, store: &str) -> Arc<tokio::sync::OnceCell<()>> {
        let mut s = self.state.lock().unwrap();
        Arc::clone(s.reaped.entry(store.to_string()).or_default())
    }

    /// Takes the dead processes' uploads to any key of `store`, to be aborted; hand each back
    /// with [`Journal::resolved`] once it is.
    pub(crate) fn take_orphans(&self, store: &str) -> Vec<Orphan> {
        let mut s = self.state.lock().unwrap();
        if s.orphans.is_empty() {
            return Vec::new();
        }
        let keys: Vec<_> = s.orphans.keys().filter(|k| k.0 == store).cloned().collect();
        let mut out = Vec::new();
        for k in keys {
            out.extend(s.orphans.remove(&k).unwrap_or_default());
        }
        out.sort_by(|a, b| (&a.key, a.n).cmp(&(&b.key, b.n)));
        out
    }

    /// Marks an orphan as aborted (or found ended) in its dead process's file; a file with
    /// nothing left open is deleted.
    pub(crate) fn resolved(&self, o: &Orphan) {
        let mut s = self.state.lock().unwrap();
        let Some(d) = s.dead.get_mut(o.file) else {
            return;
        };
        write_line(&mut d.file, &Record::End { n: o.n });
        d.open = d.open.saturating_sub(1);
        if d.open == 0 {
            let _ = std::fs::remove_file(&d.path);
        }
    }
}

fn write_line(f: &mut File, r: &Record) {
    let mut line = serde_json::to_vec(r).expect("records serialize");
    line.push(b'\n');
    if let Err(e) = f.write_all(&line) {
        tracing::warn!("cannot append to the multipart upload journal: {e}");
    }
}

/// Takes over the file at `path` if its process is dead (nobody holds its lock): its open
/// uploads become orphans, and a file with none is deleted.
fn adopt(path: &Path, state: &mut State) {
    let Ok(file) = OpenOptions::new().read(true).append(true).open(path) else {
        return;
    };
    if file.try_lock().is_err() {
        return; // a live process's
    }
    let mut open: HashMap<u64, Orphan> = HashMap::new();
    let mut stores: HashMap<u64, String> = HashMap::new();
    let index = state.dead.len();
    for line in BufReader::new(&file).lines() {
        let Ok(line) = line else { break };
        // A line a kill cut short is the last one; skip it.
        let Ok(r) = serde_json::from_str::<Record>(&line) else {
            continue;
        };
        match r {
            Record::Begin { n, store, key, t } => {
                stores.insert(n, store);
                open.insert(
                    n,
                    Orphan {
                        file: index,
                        n,
                        key,
                        begun_ms: t,
                        upload: None,
                    },
                );
            }
            Record::Id { n, upload } => {
                if let Some(o) = open.get_mut(&n) {
                    o.upload = Some(upload);
                }
            }
            Record::End { n } => {
                open.remove(&n);
            }
        }
    }
    if open.is_empty() {
        let _ = std::fs::remove_file(path);
        return;
    }
    state.dead.push(Dead {
        path: path.to_path_buf(),
        file,
        open: open.len(),
    });
    for (n, o) in open {
        let store = stores.remove(&n).unwrap_or_default();
        state
            .orphans
            .entry((store, o.key.clone()))
            .or_default()
            .push(o);
    }
}

/// Aborts one orphan on the server: by id, or the uploads to exactly its key the server
/// started within [`CREATE_WINDOW`] of its `begin`; with a server whose upload times are
/// not real (`upload_times` false: moto), every upload to exactly its key. Returns how many
/// were aborted.
pub(crate) async fn abort(admin: &super::admin::Admin, o: &Orphan) -> crate::Result<usize> {
    if let Some(id) = &o.upload {
        admin.abort_upload(&o.key, id).await?;
        return Ok(1);
    }
    let window = CREATE_WINDOW.as_millis() as i64;
    let upload_times = admin.upload_times();
    let started = |t: &aws_sdk_s3::primitives::DateTime| {
        !upload_times
            || t.to_millis()
                .is_ok_and(|ms| (o.begun_ms - window..=o.begun_ms + window).contains(&ms))
    };
    // The uploads under the key, page by page (a prefix also matches longer keys), without
    // their parts: moto's ListParts replies break the SDK, and only the ids are needed.
    let mut aborted = 0;
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    loop {
        let out = admin
            .sdk()
            .list_multipart_uploads()
            .bucket(admin.bucket())
            .prefix(&o.key)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await
            .map_err(|e| admin.err(e, "list_multipart_uploads").with_key(&o.key))?;
        for u in out.uploads() {
            if let (Some(key), Some(id), Some(t)) = (u.key(), u.upload_id(), u.initiated()) {
                if key == o.key && started(t) {
                    admin.abort_upload(key, id).await?;
                    aborted += 1;
                }
            }
        }
        key_marker = out.next_key_marker().map(String::from);
        id_marker = out.next_upload_id_marker().map(String::from);
        if out.is_truncated() != Some(true) || (key_marker.is_none() && id_marker.is_none()) {
            break;
        }
    }
    Ok(aborted)
}
