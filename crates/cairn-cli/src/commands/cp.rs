//! `cairn cp SRC DST`: one file or object, stdin/stdout, or a tree with `-r`.
//!
//! Both addresses are parsed and both stores opened before a byte moves, so bad input fails
//! with nothing written. Files and objects move through cairn's transfer engine
//! (`cairn::transfer`), the same one under `sync` and the library; only stdin/stdout and
//! plain file-to-file copies stream here.

use super::copy::{self, fs_err, guess_content_type, Reporter as _};
use super::{
    checksum_off, open, open_existing, partial_or_unverified, shown_key, BulkReporter, Ctx,
};
use crate::address::{self, dir_prefix, Addr};
use crate::args::CpArgs;
use crate::error::{usage, CliError, Report, Result};
use crate::printer::human_bytes;
use crate::progress::Progress;
use bytes::{Bytes, BytesMut};
use cairn::ops::reporter::{Item, Outcome, Reporter};
use cairn::transfer::{self, put_stream, TransferOptions, UploadItem};
use cairn::{DynStore, Error, GetOptions, Key, PutOptions};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

pub async fn run(ctx: &Ctx, a: &CpArgs) -> Result {
    let put = put_options(a)?;
    let src = address::parse(&a.src, a.recursive)?;
    // `cp -r file dst` is a plain copy, as in cp(1).
    let tree = a.recursive && !matches!(&src, Addr::Fs(p) if p.is_file());
    let dst = address::parse(&a.dst, tree)?;
    if tree {
        copy_tree(ctx, a, src, dst, put).await
    } else {
        let src = if a.recursive {
            address::parse(&a.src, false)?
        } else {
            src
        };
        copy_one(ctx, a, src, dst, put).await
    }
}

/// `--content-type` and `--meta k=v`, checked before anything happens.
fn put_options(a: &CpArgs) -> Result<PutOptions> {
    Ok(PutOptions {
        content_type: a.content_type.clone(),
        metadata: parse_meta(&a.meta)?,
        ..Default::default()
    })
}

/// `--meta k=v` pairs: names lower-cased, ASCII letters, digits, `-` and `_`, not `cairn-*`.
pub fn parse_meta(pairs: &[String]) -> Result<cairn::Metadata> {
    let mut out = cairn::Metadata::new();
    for m in pairs {
        let Some((k, v)) = m.split_once('=') else {
            return Err(usage(
                format!("--meta {m:?} is not KEY=VALUE"),
                "write --meta owner=ana",
            ));
        };
        let k = k.trim().to_ascii_lowercase();
        let ok = !k.is_empty()
            && k.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && !k.starts_with(cairn::RESERVED_META_PREFIX);
        if !ok {
            return Err(usage(
                format!("--meta name {k:?} is not allowed"),
                "names are ASCII letters, digits, `-` and `_`, not starting with `cairn-`",
            ));
        }
        out.insert(k, v.to_string());
    }
    Ok(out)
}

/// The source of a single copy, validated and opened but not yet read.
enum One {
    Stdin,
    File(PathBuf, u64),
    Object(DynStore, Key),
}

/// Where a single copy goes.
enum To {
    Stdout,
    File(PathBuf),
    Object(DynStore, Key, String),
}

/// Transfer settings from the flags; the engine's defaults otherwise. A source store with its
/// checksum layer off (`-o checksum=false`) is read unchecked, and nothing from it is reported
/// unverified: the user opted out.
fn transfer_options(ctx: &Ctx, a: &CpArgs, src: &Addr, put: PutOptions) -> TransferOptions {
    let mut opts = TransferOptions {
        object_concurrency: (a.concurrency as usize).max(1),
        put,
        ..Default::default()
    };
    a.transfer.apply(&mut opts);
    if let Addr::Store(s) = src {
        opts.verify = !checksum_off(ctx, s);
    }
    opts
}

async fn copy_one(ctx: &Ctx, a: &CpArgs, src: Addr, dst: Addr, put: PutOptions) -> Result {
    // 1. Validate and open everything.
    let (from, name) = match &src {
        Addr::Stdio => (One::Stdin, None),
        Addr::Fs(p) => {
            let m = std::fs::metadata(p).map_err(|e| fs_err(e, "read", p))?;
            if m.is_dir() {
                return Err(usage(
                    format!("{} is a directory", p.display()),
                    "use -r to copy a directory",
                ));
            }
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (One::File(p.clone(), m.len()), name)
        }
        Addr::Store(s) => {
            let key = s.key()?;
            let store = open_existing(ctx, s).await?;
            let name = Some(key.file_name().to_string());
            (One::Object(store, key), name)
        }
    };
    let need_name = |what: &str| {
        name.clone().ok_or_else(|| {
            usage(
                format!("cannot copy stdin into {what}: stdin has no name"),
                "name the destination, e.g. s3://bucket/dir/file.bin",
            )
        })
    };
    let to = match &dst {
        Addr::Stdio => To::Stdout,
        Addr::Fs(p) => {
            let into = p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/');
            To::File(if into {
                p.join(need_name(&p.display().to_string())?)
            } else {
                p.clone()
            })
        }
        Addr::Store(s) => {
            let key = if s.into {
                Key::new(format!("{}{}", dir_prefix(&s.path), need_name(&s.shown)?))?
            } else {
                s.key()?
            };
            let store = open(ctx, s).await?;
            let shown = shown_key(s, key.as_str());
            To::Object(store, key, shown)
        }
    };

    // 2. Move the bytes through the transfer engine. Every path reads the source before it
    //    writes anything, so a missing object fails with nothing written.
    let size = match &from {
        One::File(_, n) => Some(*n),
        _ => None,
    };
    let progress = ctx.printer.progress("copy");
    if let Some(n) = size {
        progress.discovered(1, n);
    }
    let rep = BytesReporter {
        progress: &progress,
        unverified: AtomicBool::new(false),
    };
    let on_bytes = |n| progress.bytes(n);
    let mut opts = transfer_options(ctx, a, &src, put);
    // A stream to stdout or from an old version reads the object itself: unchecked when the
    // object has no recorded SHA-256 (the checksum layer checks those that have one).
    let check = opts.clone();
    let unchecked = |store: &DynStore, meta: &cairn::ObjectMeta| {
        if check.unverified(store.as_ref(), meta) {
            rep.unverified.store(true, Ordering::Relaxed);
        }
    };
    let shown = match &to {
        To::Stdout => String::new(),
        To::File(p) => p.display().to_string(),
        To::Object(_, _, shown) => shown.clone(),
    };
    let written: Result<Option<u64>> = async {
        if let Some(v) = &a.version_id {
            // An old version is read whole (one stream), then written like stdin would be.
            let One::Object(store, key) = from else {
                return Err(usage(
                    "--version-id names a version of a stored object",
                    "the source must be a store URL, e.g. s3://bucket/key",
                ));
            };
            cairn::backend::s3::admin::check_version_id(v)?;
            let get = GetOptions {
                version: Some(v.clone()),
                ..Default::default()
            };
            let got = store.get_opts(&key, get).await?;
            unchecked(&store, &got.meta);
            let body = got.body;
            return match to {
                To::Stdout => {
                    super::cat::to_stdout(ctx, body, &on_bytes).await?;
                    Ok(None)
                }
                To::File(p) => Ok(Some(write_stream_file(&p, body, &on_bytes).await?)),
                To::Object(store, key, _) => {
                    let total = AtomicU64::new(0);
                    let body = body.inspect_ok(|c| {
                        total.fetch_add(c.len() as u64, Ordering::Relaxed);
                        on_bytes(c.len() as u64);
                    });
                    let put = opts.put.clone();
                    put_stream(
                        store.as_ref(),
                        &key,
                        body.boxed(),
                        put,
                        opts.writer_options(None),
                    )
                    .await?;
                    Ok(Some(total.into_inner()))
                }
            };
        }
        Ok(Some(match (from, to) {
            (from, To::Stdout) => {
                let body = match from {
                    One::Stdin => read_stream(tokio::io::stdin(), "stdin".into()),
                    One::File(p, _) => open_file(&p).await?,
                    One::Object(store, key) => {
                        let got = store.get_opts(&key, GetOptions::default()).await?;
                        unchecked(&store, &got.meta);
                        got.body
                    }
                };
                super::cat::to_stdout(ctx, body, &on_bytes).await?;
                return Ok(None);
            }
            (One::Stdin, To::File(p)) => {
                write_stream_file(
                    &p,
                    read_stream(tokio::io::stdin(), "stdin".into()),
                    &on_bytes,
                )
                .await?
            }
            (One::File(from, _), To::File(p)) => {
                write_stream_file(&p, open_file(&from).await?, &on_bytes).await?
            }
            (One::Object(store, key), To::File(p)) => {
                transfer::download_file(store.as_ref(), &key, &p, &opts, &rep)
                    .await?
                    .size
            }
            (One::Stdin, To::Object(store, key, _)) => {
                // Stdin has no size and cannot be re-read: streamed through the writer.
                let total = AtomicU64::new(0);
                let body = read_stream(tokio::io::stdin(), "stdin".into()).inspect_ok(|c| {
                    total.fetch_add(c.len() as u64, Ordering::Relaxed);
                    on_bytes(c.len() as u64);
                });
                let put = opts.put.clone();
                put_stream(store.as_ref(), &key, body, put, opts.writer_options(None)).await?;
                total.into_inner()
            }
            (One::File(p, n), To::Object(store, key, _)) => {
                if opts.put.content_type.is_none() {
                    opts.put.content_type = guess_content_type(&p).map(str::to_string);
                }
                transfer::upload_file(store.as_ref(), &key, &p, &opts, &rep).await?;
                n
            }
            (One::Object(from, src_key), To::Object(store, key, _)) => {
                transfer::copy_object(from.as_ref(), &src_key, store.as_ref(), &key, &opts, &rep)
                    .await?
            }
        }))
    }
    .await;
    if written.is_ok() {
        progress.done();
    }
    progress.finish();
    let unverified = rep.unverified.load(Ordering::Relaxed);
    // Named by where it came from: the object without a recorded SHA-256.
    let keys = [a_shown(&src)];
    let Some(written) = written? else {
        // Streamed to stdout: the bytes are out already; say so on stderr, and exit 2.
        return partial_or_unverified(&ctx.printer, 0, 1, "objects", unverified as u64, &keys);
    };
    if ctx.printer.json() {
        ctx.printer.json_line(&serde_json::json!({
            "src": a_shown(&src), "dst": shown, "size": written,
            "outcome": if unverified { "unverified" } else { "transferred" },
            "unverified": unverified as u64,
        }))?;
    } else {
        ctx.printer.info(format!(
            "Copied {} → {shown} ({})",
            a_shown(&src),
            human_bytes(written)
        ));
    }
    partial_or_unverified(&ctx.printer, 0, 1, "objects", unverified as u64, &keys)
}

/// Drives a single copy's progress from the engine's progress events, and keeps whether the
/// object went unchecked (no recorded SHA-256).
struct BytesReporter<'a> {
    progress: &'a Progress,
    unverified: AtomicBool,
}

impl Reporter for BytesReporter<'_> {
    fn on_progress(&self, _key: &Key, bytes: u64) {
        self.progress.bytes(bytes);
    }

    fn on_item_done(&self, _item: &Item<'_>, outcome: &Outcome<'_>) {
        if let Outcome::Unverified { .. } = outcome {
            self.unverified.store(true, Ordering::Relaxed);
        }
    }
}

/// Feeds the engine's per-item events to the CLI's bulk reporter (bar, JSON lines, failures
/// listed at the end), with keys shown relative to the tree root.
struct TreeReporter<'a> {
    bulk: &'a BulkReporter<'a>,
    /// Length of the root prefix on the reported keys.
    strip: usize,
}

impl Reporter for TreeReporter<'_> {
    fn on_progress(&self, _key: &Key, bytes: u64) {
        self.bulk.bytes(bytes);
    }

    fn on_item_done(&self, item: &Item<'_>, outcome: &Outcome<'_>) {
        let k = item.key.as_str();
        let rel = k.get(self.strip..).unwrap_or(k);
        match outcome {
            Outcome::Transferred { bytes } => self.bulk.done(rel, *bytes),
            Outcome::Unverified { bytes } => self.bulk.unverified(rel, *bytes),
            Outcome::Failed(e) => self.bulk.failed(rel, e),
            _ => {}
        }
    }
}

fn a_shown(a: &Addr) -> String {
    match a {
        Addr::Stdio => "stdin".into(),
        Addr::Fs(p) => p.display().to_string(),
        Addr::Store(s) => s.shown.clone(),
    }
}

/// Where a tree comes from.
enum TreeSource {
    Dir(PathBuf),
    Prefix(DynStore, String),
}

/// Where a tree goes; item paths are appended to it.
enum TreeDest {
    Dir(PathBuf),
    Prefix(DynStore, String),
}

async fn copy_tree(ctx: &Ctx, a: &CpArgs, src: Addr, dst: Addr, put: PutOptions) -> Result {
    let (source, base) = match &src {
        Addr::Stdio => return Err(usage("cannot copy stdin with -r", "drop -r to copy stdin")),
        Addr::Fs(p) => {
            let m = std::fs::metadata(p).map_err(|e| fs_err(e, "list", p))?;
            debug_assert!(m.is_dir());
            (TreeSource::Dir(p.clone()), base_name(p))
        }
        Addr::Store(s) => {
            let store = open_existing(ctx, s).await?;
            let source = TreeSource::Prefix(store, s.dir_prefix());
            (source, s.base_name().map(str::to_string))
        }
    };
    let (dest, shown) = match &dst {
        Addr::Stdio => {
            return Err(usage(
                "cannot copy a tree to stdout",
                "drop -r or name a directory",
            ))
        }
        Addr::Fs(p) => {
            let into = p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/');
            let root = match (&base, into) {
                (Some(b), true) => p.join(b),
                _ => p.clone(),
            };
            if let TreeSource::Dir(from) = &source {
                refuse_copy_into_itself(from, &root)?;
            }
            let shown = root.display().to_string();
            (TreeDest::Dir(root), shown)
        }
        Addr::Store(s) => {
            let prefix = match (&base, s.into) {
                (Some(b), true) => format!("{}{b}/", dir_prefix(&s.path)),
                _ => dir_prefix(&s.path),
            };
            cairn::key::validate_prefix(&prefix)?;
            let store = open(ctx, s).await?;
            let shown = shown_key(s, &prefix);
            (TreeDest::Prefix(store, prefix), shown)
        }
    };
    // A directory this command creates is removed again if the copy fails as a whole.
    let created = match &dest {
        TreeDest::Dir(d) if !d.exists() => Some(d.clone()),
        _ => None,
    };
    let opts = transfer_options(ctx, a, &src, put);
    let bulk = BulkReporter::new(&ctx.printer, "copy");
    // Files the walk cannot upload (bad names, special files): reported here, counted below.
    let skipped = AtomicU64::new(0);
    let sum = match (&source, &dest) {
        (TreeSource::Dir(from), TreeDest::Prefix(store, prefix)) => {
            let rep = TreeReporter {
                bulk: &bulk,
                strip: prefix.len(),
            };
            let (bulk, skipped) = (&bulk, &skipped);
            let items = walk(from.clone())
                .filter_map(|listed| async move {
                    match listed {
                        Err(e) => Some(Err(e)),
                        Ok(Listed::Skip { rel, error }) => {
                            bulk.failed(&rel, &error);
                            skipped.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                        Ok(Listed::Item { rel, path, size }) => {
                            match Key::new(format!("{prefix}{rel}")) {
                                Ok(key) => Some(Ok(UploadItem {
                                    content_type: guess_content_type(&path).map(str::to_string),
                                    path,
                                    key,
                                    size: Some(size),
                                })),
                                Err(error) => {
                                    bulk.failed(&rel, &error);
                                    skipped.fetch_add(1, Ordering::Relaxed);
                                    None
                                }
                            }
                        }
                    }
                })
                .boxed();
            transfer::upload_many(store.as_ref(), items, &opts, &rep).await
        }
        (TreeSource::Dir(from), TreeDest::Dir(to)) => {
            // Plain directory to plain directory: the source read as a local store.
            let local = cairn::backend::local::LocalStore::new(from)?;
            let rep = TreeReporter {
                bulk: &bulk,
                strip: 0,
            };
            transfer::download_tree(&local, "", to, &opts, &rep).await?
        }
        (TreeSource::Prefix(store, prefix), TreeDest::Dir(to)) => {
            let rep = TreeReporter {
                bulk: &bulk,
                strip: prefix.len(),
            };
            transfer::download_tree(store.as_ref(), prefix, to, &opts, &rep).await?
        }
        (TreeSource::Prefix(from, sp), TreeDest::Prefix(store, dp)) => {
            let rep = TreeReporter {
                bulk: &bulk,
                strip: dp.len(),
            };
            transfer::transfer_tree(from.as_ref(), sp, store.as_ref(), dp, &opts, &rep).await?
        }
    };
    let skipped = skipped.into_inner();
    let abandon = |e: CliError| {
        bulk.abandon();
        if let Some(d) = &created {
            let _ = std::fs::remove_dir_all(d);
        }
        Err(e)
    };
    // A failure that dooms every item (missing bucket, bad credentials, nothing reachable)
    // is one error, not a list of failed items.
    for f in &sum.failures {
        let e = cairn::Error::new(f.kind, f.message.clone());
        if copy::is_fatal(&e, sum.transferred == 0) {
            return abandon(e.into());
        }
    }
    let total = sum.transferred + sum.failed + skipped;
    if total == 0 && matches!(source, TreeSource::Prefix(..)) {
        return abandon(CliError::Fail(
            Report::new(format!("no objects under {}", a_shown(&src)))
                .hint("check the prefix with `cairn ls`; to copy one object, drop -r"),
        ));
    }
    // Failures without an item (a listing that broke off, an object under a name cairn
    // cannot represent) were not reported per item.
    let src_prefix = match &source {
        TreeSource::Prefix(_, p) => p.as_str(),
        TreeSource::Dir(_) => "",
    };
    for f in &sum.failures {
        let e = cairn::Error::new(f.kind, f.message.clone());
        if f.kind == cairn::ErrorKind::Unrepresentable {
            let rel = f.key.strip_prefix(src_prefix).unwrap_or(&f.key);
            // The reason alone: the line names the item and the kind already.
            let kind = format!("{}: ", f.kind);
            let reason = f
                .message
                .split_once(&kind)
                .map_or(f.message.as_str(), |(_, r)| r);
            let reason = reason.split(" (hint: ").next().unwrap_or(reason);
            let e = cairn::Error::new(f.kind, reason);
            copy::Reporter::failed(&bulk, &rel.escape_debug().to_string(), &e);
        } else if f.key.is_empty() {
            copy::Reporter::failed(&bulk, &a_shown(&src), &e);
        }
    }
    let csum = copy::Summary {
        done: sum.transferred,
        bytes: sum.transferred_bytes,
        failed: sum.failed + skipped,
        unlisted: sum.unlisted,
        unverified: sum.unverified,
    };
    let summary = format!(
        "Copied {} of {} files ({}) to {shown}",
        csum.done,
        csum.total(),
        human_bytes(csum.bytes)
    );
    super::finish_bulk(ctx, &bulk, csum, "files", summary)
}

/// The name `cp -r` keeps when copying into a directory: none for `.`, `..` or `/`.
fn base_name(p: &Path) -> Option<String> {
    p.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn refuse_copy_into_itself(from: &Path, to: &Path) -> Result {
    let (Ok(from), Ok(to)) = (std::path::absolute(from), std::path::absolute(to)) else {
        return Ok(());
    };
    let from = std::fs::canonicalize(&from).unwrap_or(from);
    // `to` may not exist yet: canonicalize its closest existing ancestor.
    let mut probe = to.clone();
    let mut rest = Vec::new();
    while !probe.exists() {
        match (probe.file_name().map(|n| n.to_os_string()), probe.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n);
                probe = p.to_path_buf();
            }
            _ => break,
        }
    }
    let mut to = std::fs::canonicalize(&probe).unwrap_or(probe);
    to.extend(rest.into_iter().rev());
    if to.starts_with(&from) {
        return Err(usage(
            format!(
                "cannot copy {} into itself ({})",
                from.display(),
                to.display()
            ),
            "choose a destination outside the source directory",
        ));
    }
    Ok(())
}

const CHUNK: usize = 256 * 1024;

/// Opens a local file as a stream of chunks.
async fn open_file(path: &Path) -> Result<BoxStream<'static, cairn::Result<Bytes>>> {
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| fs_err(e, "read", path))?;
    Ok(read_stream(f, path.display().to_string()))
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

/// Writes a stream to a local file atomically (temp file beside it, fsync, rename): for
/// stdin and plain file copies, which have no object to download.
async fn write_stream_file(
    dest: &Path,
    mut body: BoxStream<'static, cairn::Result<Bytes>>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<u64> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| fs_err(e, "write", &dir))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(cairn::tmpfile::name_for(&name.unwrap_or_default()));
    /// Removes the temp file unless it was renamed into place, on error and on cancellation
    /// (Ctrl-C drops this future) alike.
    struct Guard<'a>(&'a Path, bool);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if !self.1 {
                let _ = std::fs::remove_file(self.0);
            }
        }
    }
    // Created inline (one open(2)), so no blocking task can create it after a cancellation.
    let std_file = std::fs::File::create_new(&tmp).map_err(|e| fs_err(e, "write", &tmp))?;
    let mut guard = Guard(&tmp, false);
    let r: Result<u64> = async {
        let mut file = tokio::fs::File::from_std(std_file);
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
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
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(|e| fs_err(e, "write", dest))?;
        Ok(n)
    }
    .await;
    guard.1 = r.is_ok();
    r
}

/// One entry of a directory walk: a file to upload (path relative to the root), or a file
/// that cannot be uploaded and why.
enum Listed {
    Item {
        rel: String,
        path: PathBuf,
        size: u64,
    },
    Skip {
        rel: String,
        error: Error,
    },
}

/// Walks a directory in name order off the async threads.
fn walk(root: PathBuf) -> BoxStream<'static, cairn::Result<Listed>> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::task::spawn_blocking(move || walk_dir(&root, "", &tx));
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
}

type Tx = tokio::sync::mpsc::Sender<cairn::Result<Listed>>;

/// Sends every file under `dir`; false once the receiver is gone.
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
    let (mut entries, mut broken) = (Vec::new(), None);
    for e in rd {
        match e {
            Ok(e) => entries.push(e),
            Err(e) => {
                broken = Some(e);
                break;
            }
        }
    }
    // A directory that breaks off mid-read is one failed item, not a shorter listing.
    if let Some(e) = broken {
        let rel = rel_dir.trim_end_matches('/');
        let skip = Listed::Skip {
            rel: if rel.is_empty() {
                ".".into()
            } else {
                rel.into()
            },
            error: fs_err(e, "list", dir),
        };
        if tx.blocking_send(Ok(skip)).is_err() {
            return false;
        }
    }
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
                    path,
                    size: m.len(),
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
