//! `box enter`: a login shell (or a command) in a box, starting the box if needed; on a
//! terminal (or with `--yes`), offers to create a box that does not exist, unless its
//! name is a typo of an existing box's (then it says which one was meant).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::EnterArgs;
use crate::context::Context;
use crate::ops::session::{self, Command, Join, Missing, Session};

pub fn exec(ctx: &Context, args: EnterArgs) -> Result<ExitCode> {
    let name = session::box_name(ctx, args.name.as_deref())?;
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
        missing: Missing::OfferToCreate,
    };
    let ask = crate::ui::prompt::yes_or_terminal(super::assume_yes(ctx, args.yes));
    match session::exec(ctx, &session, ask)? {}
}
