//! Filesystem helpers: directory locks, synced writes, pruning.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

/// Removes the empty directories above `path`, stopping at `stop`.
pub(super) fn prune_empty_dirs(path: &Path, stop: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == stop || !d.starts_with(stop) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

pub(super) fn mtime_ns(m: &fs::Metadata) -> u128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub(super) fn etag(m: &fs::Metadata) -> String {
    format!("\"{:x}-{:x}\"", mtime_ns(m), m.len())
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

pub(super) fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = in_directory(path, || fs::File::create(path))?;
    f.write_all(data)?;
    f.sync_all()
}

pub(super) fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
