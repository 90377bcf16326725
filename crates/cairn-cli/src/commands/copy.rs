//! Copying between stores, local files, stdin and stdout: one object or a whole tree.
//!
//! Nothing here is CLI-specific: it works on `&dyn Store`, reports through [`Reporter`] and
//! never prints, so it can move into cairn's transfer engine as it is.
//!
//! - Memory is bounded: bytes stream through in chunks; uploads go through
//!   [`cairn::transfer::put_stream`] (one part buffered per part in flight).
//! - A download lands in a temp file beside its target and is renamed into place, so a failed
//!   copy leaves nothing behind.
//! - A tree copies with bounded concurrency; a failed item does not stop the rest, except for
//!   errors that doom every item (missing bucket, bad credentials, unreachable endpoint).

use bytes::{Bytes, BytesMut};
use cairn::transfer::{put_stream, WriterOptions};
use cairn::{Error, ErrorKind, GetOptions, Key, Metadata, PutOptions, Store, StoreExt};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 256 * 1024;

/// An open source of bytes, with what is known about it.
pub struct Reader {
    /// Total size, if known (not for stdin).
    pub size: Option<u64>,
    /// Content type of the source object, or one guessed from a file name.
    pub content_type: Option<String>,
    /// User metadata of the source object.
    pub metadata: Metadata,
    /// The bytes.
    pub body: BoxStream<'static, cairn::Result<Bytes>>,
}

/// Opens an object for reading.
pub async fn open_object(store: &dyn Store, key: &Key) -> cairn::Result<Reader> {
    let r = store.get_opts(key, GetOptions::default()).await?;
    Ok(Reader {
        size: Some(r.range.end - r.range.start),
        content_type: r.meta.content_type,
        metadata: r.meta.metadata,
        body: r.body,
    })
}

/// Opens a local file for reading.
pub async fn open_file(path: &Path) -> cairn::Result<Reader> {
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| fs_err(e, "read", path))?;
    let m = f.metadata().await.map_err(|e| fs_err(e, "read", path))?;
    if m.is_dir() {
        return Err(Error::invalid("it is a directory")
            .with_operation("read")
            .with_key(path.display().to_string())
            .with_hint("use -r to copy a directory"));
    }
    let shown = path.display().to_string();
    Ok(Reader {
        size: Some(m.len()),
        content_type: guess_content_type(path).map(str::to_string),
        metadata: Metadata::new(),
        body: read_stream(f, shown),
    })
}

/// Reads stdin to its end.
pub fn open_stdin() -> Reader {
    Reader {
        size: None,
        content_type: None,
        metadata: Metadata::new(),
        body: read_stream(tokio::io::stdin(), "stdin".into()),
    }
}

fn read_stream<R>(r: R, shown: String) -> BoxStream<'static, cairn::Result<Bytes>>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    stream::try_unfold((r, shown), |(mut r, shown)| async move {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let n = r.read_buf(&mut buf).await.map_err(|e| {
            Error::from(e)
                .with_operation("read")
                .with_key(shown.clone())
        })?;
        Ok(if n == 0 {
            None
        } else {
            Some((buf.freeze(), (r, shown)))
        })
    })
    .boxed()
}

/// An io error on a local path, with the path as its key.
pub fn fs_err(e: std::io::Error, op: &'static str, path: &Path) -> Error {
    Error::from(e)
        .with_operation(op)
        .with_key(path.display().to_string())
}

/// Put options for a copy: explicit ones win over what the source carries.
pub fn merge_put(explicit: &PutOptions, reader: &Reader) -> PutOptions {
    let mut put = explicit.clone();
    if put.content_type.is_none() {
        put.content_type = reader.content_type.clone();
    }
    let mut metadata = reader.metadata.clone();
    // The destination's layers write their own `cairn-*` entries; the source's would be refused.
    cairn::layer::stack::strip_reserved(&mut metadata);
    metadata.extend(explicit.metadata.clone());
    put.metadata = metadata;
    put
}

/// Uploads a reader to `key`, calling `on_bytes` as bytes go out. Returns the bytes written.
pub async fn write_object(
    store: &dyn Store,
    key: &Key,
    reader: Reader,
    put: PutOptions,
    writer: WriterOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> cairn::Result<u64> {
    let total = AtomicU64::new(0);
    let writer = WriterOptions {
        size_hint: reader.size,
        ..writer
    };
    let body = reader.body.inspect_ok(|c| {
        total.fetch_add(c.len() as u64, Ordering::Relaxed);
        on_bytes(c.len() as u64);
    });
    put_stream(store, key, body, put, writer).await?;
    Ok(total.into_inner())
}

/// A temp file removed on drop unless kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn create_temp(dir: &Path) -> cairn::Result<(tokio::fs::File, TempFile)> {
    static N: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".cairn-{}-{n}.tmp", std::process::id()));
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(f) => return Ok((f, TempFile { path, keep: false })),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fs_err(e, "write", dir)),
        }
    }
}

/// Writes a reader to a local file atomically: temp file beside it, fsync, rename.
pub async fn write_file(
    dest: &Path,
    mut reader: Reader,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> cairn::Result<u64> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| fs_err(e, "write", &dir))?;
    let (mut file, mut temp) = create_temp(&dir).await?;
    let mut n = 0u64;
    while let Some(chunk) = reader.body.next().await {
        let chunk = chunk?;
        file.write_all(&chunk)
            .await
            .map_err(|e| fs_err(e, "write", dest))?;
        n += chunk.len() as u64;
        on_bytes(chunk.len() as u64);
    }
    file.sync_all()
        .await
        .map_err(|e| fs_err(e, "write", dest))?;
    drop(file);
    tokio::fs::rename(&temp.path, dest)
        .await
        .map_err(|e| fs_err(e, "write", dest))?;
    temp.keep = true;
    if let Ok(d) = tokio::fs::File::open(&dir).await {
        let _ = d.sync_all().await;
    }
    Ok(n)
}

/// A content type from a file name, for the common kinds (as the aws cli guesses).
pub fn guess_content_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "zst" => "application/zstd",
        "tar" => "application/x-tar",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        _ => return None,
    })
}

/// Where a tree comes from.
pub enum TreeSource<'a> {
    /// A local directory.
    Dir(PathBuf),
    /// Every object under a prefix ("" or ending in `/`).
    Prefix {
        store: &'a dyn Store,
        prefix: String,
    },
}

/// Where a tree goes; item paths are appended to it.
pub enum TreeDest<'a> {
    /// A local directory.
    Dir(PathBuf),
    /// A prefix ("" or ending in `/`).
    Prefix {
        store: &'a dyn Store,
        prefix: String,
    },
}

/// Settings for a tree copy.
#[derive(Debug, Clone)]
pub struct TreeOptions {
    /// Items copied at once.
    pub concurrency: usize,
    /// Content type and metadata for every uploaded object (over what the source carries).
    pub put: PutOptions,
    /// Part size and part concurrency per upload.
    pub writer: WriterOptions,
}

/// Hears about a tree copy or delete as it goes.
pub trait Reporter: Sync {
    /// Bytes moved (called often).
    fn bytes(&self, _n: u64) {}
    /// An item finished.
    fn done(&self, _rel: &str, _size: u64) {}
    /// An item failed or was skipped; the operation goes on.
    fn failed(&self, _rel: &str, _error: &Error) {}
}

/// What a bulk operation did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Items done.
    pub done: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Items failed or skipped.
    pub failed: u64,
}

impl Summary {
    /// Items attempted.
    pub fn total(&self) -> u64 {
        self.done + self.failed
    }
}

/// Whether `e` dooms every other item too, so the operation should stop rather than fail each.
pub fn is_fatal(e: &Error, nothing_done_yet: bool) -> bool {
    match e.kind() {
        ErrorKind::BucketNotFound | ErrorKind::Unauthenticated => true,
        ErrorKind::Network | ErrorKind::Timeout => nothing_done_yet,
        _ => false,
    }
}

enum Origin {
    Path(PathBuf),
    Key(Key),
}

/// One listed item: its path relative to the tree root, or why it cannot be copied.
enum Listed {
    Item { rel: String, from: Origin },
    Skip { rel: String, error: Error },
}

fn list_tree(src: &TreeSource<'_>) -> BoxStream<'static, cairn::Result<Listed>> {
    match src {
        TreeSource::Prefix { store, prefix } => {
            let prefix = prefix.clone();
            store
                .list_objects(&prefix)
                .map_ok(move |m| {
                    let rel = m
                        .key
                        .strip_prefix(&prefix)
                        .unwrap_or(m.key.as_str())
                        .to_string();
                    Listed::Item {
                        rel,
                        from: Origin::Key(m.key),
                    }
                })
                .boxed()
        }
        TreeSource::Dir(root) => {
            let (tx, rx) = tokio::sync::mpsc::channel(256);
            let root = root.clone();
            tokio::task::spawn_blocking(move || walk_dir(&root, "", &tx));
            stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
        }
    }
}

type Tx = tokio::sync::mpsc::Sender<cairn::Result<Listed>>;

/// Walks a directory, sending every file; false once the receiver is gone.
fn walk_dir(dir: &Path, rel_dir: &str, tx: &Tx) -> bool {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            let err = fs_err(e, "list", dir);
            // The root failing is fatal; a subdirectory failing is one skipped item.
            let msg = if rel_dir.is_empty() {
                Err(err)
            } else {
                Ok(Listed::Skip {
                    rel: rel_dir.trim_end_matches('/').into(),
                    error: err,
                })
            };
            return tx.blocking_send(msg).is_ok();
        }
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            let rel = format!("{rel_dir}{}", entry.file_name().to_string_lossy());
            let error = Error::invalid("the file name is not UTF-8; keys must be");
            if tx.blocking_send(Ok(Listed::Skip { rel, error })).is_err() {
                return false;
            }
            continue;
        };
        let rel = format!("{rel_dir}{name}");
        // Follow links to files (as the aws cli does); never links to directories (cycles).
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let msg = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() && is_link => Ok(Listed::Skip {
                rel,
                error: Error::unsupported("it is a symlink to a directory; not followed"),
            }),
            Ok(m) if m.is_dir() => {
                if !walk_dir(&path, &format!("{rel}/"), tx) {
                    return false;
                }
                continue;
            }
            Ok(m) if m.is_file() => match Key::new(rel.as_str()) {
                Ok(_) => Ok(Listed::Item {
                    rel,
                    from: Origin::Path(path),
                }),
                Err(error) => Ok(Listed::Skip { rel, error }),
            },
            Ok(_) => Ok(Listed::Skip {
                rel,
                error: Error::unsupported("not a regular file"),
            }),
            Err(e) => Ok(Listed::Skip {
                rel,
                error: fs_err(e, "read", &path),
            }),
        };
        if tx.blocking_send(msg).is_err() {
            return false;
        }
    }
    true
}

enum Step {
    Done(String, u64),
    Failed(String, Error),
    Fatal(Error),
}

/// Copies every item of `src` to the same relative path under `dst`.
///
/// Returns `Err` only for a failure that dooms the whole copy (see [`is_fatal`]), including a
/// listing that fails; other failures are counted and reported item by item.
pub async fn copy_tree(
    src: &TreeSource<'_>,
    dst: &TreeDest<'_>,
    opts: &TreeOptions,
    rep: &dyn Reporter,
) -> cairn::Result<Summary> {
    let mut steps = list_tree(src)
        .map(|listed| async move {
            match listed {
                Err(e) => Step::Fatal(e),
                Ok(Listed::Skip { rel, error }) => Step::Failed(rel, error),
                Ok(Listed::Item { rel, from }) => {
                    match copy_item(&rel, &from, src, dst, opts, rep).await {
                        Ok(n) => Step::Done(rel, n),
                        Err(e) => Step::Failed(rel, e),
                    }
                }
            }
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut sum = Summary::default();
    while let Some(step) = steps.next().await {
        match step {
            Step::Done(rel, n) => {
                sum.done += 1;
                sum.bytes += n;
                rep.done(&rel, n);
            }
            Step::Failed(_, e) if is_fatal(&e, sum.done == 0) => return Err(e),
            Step::Failed(rel, e) => {
                sum.failed += 1;
                rep.failed(&rel, &e);
            }
            Step::Fatal(e) => return Err(e),
        }
    }
    Ok(sum)
}

async fn copy_item(
    rel: &str,
    from: &Origin,
    src: &TreeSource<'_>,
    dst: &TreeDest<'_>,
    opts: &TreeOptions,
    rep: &dyn Reporter,
) -> cairn::Result<u64> {
    let reader = match (from, src) {
        (Origin::Path(p), _) => open_file(p).await?,
        (Origin::Key(k), TreeSource::Prefix { store, .. }) => open_object(*store, k).await?,
        (Origin::Key(_), TreeSource::Dir(_)) => unreachable!("a directory lists paths"),
    };
    let on_bytes = |n| rep.bytes(n);
    match dst {
        TreeDest::Dir(dir) => write_file(&dir.join(rel), reader, &on_bytes).await,
        TreeDest::Prefix { store, prefix } => {
            let key = Key::new(format!("{prefix}{rel}"))?;
            let put = merge_put(&opts.put, &reader);
            write_object(*store, &key, reader, put, opts.writer, &on_bytes).await
        }
    }
}
