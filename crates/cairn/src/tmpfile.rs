//! cairn's hidden temp files in the user's directories, and the sweep that removes the ones a
//! killed cairn left behind.
//!
//! A write to a local directory goes to `.NAME.PID-RANDOM.cairn-tmp` beside its target and is
//! renamed over it once whole. A guard unlinks it on error or cancellation; SIGKILL runs no
//! guard, so the next cairn that writes into that directory sweeps it ([`sweep_once`]): a file
//! whose name is cairn's temp naming and whose writer is gone. The writer is gone when the
//! pid in the name is not a live process on this machine; a name without a pid (older cairn
//! versions: `.NAME.RANDOM.cairn-tmp`) counts as gone once untouched for [`LEGACY_AGE`]. A
//! live writer's file is never touched: its pid is alive (this process's own included).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// The suffix of every cairn temp file.
pub const SUFFIX: &str = ".cairn-tmp";

/// How long a temp file whose name carries no pid must be untouched before it is swept.
pub const LEGACY_AGE: Duration = Duration::from_secs(3600);

/// The temp file name for a write of `name` by this process: `.NAME.PID-RANDOM.cairn-tmp`.
pub fn name_for(name: &str) -> String {
    format!(
        ".{name}.{}-{:08x}{SUFFIX}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Whether a file name is one of cairn's temp files (`.NAME.TAG.cairn-tmp`).
pub fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(SUFFIX)
}

/// The writer's pid a temp file name carries (`PID-RANDOM` or `PID` before the suffix);
/// `None` for a name without one.
fn writer_pid(name: &str) -> Option<i32> {
    let tag = name.strip_suffix(SUFFIX)?.rsplit('.').next()?;
    let pid = match tag.split_once('-') {
        Some((pid, rest)) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()) => pid,
        Some(_) => return None,
        None if tag.len() < 16 => tag, // cp's stream files: `.NAME.PID.cairn-tmp`
        None => return None,           // 16 hex digits: a random tag, no pid
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse::<i32>().ok().filter(|p| *p > 0)
}

fn alive(pid: i32) -> bool {
    if pid as u32 == std::process::id() {
        return true;
    }
    // Signal 0 checks for existence: ESRCH means no such process; EPERM means one exists.
    // SAFETY: kill with signal 0 sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether the temp file `name` (with metadata `meta`) belongs to a writer that is gone.
fn stale(name: &str, meta: &std::fs::Metadata, now: SystemTime) -> bool {
    if !is_temp(name) || !meta.is_file() {
        return false;
    }
    match writer_pid(name) {
        Some(pid) => !alive(pid),
        None => meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= LEGACY_AGE),
    }
}

/// Removes the stale cairn temp files directly in `dir` (not below it); returns how many.
/// Errors are skipped: a sweep is housekeeping, and a file it cannot remove stays as it was.
pub fn sweep(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_temp(name) {
            continue;
        }
        // symlink_metadata: a symlink named like a temp file is not ours.
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if stale(name, &meta, now) && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} temp file(s) a killed cairn left in {}",
            dir.display()
        );
    }
    removed
}

/// [`sweep`]s `dir` the first time this process writes into it.
pub fn sweep_once(dir: &Path) {
    static SWEPT: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let first = SWEPT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(dir.to_path_buf());
    if first {
        sweep(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_writer_pid() {
        let n = name_for("f.bin");
        assert!(is_temp(&n), "{n}");
        assert_eq!(writer_pid(&n), Some(std::process::id() as i32));
        assert_eq!(writer_pid(".f.bin.4242.cairn-tmp"), Some(4242));
        assert_eq!(writer_pid(".f.bin.0123456789abcdef.cairn-tmp"), None);
        assert_eq!(writer_pid(".f.bin.12-zz.cairn-tmp"), None);
        assert_eq!(writer_pid("f.bin"), None);
    }

    #[test]
    fn sweep_removes_only_dead_writers_files() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that is surely dead: a child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let files = [
            format!(".a.bin.{dead}-0badf00d.cairn-tmp"), // dead writer: swept
            format!(".b.bin.{dead}.cairn-tmp"),          // dead writer (cp): swept
            name_for("c.bin"),                           // this process: kept
            ".d.bin.0123456789abcdef.cairn-tmp".into(),  // no pid, fresh: kept
            format!("e.bin.{dead}-0badf00d.cairn-tmp"),  // not hidden: not ours, kept
            format!(".f.bin.{dead}-0badf00d.tmp"),       // other suffix: kept
        ];
        for f in &files {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        assert_eq!(sweep(dir.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want: Vec<String> = files[2..].to_vec();
        want.sort();
        assert_eq!(left, want);
    }
}
