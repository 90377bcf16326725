//! `cairn completions SHELL` and `cairn man DIR`: what a CLI on a person's PATH is expected to
//! ship, generated from the same clap definitions as `--help` so they never drift.

use super::Ctx;
use crate::args::{Args, CompletionsArgs, ManArgs};
use crate::error::{Report, Result};
use clap::CommandFactory;

pub async fn completions(ctx: &Ctx, a: &CompletionsArgs) -> Result {
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut Args::command(), "cairn", &mut out);
    ctx.printer.bytes(&out)
}

pub async fn man(ctx: &Ctx, a: &ManArgs) -> Result {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| Report::new(format!("creating {}: {e}", a.dir.display())))?;
    clap_mangen::generate_to(Args::command(), &a.dir)
        .map_err(|e| Report::new(format!("writing man pages to {}: {e}", a.dir.display())))?;
    ctx.printer.info(format!(
        "Wrote the man pages to {} (cairn.1 and one per command)",
        a.dir.display()
    ));
    Ok(())
}
