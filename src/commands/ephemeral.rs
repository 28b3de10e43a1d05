//! `box ephemeral`: the work is in [`crate::ops::ephemeral`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::EphemeralArgs;
use crate::context::Context;
use crate::ops::create::resolve_target;
use crate::ops::ephemeral::{ephemeral, fresh_name};

pub fn exec(ctx: &Context, args: EphemeralArgs) -> Result<ExitCode> {
    let name = match args.name {
        Some(name) => name,
        None => fresh_name()?,
    };
    let (image, name) = resolve_target(ctx, args.image.as_deref(), Some(&name), None)?;
    let options = super::create_options(name, image, args.pull, args.shape, args.provision);
    let ask = crate::ui::prompt::yes_or_terminal(super::assume_yes(ctx, args.yes));
    let status = ephemeral(ctx, &options, &args.command, args.no_workdir, ask)?;
    Ok(ExitCode::from(status))
}
