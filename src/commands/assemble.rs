//! `box assemble create|rm|list`: the work is in [`crate::ops::assemble`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{AssembleAction, AssembleArgs, AssembleFileArgs};
use crate::context::Context;
use crate::ops::assemble::{self, AssembleOptions, Outcome};

fn options(args: &AssembleFileArgs) -> AssembleOptions {
    AssembleOptions {
        file: args.file.clone(),
        name: args.name.clone(),
        dry_run: args.dry_run,
        ..AssembleOptions::default()
    }
}

pub fn exec(ctx: &Context, args: AssembleArgs) -> Result<ExitCode> {
    match args.action {
        AssembleAction::Create(create) => {
            let options = AssembleOptions {
                replace: create.replace,
                locked: create.locked,
                ..options(&create.common)
            };
            for (name, outcome) in assemble::assemble_create(ctx, &options)? {
                match outcome {
                    Outcome::Created => println!("Created box {name}."),
                    Outcome::Replaced => println!("Replaced box {name}."),
                    Outcome::Kept => println!("Kept box {name}."),
                    Outcome::Planned(what) => {
                        // The first line says what; the others what the box gets.
                        let (first, details) = what.split_once('\n').unwrap_or((&what, ""));
                        println!("Would {first}.");
                        if !details.is_empty() {
                            println!("{details}");
                        }
                    }
                }
            }
        }
        AssembleAction::Rm(rm) => {
            let options = AssembleOptions {
                force: rm.force,
                ..options(&rm.common)
            };
            let ask = crate::ui::prompt::yes_or_terminal(super::assume_yes(ctx, rm.yes));
            let Some(names) = assemble::assemble_rm(ctx, &options, ask)? else {
                crate::ui::report::line("Nothing removed.");
                return Ok(ExitCode::SUCCESS);
            };
            for name in &names {
                if options.dry_run {
                    println!("Would remove box {name}.");
                } else {
                    println!("Removed box {name}.");
                }
            }
            if names.is_empty() {
                println!("None of the manifest's boxes exist; nothing removed.");
            }
        }
        AssembleAction::List(list) => {
            let boxes = assemble::list(&options(&list), ctx)?;
            println!("{:<20}  {:<8}  IMAGE", "NAME", "EXISTS");
            for (def, exists) in &boxes {
                let exists = if *exists { "yes" } else { "no" };
                let image = def
                    .image
                    .clone()
                    .or_else(|| def.clone.as_ref().map(|c| format!("clone of {c}")))
                    .unwrap_or_default();
                println!("{:<20}  {exists:<8}  {image}", def.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
