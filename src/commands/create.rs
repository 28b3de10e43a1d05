//! `box create`: the flags become [`ops::create::CreateOptions`]; the work (pull,
//! record, menu entry, provisioning) is in [`ops::create`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::CreateArgs;
use crate::context::Context;
use crate::ops::create::{self, CreateOptions};

pub fn exec(ctx: &Context, args: CreateArgs) -> Result<ExitCode> {
    let (image, name) = match &args.clone {
        // The image is the source box's.
        Some(source) => (
            String::new(),
            args.name
                .clone()
                .or(args.positional_name.clone())
                .ok_or_else(|| {
                    crate::error::failure(
                        format!("--clone {source} needs the new box's name"),
                        format!("e.g. `box create --clone {source} {source}-copy`"),
                    )
                })?,
        ),
        None => create::resolve_target(
            ctx,
            args.image.as_deref(),
            args.name.as_deref(),
            args.positional_name.as_deref(),
        )?,
    };
    let options = CreateOptions {
        entry: !args.no_entry && create::entry_by_default(ctx)?,
        dry_run: args.dry_run,
        clone: args.clone,
        ..super::create_options(name, image, args.pull, args.shape, args.provision)
    };
    // `--pull` asks no question either: the user asked for the download.
    let created = create::create(
        ctx,
        &options,
        crate::ui::prompt::yes_or_terminal(super::assume_yes(ctx, args.yes)),
    )?;
    match created.plan {
        Some(plan) => print!("{plan}"),
        None => {
            println!("Created box {} from {}.", created.name, created.image);
            println!("Enter it with: box enter {}", created.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
