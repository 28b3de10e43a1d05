//! `box rmi REF...`: remove image records, then the layers and blobs nobody uses.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::RmiArgs;
use crate::context::Context;
use crate::error::{failure, notice};
use crate::registry::Reference;
use crate::store::Store;

pub fn exec(ctx: &Context, args: RmiArgs) -> Result<ExitCode> {
    let store = Store::at(&ctx.dirs.store);
    // Resolve every reference first: a typo in the third must not half-do the first two.
    let mut references = Vec::new();
    for text in &args.references {
        let canonical = Reference::parse(text)?.canonical();
        if store.image(&canonical)?.is_none() {
            bail!(failure(
                format!("no image {canonical} in the store"),
                "`box images` lists the images",
            ));
        }
        let users: Vec<String> = store
            .containers()?
            .into_iter()
            .filter(|c| c.image == canonical)
            .map(|c| c.name)
            .collect();
        if !users.is_empty() && !args.force {
            bail!(failure(
                format!(
                    "image {canonical} is used by the box(es) {}",
                    users.join(", ")
                ),
                "remove those boxes first (`box rm`), or pass --force to remove the image record and keep the layers they use",
            ));
        }
        references.push(canonical);
    }
    let lock = store.lock(true)?;
    for canonical in &references {
        store.remove_image(canonical)?;
        notice(format!("removed {canonical}"));
    }
    store.collect_garbage(ctx, lock);
    Ok(ExitCode::SUCCESS)
}
