//! `box edit`: the flags become [`ops::edit::Changes`]; the work is in [`ops::edit`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::EditArgs;
use crate::context::Context;
use crate::ops::edit::{self, Changes};

pub fn exec(ctx: &Context, args: EditArgs) -> Result<ExitCode> {
    let nvidia = match (args.nvidia, args.no_nvidia, args.auto_nvidia) {
        (true, _, _) => Some(Some(true)),
        (_, true, _) => Some(Some(false)),
        (_, _, true) => Some(None),
        _ => None,
    };
    let changes = Changes {
        add_volumes: args.volume,
        remove_volumes: args.remove_volume,
        add_devices: args.device,
        remove_devices: args.remove_device,
        nvidia,
        hostname: match (args.hostname, args.no_hostname) {
            (Some(hostname), _) => Some(Some(hostname)),
            (None, true) => Some(None),
            (None, false) => None,
        },
        home: match (args.home, args.no_home) {
            (Some(home), _) => Some(Some(home)),
            (None, true) => Some(None),
            (None, false) => None,
        },
    };
    let edited = edit::edit(ctx, &args.name, &changes, args.dry_run)?;
    match edited.plan {
        Some(plan) => print!("{plan}"),
        None => {
            for change in &edited.changes {
                println!("Box {}: {change}.", args.name);
            }
            println!("The change applies at the next start of box {}.", args.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
