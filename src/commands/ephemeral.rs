//! `box ephemeral`: the work is in [`crate::ops::ephemeral`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::EphemeralArgs;
use crate::context::Context;
use crate::ops::create::{CreateOptions, resolve_target};
use crate::ops::ephemeral::{ephemeral, fresh_name};

pub fn exec(ctx: &Context, args: EphemeralArgs) -> Result<ExitCode> {
    let name = match args.name {
        Some(name) => name,
        None => fresh_name()?,
    };
    let (image, name) = resolve_target(ctx, args.image.as_deref(), Some(&name), None)?;
    let nvidia = args.shape.nvidia_choice();
    let options = CreateOptions {
        nvidia,
        name,
        image,
        pull: args.pull,
        hostname: args.shape.hostname,
        home: args.shape.home,
        devices: args.shape.device,
        volumes: args.shape.volume,
        platform: args.shape.platform,
        entry: false,
        dry_run: false,
        clone: None,
        additional_packages: args.provision.additional_packages,
        pre_init_hooks: args.provision.pre_init_hooks,
        init_hooks: args.provision.init_hooks,
        no_provision: args.provision.no_provision,
    };
    let ask = crate::prompt::yes_or_terminal(super::assume_yes(ctx, args.yes));
    let status = ephemeral(ctx, &options, &args.command, args.no_workdir, ask)?;
    Ok(ExitCode::from(status))
}
