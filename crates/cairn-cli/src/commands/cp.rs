//! `cairn cp SRC DST`: one file or object, stdin/stdout, or a tree with `-r`.
//!
//! Both addresses are parsed and both stores opened before a byte moves, so bad input fails
//! with nothing written.

use super::copy::{self, Reader, TreeDest, TreeOptions, TreeSource};
use super::{open, open_existing, shown_key, BulkReporter, Ctx};
use crate::address::{self, dir_prefix, Addr};
use crate::args::CpArgs;
use crate::error::{usage, CliError, Report, Result};
use crate::printer::human_bytes;
use cairn::transfer::WriterOptions;
use cairn::{DynStore, Key, PutOptions};
use std::path::{Path, PathBuf};

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
        copy_one(ctx, src, dst, put).await
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
    File(PathBuf),
    Object(DynStore, Key),
}

async fn copy_one(ctx: &Ctx, src: Addr, dst: Addr, put: PutOptions) -> Result {
    // 1. Validate and open everything.
    let (from, name) = match &src {
        Addr::Stdio => (One::Stdin, None),
        Addr::Fs(p) => {
            let m = std::fs::metadata(p).map_err(|e| copy::fs_err(e, "read", p))?;
            if m.is_dir() {
                return Err(usage(
                    format!("{} is a directory", p.display()),
                    "use -r to copy a directory",
                ));
            }
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (One::File(p.clone()), name)
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
    enum To {
        Stdout,
        File(PathBuf),
        Object(DynStore, Key, String),
    }
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

    // 2. Open the source: a missing object fails here, before anything is written.
    let reader: Reader = match &from {
        One::Stdin => copy::open_stdin(),
        One::File(p) => copy::open_file(p).await?,
        One::Object(store, key) => copy::open_object(store.as_ref(), key).await?,
    };

    // 3. Move the bytes.
    let bar = ctx.printer.bytes_bar(reader.size);
    let on_bytes = |n| bar.inc(n);
    let (written, shown) = match to {
        To::Stdout => {
            let n = super::cat::to_stdout(ctx, reader.body, &on_bytes).await;
            bar.finish_and_clear();
            n?;
            return Ok(());
        }
        To::File(p) => {
            let n = copy::write_file(&p, reader, &on_bytes).await;
            (n, p.display().to_string())
        }
        To::Object(store, key, shown) => {
            let put = copy::merge_put(&put, &reader);
            let opts = WriterOptions::default();
            (
                copy::write_object(store.as_ref(), &key, reader, put, opts, &on_bytes).await,
                shown,
            )
        }
    };
    bar.finish_and_clear();
    let written = written?;
    if ctx.printer.json() {
        ctx.printer.json_line(&serde_json::json!({
            "src": a_shown(&src), "dst": shown, "size": written,
        }))?;
    } else {
        ctx.printer.info(format!(
            "Copied {} → {shown} ({})",
            a_shown(&src),
            human_bytes(written)
        ));
    }
    Ok(())
}

fn a_shown(a: &Addr) -> String {
    match a {
        Addr::Stdio => "stdin".into(),
        Addr::Fs(p) => p.display().to_string(),
        Addr::Store(s) => s.shown.clone(),
    }
}

async fn copy_tree(ctx: &Ctx, a: &CpArgs, src: Addr, dst: Addr, put: PutOptions) -> Result {
    let src_store;
    let (source, base) = match &src {
        Addr::Stdio => return Err(usage("cannot copy stdin with -r", "drop -r to copy stdin")),
        Addr::Fs(p) => {
            let m = std::fs::metadata(p).map_err(|e| copy::fs_err(e, "list", p))?;
            debug_assert!(m.is_dir());
            (TreeSource::Dir(p.clone()), base_name(p))
        }
        Addr::Store(s) => {
            src_store = open_existing(ctx, s).await?;
            let source = TreeSource::Prefix {
                store: src_store.as_ref(),
                prefix: s.dir_prefix(),
            };
            (source, s.base_name().map(str::to_string))
        }
    };
    let dst_store;
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
            dst_store = open(ctx, s).await?;
            let shown = shown_key(s, &prefix);
            (
                TreeDest::Prefix {
                    store: dst_store.as_ref(),
                    prefix,
                },
                shown,
            )
        }
    };
    let opts = TreeOptions {
        concurrency: a.concurrency as usize,
        put,
        // Many files at once: two parts in flight each keeps memory near 16 x 24 MiB at worst.
        writer: WriterOptions {
            concurrency: 2,
            ..Default::default()
        },
    };
    let rep = BulkReporter::new(&ctx.printer, "copy");
    let sum = copy::copy_tree(&source, &dest, &opts, &rep).await;
    let sum = match sum {
        Ok(s) => s,
        Err(e) => {
            rep.finish();
            return Err(e.into());
        }
    };
    if sum.total() == 0 && matches!(source, TreeSource::Prefix { .. }) {
        rep.finish();
        return Err(CliError::Fail(
            Report::new(format!("no objects under {}", a_shown(&src)))
                .hint("check the prefix with `cairn ls`; to copy one object, drop -r"),
        ));
    }
    let summary = format!(
        "Copied {} of {} files ({}) to {shown}",
        sum.done,
        sum.total(),
        human_bytes(sum.bytes)
    );
    super::finish_bulk(ctx, &rep, sum, "files", summary)
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
