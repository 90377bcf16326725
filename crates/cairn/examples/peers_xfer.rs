//! The transfer engine as a command: the library API (no CLI) that bench/peers measures beside `cairn`.
//!
//! ```text
//! peers_xfer up   LOCAL_DIR_OR_FILE s3://bucket/prefix_or_key
//! peers_xfer down s3://bucket/prefix_or_key LOCAL_DIR_OR_FILE
//! peers_xfer sync LOCAL_DIR s3://bucket/prefix      (size + time)
//! ```
//! The store comes from `cairn::open` (endpoint and credentials from the environment). With
//! `up`/`down`, a directory means a tree; a file means one object. Exits 2 if items failed.
//! `PEERS_XFER_DURABLE=0` turns off the final fsync/syncfs of downloads;
//! `PEERS_XFER_PART_MIB` and `PEERS_XFER_PARTS` set the part size and parts in flight.

use cairn::ops::{sync, NoReporter, SyncOptions};
use cairn::transfer::{download_file, download_tree, upload_file, upload_tree, TransferOptions};
use cairn::{Key, StoreExt, StoreUrl};
use futures::StreamExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

fn split(url: &str) -> cairn::Result<(String, String)> {
    let parsed = StoreUrl::parse(url)?;
    match parsed.location {
        cairn::Location::S3 { bucket, prefix } => Ok((format!("s3://{bucket}"), prefix)),
        _ => Err(cairn::Error::invalid(format!(
            "{url}: expected an s3:// URL"
        ))),
    }
}

async fn run(args: &[String]) -> cairn::Result<bool> {
    // PEERS_XFER_DURABLE=0: no fsync/syncfs at the end of downloads (as the peers do).
    let durable = std::env::var("PEERS_XFER_DURABLE")
        .map(|v| v != "0")
        .unwrap_or(true);
    // PEERS_XFER_PART_MIB / PEERS_XFER_PARTS: part size and parts in flight, for tuning.
    let knob = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let mut opts = TransferOptions {
        durable,
        ..TransferOptions::default()
    };
    if let Some(mib) = knob("PEERS_XFER_PART_MIB") {
        opts.part_size = mib << 20;
    }
    if let Some(n) = knob("PEERS_XFER_PARTS") {
        opts.concurrency = n;
    }
    let r = NoReporter;
    let (mode, a, b) = match args {
        [m, a, b] => (m.as_str(), a.as_str(), b.as_str()),
        _ => {
            return Err(cairn::Error::invalid(
                "usage: peers_xfer up|down|sync SRC DST",
            ))
        }
    };
    match mode {
        "up" => {
            let (root, prefix) = split(b)?;
            let store = cairn::open(&root).await?;
            if Path::new(a).is_dir() {
                Ok(upload_tree(Path::new(a), &*store, &prefix, &opts, &r)
                    .await?
                    .is_success())
            } else {
                upload_file(&*store, &Key::new(prefix)?, Path::new(a), &opts, &r).await?;
                Ok(true)
            }
        }
        "down" => {
            let (root, prefix) = split(a)?;
            let store = cairn::open(&root).await?;
            // A tree if anything lists below `prefix/` (or at the root); else one object.
            let below = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            let is_tree = prefix.is_empty() || store.list_objects(&below).next().await.is_some();
            if is_tree {
                Ok(download_tree(&*store, &prefix, Path::new(b), &opts, &r)
                    .await?
                    .is_success())
            } else {
                download_file(&*store, &Key::new(prefix)?, Path::new(b), &opts, &r).await?;
                Ok(true)
            }
        }
        "sync" => {
            let src = Arc::new(cairn::backend::local::LocalStore::new(a)?);
            let dst = cairn::open(b).await?;
            Ok(sync(&*src, &*dst, &SyncOptions::default(), &r)
                .await?
                .is_success())
        }
        _ => Err(cairn::Error::invalid(format!("unknown mode {mode:?}"))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(run(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
