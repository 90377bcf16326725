//! `cairn cat URL`: an object's bytes on stdout, streamed.

use super::{open_existing, store_addr, Ctx};
use crate::args::CatArgs;
use crate::error::Result;
use bytes::Bytes;
use cairn::{Store, StoreExt};
use futures::stream::{BoxStream, StreamExt};

pub async fn run(ctx: &Ctx, a: &CatArgs) -> Result {
    let addr = store_addr(&a.url, false)?;
    let key = addr.key()?;
    let store = open_existing(ctx, &addr).await?;
    let body = match &a.version_id {
        None => store.get_stream(&key).await?,
        Some(v) => {
            cairn::backend::s3::admin::check_version_id(v)?;
            let opts = cairn::GetOptions {
                version: Some(v.clone()),
                ..Default::default()
            };
            store.get_opts(&key, opts).await?.body
        }
    };
    to_stdout(ctx, body, &|_| {}).await?;
    Ok(())
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
