//! Splits what the user typed into (store URL, key or prefix), as the aws cli and s5cmd do.
//!
//! - `s3://b/a/c.txt?region=x` → store `s3://b?region=x`, path `a/c.txt`
//! - `local://a/c.txt` → store `local://`, path `a/c.txt`; `memory://k` likewise
//! - `file:///abs/dir/f.txt` → store `file:///abs/dir`, path `f.txt`; a directory (existing, ending
//!   in `/`, or wanted as a tree root) is the store itself with path ""
//! - a plain path stays a path ([`Addr::Fs`]); `-` is stdin/stdout
//!
//! Everything is validated here, before any store is opened or any byte is written.

use crate::error::{usage, CliError, Report, Result};
use std::path::{Path, PathBuf};

/// A parsed address.
#[derive(Debug, Clone)]
pub enum Addr {
    /// `-`: stdin or stdout.
    Stdio,
    /// A plain local path, as typed.
    Fs(PathBuf),
    /// Something in a store.
    Store(StoreAddr),
}

/// A store plus a key or prefix inside it.
#[derive(Debug, Clone)]
pub struct StoreAddr {
    /// The URL to open (scheme, bucket or root, query options; no key).
    pub url: String,
    /// Key or prefix: "" for the store's top, no leading `/`, may end in `/`.
    pub path: String,
    /// Names a container rather than an object: a trailing `/`, a bare store or an existing
    /// directory. Copies into it keep the source's name.
    pub into: bool,
    /// The address as typed, for messages.
    pub shown: String,
    /// A plain path: the user's own files, opened without layers or sidecars
    /// ([`cairn::backend::dir::PlainDirStore`]). `file://` and `local://` are cairn stores.
    pub plain: bool,
}

impl StoreAddr {
    /// The path as an object key; "" or a trailing `/` is an error naming the address.
    pub fn key(&self) -> Result<cairn::Key> {
        if self.path.is_empty() || self.path.ends_with('/') {
            return Err(usage(
                format!("{} names a prefix, not an object", self.shown),
                "add the object's key, e.g. s3://bucket/dir/file.txt, or use -r for a prefix",
            ));
        }
        Ok(cairn::Key::new(self.path.as_str())?)
    }

    /// The path as a directory-style prefix: "" or ending in `/`.
    pub fn dir_prefix(&self) -> String {
        dir_prefix(&self.path)
    }

    /// The last segment of the path, if any (the name `cp -r` keeps when copying "into").
    pub fn base_name(&self) -> Option<&str> {
        self.path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
    }
}

/// `a/b` → `a/b/`, `` → ``.
pub fn dir_prefix(p: &str) -> String {
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// Parses an address. `want_dir`: a `file://` URL names a store root (for trees), not a file.
pub fn parse(raw: &str, want_dir: bool) -> Result<Addr> {
    if raw == "-" {
        return Ok(Addr::Stdio);
    }
    if raw.is_empty() {
        return Err(usage(
            "empty address",
            "give a path or a URL like s3://bucket/key",
        ));
    }
    if let Some(cold) = cairn::tier_url(raw) {
        // tier+URL: the cold store's address, opened with a hot tier in front.
        return match parse(cold, want_dir)? {
            Addr::Store(mut s) => {
                s.url = format!("tier+{}", s.url);
                s.shown = raw.to_string();
                Ok(Addr::Store(s))
            }
            _ => Err(usage(
                format!("{raw:?}: tier+ goes before a store URL"),
                "write tier+s3://bucket/prefix?hot=DIR or tier+file:///dir?hot=DIR",
            )),
        };
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Ok(Addr::Fs(PathBuf::from(raw)));
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let with_query = |base: String| match query {
        Some(q) => format!("{base}?{q}"),
        None => base,
    };
    if rest.contains('#') {
        return Err(usage(
            format!("address {raw:?} contains `#`"),
            "write `#` in a key as %23",
        ));
    }
    let addr = match scheme.to_ascii_lowercase().as_str() {
        "s3" | "s3a" => {
            let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
            let path = decode(path)?;
            StoreAddr {
                url: with_query(format!("{scheme}://{bucket}")),
                into: path.is_empty() || path.ends_with('/'),
                path,
                shown: raw.to_string(),
                plain: false,
            }
        }
        "local" | "memory" | "mem" => {
            let path = decode(rest)?.trim_start_matches('/').to_string();
            StoreAddr {
                url: with_query(format!("{scheme}://")),
                into: path.is_empty() || path.ends_with('/'),
                path,
                shown: raw.to_string(),
                plain: false,
            }
        }
        "file" => {
            let rest = rest.strip_prefix("localhost").unwrap_or(rest);
            if !rest.starts_with('/') {
                return Err(usage(
                    format!("file URL {raw:?} is not absolute"),
                    "use file:///absolute/path (three slashes)",
                ));
            }
            let decoded = decode(rest)?;
            check_no_dots(&decoded, raw)?;
            let path = PathBuf::from(decoded);
            let (root, key, into) = split_fs(&path, rest.ends_with('/'), want_dir);
            let (root, key) = within_store(root, key);
            StoreAddr {
                url: with_query(format!("file://{}", encode(&root)?)),
                path: key,
                into,
                shown: raw.to_string(),
                plain: false,
            }
        }
        _ => {
            // Let the library say what is wrong (unknown scheme, bad syntax).
            cairn::StoreUrl::parse(raw)?;
            return Err(usage(
                format!("cannot use {raw:?} here"),
                "see `cairn --help`",
            ));
        }
    };
    validate(&addr)?;
    Ok(Addr::Store(addr))
}

/// A plain path used where a store is needed (`ls ./dir`, `cat ./f`): a `file://` store over
/// the directory, or over a file's parent with the file name as key. The directory must exist:
/// opening a store on a missing one would create it.
pub fn fs_as_store(path: &Path, want_dir: bool) -> Result<StoreAddr> {
    let shown = path.display().to_string();
    let trailing = shown.ends_with('/');
    // Resolve `..` and links (store URLs refuse `..`): the path itself if it exists, else its
    // parent plus the last name.
    let abs = match (std::fs::canonicalize(path), path.parent(), path.file_name()) {
        (Ok(real), _, _) => real,
        (Err(_), Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            std::fs::canonicalize(parent)
                .map_err(|e| Report::new(format!("{shown}: {e}")))?
                .join(name)
        }
        (Err(e), _, _) => return Err(Report::new(format!("{shown}: {e}")).into()),
    };
    let (root, key, into) = split_fs(&abs, trailing, want_dir);
    if !root.is_dir() {
        return Err(CliError::Fail(Report::new(format!(
            "{shown}: no such directory"
        ))));
    }
    let addr = StoreAddr {
        url: format!("file://{}", encode(&root)?),
        path: key,
        into,
        shown,
        plain: true,
    };
    validate(&addr)?;
    Ok(addr)
}

/// Store root, key and "into" for a filesystem path.
fn split_fs(path: &Path, trailing_slash: bool, want_dir: bool) -> (PathBuf, String, bool) {
    let is_dir = path.is_dir();
    if want_dir || trailing_slash || is_dir {
        return (path.to_path_buf(), String::new(), trailing_slash || is_dir);
    }
    // A file: resolve symlinks so the store (which never follows links) sees the real file.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match (real.parent(), real.file_name()) {
        (Some(parent), Some(name)) => (
            parent.to_path_buf(),
            name.to_string_lossy().into_owned(),
            false,
        ),
        _ => (real.clone(), String::new(), true),
    }
}

/// A `file://` URL deep inside a cairn store (`file:///data/store/a/b.csv`) addresses the
/// store's object: the nearest ancestor holding the store's `.cairn/` folder is the root, so
/// the object's records (checksum, compression, encryption) are found. Elsewhere the URL's
/// directory is the root.
fn within_store(root: PathBuf, key: String) -> (PathBuf, String) {
    let mut dir = root.as_path();
    let mut below: Vec<String> = Vec::new();
    loop {
        if dir.join(cairn::backend::local::RESERVED_DIR).is_dir() {
            if below.is_empty() {
                return (root, key);
            }
            below.reverse();
            let mut k = below.join("/");
            if !key.is_empty() {
                k = format!("{k}/{key}");
            } else {
                k.push('/');
            }
            return (dir.to_path_buf(), k);
        }
        match (dir.parent(), dir.file_name()) {
            (Some(parent), Some(name)) => {
                below.push(name.to_string_lossy().into_owned());
                dir = parent;
            }
            _ => return (root, key),
        }
    }
}

fn check_no_dots(path: &str, raw: &str) -> Result {
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(usage(
            format!("URL {raw:?} has a `.` or `..` segment"),
            "store URLs cannot climb out of their root; write the absolute path",
        ));
    }
    Ok(())
}

fn validate(a: &StoreAddr) -> Result {
    // The store part goes through the library parser: scheme, bucket name, query options.
    let parsed = cairn::StoreUrl::parse(&a.url)?;
    drop(parsed);
    cairn::key::validate_prefix(&a.path).map_err(|e| {
        let mut r = Report::from(e);
        r.what = format!("{}: {}", a.shown, r.what);
        CliError::Fail(r)
    })?;
    Ok(())
}

/// Percent-decodes a URL path, as the library's URL parser does.
fn decode(p: &str) -> Result<String> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        usage(
            format!("{p:?} is not UTF-8 after decoding"),
            "keys are UTF-8",
        )
    })
}

/// A filesystem path as the path of a `file://` URL: only the characters the URL parser would
/// take for syntax are escaped.
fn encode(p: &Path) -> Result<String> {
    let s = p.to_str().ok_or_else(|| {
        usage(
            format!("{} is not UTF-8", p.display()),
            "cairn stores need UTF-8 paths",
        )
    })?;
    Ok(s.replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(raw: &str) -> StoreAddr {
        match parse(raw, false).unwrap() {
            Addr::Store(s) => s,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn file_urls_inside_a_store_use_the_stores_root() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(root.join(".cairn/meta")).unwrap();
        std::fs::create_dir_all(root.join("exports/day")).unwrap();
        std::fs::write(root.join("exports/day/laps.csv"), b"1").unwrap();
        let url = |p: &str| format!("file://{}/{p}", root.display());
        let a = store(&url("exports/day/laps.csv"));
        assert_eq!(a.url, format!("file://{}", root.display()));
        assert_eq!((a.path.as_str(), a.into), ("exports/day/laps.csv", false));
        let a = store(&url("exports/"));
        assert_eq!((a.path.as_str(), a.into), ("exports/", true));
        // Outside any store the URL's directory is the root, as before.
        let plain = tempfile::tempdir().unwrap();
        let proot = std::fs::canonicalize(plain.path()).unwrap();
        std::fs::write(proot.join("f.txt"), b"1").unwrap();
        let a = store(&format!("file://{}/f.txt", proot.display()));
        assert_eq!(
            (a.url, a.path.as_str()),
            (format!("file://{}", proot.display()), "f.txt")
        );
    }

    #[test]
    fn splits_store_and_key() {
        let a = store("s3://bkt/a/c.txt?region=eu-west-1");
        assert_eq!(
            (a.url.as_str(), a.path.as_str(), a.into),
            ("s3://bkt?region=eu-west-1", "a/c.txt", false)
        );
        let a = store("s3://bkt");
        assert_eq!(
            (a.url.as_str(), a.path.as_str(), a.into),
            ("s3://bkt", "", true)
        );
        let a = store("s3://bkt/dir/");
        assert_eq!(
            (a.path.as_str(), a.into, a.dir_prefix().as_str()),
            ("dir/", true, "dir/")
        );
        let a = store("local://ü/x%20y.txt");
        assert_eq!((a.url.as_str(), a.path.as_str()), ("local://", "ü/x y.txt"));
        assert_eq!(a.base_name(), Some("x y.txt"));
        let a = store("memory://k");
        assert_eq!((a.url.as_str(), a.path.as_str()), ("memory://", "k"));
        assert!(matches!(parse("-", false).unwrap(), Addr::Stdio));
        assert!(matches!(parse("./x/y.txt", false).unwrap(), Addr::Fs(_)));
    }

    #[test]
    fn file_urls_split_at_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let a = store(&format!("file://{d}/f.txt"));
        assert_eq!(a.url, format!("file://{d}"));
        assert_eq!((a.path.as_str(), a.into), ("f.txt", false));
        let a = store(&format!("file://{d}"));
        assert_eq!(
            (a.url, a.path.as_str(), a.into),
            (format!("file://{d}"), "", true)
        );
        match parse(&format!("file://{d}/new"), true).unwrap() {
            Addr::Store(a) => assert_eq!((a.path.as_str(), a.into), ("", false)),
            _ => unreachable!(),
        }
    }

    #[test]
    fn bad_addresses_are_refused() {
        for raw in [
            "s3://bkt/a/../b",
            "local://a/%2E%2E/b",
            "local://a//b",
            "s3://UPPER/x",
            "s3:///x",
            "gopher://x/y",
            "file://relative/x",
            "file:///a/../b",
            "file:///a/./b",
            "s3://bkt/x?bogus=1",
            "s3://bkt/x#frag",
        ] {
            assert!(parse(raw, false).is_err(), "{raw}");
        }
    }
}
