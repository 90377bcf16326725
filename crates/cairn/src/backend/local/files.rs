//! Filesystem helpers: directory locks, synced writes, pruning.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The modification time in nanoseconds since the epoch (0 before it).
pub(super) fn mtime_ns(m: &fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Unique per write: every new object is a new file (inode) with its own stamped mtime.
pub(super) fn etag(m: &fs::Metadata) -> String {
    format!("\"{:x}-{:x}-{:x}\"", m.ino(), mtime_ns(m), m.len())
}

/// Sets a finished temp file's mtime to a time no other file of this process gets, then syncs it.
///
/// The kernel stamps writes with a coarse clock (one tick is milliseconds), so two files
/// written in one tick would share an mtime, and a reused inode number could then make a
/// new file look like an old one. With unique stamps `(inode, mtime, size)` names one file.
pub(super) fn stamp_and_sync(f: &fs::File, durable: bool) -> std::io::Result<()> {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = mtime_now();
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .expect("the closure always returns Some");
    let t = now.max(prev + 1);
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_nanos(t))?;
    if durable {
        f.sync_all()?;
    }
    Ok(())
}

fn mtime_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Removes files in `tmp` last modified more than `age` ago (their writers were killed).
pub(super) fn remove_stale(tmp: &Path, age: Duration) {
    let Ok(rd) = fs::read_dir(tmp) else { return };
    let Some(cutoff) = SystemTime::now().checked_sub(age) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_file() && m.modified().is_ok_and(|t| t < cutoff) {
            match fs::remove_file(e.path()) {
                Ok(()) => tracing::debug!(path = %e.path().display(), "removed a stale temp file"),
                Err(err) => {
                    tracing::debug!(path = %e.path().display(), %err, "stale temp file stays")
                }
            }
        }
    }
}

/// Runs `f` (which creates, links or renames `entry`) while holding the namespace lock of
/// `entry`'s directory.
///
/// Many writers into one directory otherwise contend for the directory's lock in the
/// kernel, and there its waiters spin while the holder searches the inode bitmaps (slow on
/// ext4 right after many deletes): up to a fifth of the CPU of 10,000 small downloads or puts. A
/// user-space lock makes the waiters sleep instead. Keyed by a hash of the directory, so
/// unrelated directories rarely share one.
pub(crate) fn in_directory<T>(entry: &Path, f: impl FnOnce() -> T) -> T {
    use std::hash::{Hash, Hasher};
    use std::sync::Mutex;
    static LOCKS: [Mutex<()>; 16] = [const { Mutex::new(()) }; 16];
    let mut h = std::collections::hash_map::DefaultHasher::new();
    entry.parent().hash(&mut h);
    let _held = LOCKS[h.finish() as usize % LOCKS.len()]
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    f()
}

pub(super) fn write_synced(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let mut f = in_directory(path, || fs::File::create(path))?;
    f.write_all(data)?;
    if durable {
        f.sync_all()?;
    }
    Ok(())
}

/// Writes a new object's temp file: its bytes, a unique mtime ([`stamp_and_sync`]), fsync.
pub(super) fn write_object(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let mut f = in_directory(path, || fs::File::create(path))?;
    f.write_all(data)?;
    stamp_and_sync(&f, durable)
}
