//! Paths under the root, resolved one directory at a time and never through a symlink.
//!
//! Checking a path for symlinks and then using it leaves a window in which a directory on the
//! way can be swapped for a link to outside the root. So every operation on a key opens each
//! directory relative to the one before it with `O_NOFOLLOW`, and acts on the last name
//! relative to that descriptor (`openat`, `renameat`, `linkat`, `unlinkat`, `mkdirat`). A link
//! swapped in at any moment fails the operation with ELOOP; nothing outside the root is read,
//! written or removed. The root itself is the user's choice and may be reached through links.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

const DIR: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::RDONLY);

/// How often a resolution that creates directories starts over when a concurrent delete
/// prunes one of them under it.
const ATTEMPTS: usize = 8;

/// What a symlink on the way is reported as.
pub(super) const LINK: &str = "a symlink is on the way; the local store never follows links";

/// The io error of `e`; a symlink on the way (ELOOP from `O_NOFOLLOW`) is PermissionDenied.
fn io(e: Errno) -> io::Error {
    if e == Errno::LOOP {
        return io::Error::new(io::ErrorKind::PermissionDenied, LINK);
    }
    e.into()
}

/// Whether `e` is the error of a symlink on the way.
pub(super) fn is_link(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.to_string() == LINK)
}

/// A directory under the root, opened without following links, and a name in it.
pub(super) struct At {
    pub(super) dir: OwnedFd,
    pub(super) name: String,
}

/// Splits `rel` (a key-like path) into its directory segments and last name.
fn split(rel: &str) -> (Vec<&str>, &str) {
    let mut segs: Vec<&str> = rel.split('/').collect();
    let name = segs.pop().unwrap_or("");
    (segs, name)
}

/// Opens the subdirectory `seg` of `dir` without following a link: a link gives ELOOP.
fn step(dir: &impl AsFd, seg: &str) -> Result<OwnedFd, Errno> {
    match rfs::openat(dir, seg, DIR, Mode::empty()) {
        // O_DIRECTORY wins over O_NOFOLLOW on Linux: a link to a directory gives ENOTDIR.
        Err(Errno::NOTDIR) => match rfs::statat(dir, seg, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink => {
                Err(Errno::LOOP)
            }
            _ => Err(Errno::NOTDIR),
        },
        r => r,
    }
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    rfs::open(root, DIR.difference(OFlags::NOFOLLOW), Mode::empty()).map_err(io)
}

/// Opens the directory `segs` under `root` without creating anything.
pub(super) fn open_dir(root: &Path, segs: &[&str]) -> io::Result<OwnedFd> {
    let mut dir = open_root(root)?;
    for seg in segs {
        dir = step(&dir, seg).map_err(io)?;
    }
    Ok(dir)
}

/// Opens the directory `segs` under `root`, making missing ones; each directory whose entries
/// changed (the parent of one made) is pushed onto `changed`, to be fsynced.
pub(super) fn create_dir(
    root: &Path,
    segs: &[&str],
    changed: &mut Vec<OwnedFd>,
) -> io::Result<OwnedFd> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match create_dir_once(root, segs, changed) {
            // A concurrent delete pruned a directory between its mkdir and the next step.
            Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
            r => return r,
        }
    }
    Err(last.expect("at least one attempt"))
}

fn create_dir_once(root: &Path, segs: &[&str], changed: &mut Vec<OwnedFd>) -> io::Result<OwnedFd> {
    let mut dir = open_root(root)?;
    for seg in segs {
        let next = match step(&dir, seg) {
            Err(Errno::NOENT) => {
                match rfs::mkdirat(&dir, *seg, Mode::from_raw_mode(0o777)) {
                    Ok(()) => changed.push(dir.as_fd().try_clone_to_owned()?),
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(io(e)),
                }
                step(&dir, seg).map_err(io)?
            }
            r => r.map_err(io)?,
        };
        dir = next;
    }
    Ok(dir)
}

/// The directory of `rel` (not created) and its last name.
pub(super) fn at(root: &Path, rel: &str) -> io::Result<At> {
    let (segs, name) = split(rel);
    Ok(At {
        dir: open_dir(root, &segs)?,
        name: name.to_string(),
    })
}

/// Runs `op` on the directory of `rel` (created if missing) and its last name. When the
/// directory is pruned by a concurrent delete before `op` lands (NotFound), opens it again.
/// The directory is pushed onto `changed` once `op` succeeds.
pub(super) fn into_dir<T>(
    root: &Path,
    rel: &str,
    changed: &mut Vec<OwnedFd>,
    mut op: impl FnMut(&At) -> io::Result<T>,
) -> io::Result<T> {
    let (segs, name) = split(rel);
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let at = At {
            dir: create_dir(root, &segs, changed)?,
            name: name.to_string(),
        };
        match op(&at) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
            Ok(v) => {
                changed.push(at.dir);
                return Ok(v);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Opens the file `rel` for reading; a symlink anywhere on the way fails with ELOOP.
pub(super) fn open_file(root: &Path, rel: &str) -> io::Result<fs::File> {
    let at = at(root, rel)?;
    at.open()
}

impl At {
    /// Opens the name for reading, not following a link (non-blocking, so a FIFO planted
    /// in the tree cannot hang the open).
    pub(super) fn open(&self) -> io::Result<fs::File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rfs::openat(&self.dir, self.name.as_str(), flags, Mode::empty()).map_err(io)?;
        let file = fs::File::from(fd);
        // Reads of a regular file never block; clear the flag so they behave as usual.
        rfs::fcntl_setfl(&file, OFlags::empty()).map_err(io)?;
        Ok(file)
    }

    /// Whether the name has an entry (a link counts: it is not followed).
    pub(super) fn exists(&self) -> io::Result<bool> {
        match rfs::statat(&self.dir, self.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    /// Fails with the link error if the name is a symlink: a write replaces the link itself
    /// (it never follows it), but a key that is a link is refused like one on the way.
    pub(super) fn refuse_link(&self) -> io::Result<()> {
        match rfs::statat(&self.dir, self.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink => {
                Err(io(Errno::LOOP))
            }
            _ => Ok(()),
        }
    }

    /// Renames the file at `from` (a path in cairn's own temp directory) to this name.
    pub(super) fn rename_from(&self, from: &Path) -> io::Result<()> {
        rfs::renameat(rfs::CWD, from, &self.dir, self.name.as_str()).map_err(io)
    }

    /// Renames this entry to `to`.
    pub(super) fn rename_to(&self, to: &At) -> io::Result<()> {
        rfs::renameat(&self.dir, self.name.as_str(), &to.dir, to.name.as_str()).map_err(io)
    }

    /// Hard-links the file at `from` as this name; fails with AlreadyExists if it exists.
    pub(super) fn link_from(&self, from: &Path) -> io::Result<()> {
        rfs::linkat(
            rfs::CWD,
            from,
            &self.dir,
            self.name.as_str(),
            AtFlags::empty(),
        )
        .map_err(io)
    }

    /// Hard-links this entry as `to`.
    pub(super) fn link_to(&self, to: &At) -> io::Result<()> {
        rfs::linkat(
            &self.dir,
            self.name.as_str(),
            &to.dir,
            to.name.as_str(),
            AtFlags::empty(),
        )
        .map_err(io)
    }

    /// Removes the name (a file, or a link itself: never what it points to).
    pub(super) fn remove(&self) -> io::Result<()> {
        rfs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty()).map_err(io)
    }

    /// Removes the name; whether it was there.
    pub(super) fn remove_if_exists(&self) -> io::Result<bool> {
        match self.remove() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Removes the empty directories on the way to `rel` under `root`, deepest first, stopping at
/// the first one that is not empty (or gone, or a link), and keeping the first `keep`.
pub(super) fn prune_empty_dirs(root: &Path, rel: &str, keep: usize) {
    let (segs, _) = split(rel);
    let Ok(mut dir) = open_root(root) else { return };
    // The chain of directories, each opened from the one before: a link on the way ends it.
    let mut chain = Vec::with_capacity(segs.len());
    for seg in &segs {
        match step(&dir, seg) {
            Ok(next) => chain.push(std::mem::replace(&mut dir, next)),
            Err(_) => return,
        }
    }
    for (parent, seg) in chain.iter().zip(&segs).skip(keep).rev() {
        if rfs::unlinkat(parent, *seg, AtFlags::REMOVEDIR).is_err() {
            break;
        }
    }
}

/// The metadata of the entry `name` in `dir`, without following it (a link reads as a link)
/// and without opening it for reading.
pub(super) fn meta_at(dir: &impl AsFd, name: &str) -> io::Result<fs::Metadata> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fs::File::from(fd).metadata(),
        // Without O_PATH, a link fails to open: report it as one.
        Err(Errno::LOOP) => Err(io(Errno::LOOP)),
        Err(e) => Err(io(e)),
    }
}

/// Opens the subdirectory `name` of `dir`, not following a link.
pub(super) fn open_sub(dir: &impl AsFd, name: &str) -> io::Result<OwnedFd> {
    step(dir, name).map_err(io)
}

/// An entry of a directory listing. A directory's name ends in `/`, so that names sort in
/// S3 key order.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) kind: Kind,
}

/// What a directory entry is to a listing.
pub(super) enum Kind {
    Dir,
    File,
    /// Not an object (a link, a socket, a name that is not UTF-8): listed as
    /// [`crate::ListEntry::Unlisted`], for this reason.
    NotObject(&'static str),
}

/// Why a link is not listed as an object.
pub(super) const LINK_ENTRY: &str =
    "a symbolic link: cairn does not follow links, so nothing outside the root is read";
const SPECIAL: &str = "not a regular file or directory (a socket, FIFO or device)";
const NOT_UTF8: &str = "its name is not UTF-8 (shown with U+FFFD for the bytes that are not)";
const NOT_UTF8_DIR: &str =
    "its name is not UTF-8 (shown with U+FFFD for the bytes that are not); nothing under it is \
     listed";

/// The entries of `dir`, without `.` and `..`. Nothing else is left out: what cannot be an
/// object comes back as [`Entry::NotObject`], for the listing to report.
pub(super) fn read_dir(dir: &impl AsFd) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for e in rfs::Dir::read_from(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let raw = e.file_name();
        let Ok(name) = raw.to_str() else {
            let mut name = String::from_utf8_lossy(raw.to_bytes()).into_owned();
            let why = if e.file_type() == rfs::FileType::Directory {
                name.push('/');
                NOT_UTF8_DIR
            } else {
                NOT_UTF8
            };
            out.push(Entry {
                name,
                kind: Kind::NotObject(why),
            });
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let mut name = name.to_string();
        let ft = match e.file_type() {
            rfs::FileType::Unknown => {
                match rfs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => rfs::FileType::from_raw_mode(st.st_mode),
                    // Gone since the read.
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(io(e)),
                }
            }
            t => t,
        };
        let kind = match ft {
            rfs::FileType::Directory => {
                name.push('/');
                Kind::Dir
            }
            rfs::FileType::RegularFile => Kind::File,
            rfs::FileType::Symlink => Kind::NotObject(LINK_ENTRY),
            _ => Kind::NotObject(SPECIAL),
        };
        out.push(Entry { name, kind });
    }
    Ok(out)
}

/// fsyncs each directory once (by inode), so the renames and creates in them last.
pub(super) fn sync_dirs(dirs: Vec<OwnedFd>) {
    let mut seen = std::collections::HashSet::new();
    for d in dirs {
        let Ok(st) = rfs::fstat(&d) else { continue };
        if seen.insert((st.st_dev, st.st_ino)) {
            let _ = rfs::fsync(&d);
        }
    }
}
