//! `cairn cat URL`: an object's bytes on stdout, streamed.

use super::{checksum_off, open_existing, partial_or_unverified, store_addr, Ctx};
use crate::args::CatArgs;
use crate::error::Result;
use bytes::Bytes;
use cairn::transfer::TransferOptions;
use cairn::Store;
use futures::stream::{BoxStream, StreamExt};

pub async fn run(ctx: &Ctx, a: &CatArgs) -> Result {
    let addr = store_addr(&a.url, false)?;
    let key = addr.key()?;
    let store = open_existing(ctx, &addr).await?;
    let opts = match &a.version_id {
        None => cairn::GetOptions::default(),
        Some(v) => {
            cairn::backend::s3::admin::check_version_id(v)?;
            cairn::GetOptions {
                version: Some(v.clone()),
                ..Default::default()
            }
        }
    };
    let got = store.get_opts(&key, opts).await?;
    // The checksum layer checks a body against its recorded SHA-256 as it streams; an object
    // with none (written by another tool) streams unchecked: said on stderr, exit 2.
    let check = TransferOptions {
        verify: !checksum_off(ctx, &addr),
        ..Default::default()
    };
    let unverified = check.unverified(store.as_ref(), &got.meta);
    to_stdout(ctx, got.body, &|_| {}).await?;
    partial_or_unverified(
        &ctx.printer,
        0,
        1,
        "objects",
        unverified as u64,
        std::slice::from_ref(&addr.shown),
    )
}

/// Streams a body to stdout. A reader that goes away (`| head`) ends it quietly.
pub async fn to_stdout(
    ctx: &Ctx,
    mut body: BoxStream<'static, cairn::Result<Bytes>>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<u64> {
    let mut n = 0;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // Show what arrived before the failure, then the failure.
                let _ = ctx.printer.flush();
                return Err(e.into());
            }
        };
        ctx.printer.bytes(&chunk)?;
        n += chunk.len() as u64;
        on_bytes(chunk.len() as u64);
    }
    ctx.printer.flush()?;
    Ok(n)
}
