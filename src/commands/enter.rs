//! `box enter`: a login shell (or a command) in a box, starting the box if needed; on a
//! terminal (or with `--yes`), offers to create a box that does not exist, unless its
//! name is a typo of an existing box's (then it says which one was meant). The box may be
//! named by an image reference (`box enter docker.io/library/debian:12`), or not at all
//! (the default box: see [`session::target`]).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::EnterArgs;
use crate::context::Context;
use crate::ops::session::{self, Command, Join, Missing, Session};

pub fn exec(ctx: &Context, args: EnterArgs) -> Result<ExitCode> {
    let target = session::target(ctx, args.name.as_deref().or(args.name_option.as_deref()))?;
    let name = target.name;
    if args.dry_run {
        print!("{}", session::plan(ctx, &name)?);
        return Ok(ExitCode::SUCCESS);
    }
    let command = if args.command.is_empty() {
        Command::LoginShell
    } else {
        Command::Exec(&args.command)
    };
    let session = Session {
        name: &name,
        join: Join {
            no_workdir: args.no_workdir,
            user: args.user.as_deref(),
            ..Join::new(command)
        },
        missing: match &target.image {
            Some(image) => Missing::OfferToCreateFrom(image),
            None => Missing::OfferToCreate,
        },
    };
    let ask = super::Asker { ctx, yes: args.yes };
    match session::exec(ctx, &session, &ask)? {}
}
