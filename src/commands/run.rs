//! `box run`: one command in a box, no questions asked; stdio, signals and the exit
//! status are the command's own (it replaces this process).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RunArgs;
use crate::context::Context;
use crate::ops::session::{self, Command, Join, Missing, Session};

pub fn exec(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    let session = Session {
        name: &args.name,
        join: Join {
            no_workdir: args.no_workdir,
            user: args.user.as_deref(),
            ..Join::new(Command::Exec(&args.command))
        },
        missing: Missing::Fail,
    };
    match session::exec(ctx, &session, &crate::ui::prompt::Nobody)? {}
}
