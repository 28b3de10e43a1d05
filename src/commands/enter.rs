//! `box enter`: a login shell (or a command) in a box, starting the box if needed; on a
//! terminal, offers to create a box that does not exist, unless its name is a typo of an
//! existing box's (then it says which one was meant).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::EnterArgs;
use crate::context::Context;
use crate::error::failure;
use crate::ops::create::CreateOptions;
use crate::runtime::join::Command;
use crate::runtime::{self, state};
use crate::store::Store;
use crate::store::containers::validate_name;

pub fn exec(ctx: &Context, args: EnterArgs) -> Result<ExitCode> {
    // Without a name: the configured default box (`default-name`, BOX_DEFAULT_NAME).
    let name = match &args.name {
        Some(name) => name.clone(),
        None => ctx.config()?.default_name.clone().ok_or_else(|| {
            failure(
                "which box? name it: `box enter NAME`",
                "`box list` shows your boxes; `default-name` in ~/.config/box/config.toml names one for `box enter` alone",
            )
        })?,
    };
    validate_name(&name)?;
    let name = name.as_str();
    if args.dry_run {
        let store = Store::at(&ctx.dirs.store);
        let record = store.container(name)?;
        print!("{}", runtime::plan_for(ctx, &store, &record)?);
        return Ok(ExitCode::SUCCESS);
    }
    let command = if args.command.is_empty() {
        Command::LoginShell
    } else {
        Command::Exec(&args.command)
    };
    runtime::identity::refuse_inside(args.user.as_deref(), name)?;
    runtime::join::here_when_inside(name, command, args.no_workdir, || {
        format!("enter box `{name}`")
    })?;
    let user = args.user.as_deref();
    let state = match state::running(ctx, name) {
        // See `box run`: an interrupted provisioning run is resumed first.
        Some(state) if !state.provisioning || user.is_some() => state,
        _ => {
            // In box NAME without CONTAINER_ID (sudo, env -i): see `box run`.
            runtime::join::here_when_box_file_says(name, command, args.no_workdir, || {
                format!("enter box `{name}`")
            })?;
            if !Store::at(&ctx.dirs.store).has_container(name) {
                offer_create(ctx, name, super::assume_yes(ctx, args.yes))?;
            }
            crate::provision::start_box(ctx, name, user.is_none())?
        }
    };
    match runtime::join::exec_as(name, &state, command, args.no_workdir, user)? {}
}

/// Create box `name` from the catalogue when the user agrees (or said --yes); otherwise
/// the usual "no box named" error, with "did you mean" for a name close to an existing
/// box's: a typo is not offered as a new box, unless the name is a distribution's.
fn offer_create(ctx: &Context, name: &str, yes: bool) -> Result<()> {
    let store = Store::at(&ctx.dirs.store);
    let missing = || Err(store.missing_container(name));
    if !yes && !crate::ui::prompt::Terminal::present() {
        return missing();
    }
    // A distribution's name, or else the configured default image.
    let catalogue = crate::ops::create::catalogue(ctx)?;
    let distro = catalogue.resolve(name);
    if distro.is_none() && !store.close_container_names(name).is_empty() {
        return missing();
    }
    let found = distro.or_else(|| {
        let image = ctx.config().ok()?.default_image.clone()?;
        Some(
            catalogue
                .resolve(&image)
                .unwrap_or(crate::settings::distro::Resolved {
                    distro: String::new(),
                    image,
                }),
        )
    });
    let Some(found) = found else {
        return missing();
    };
    let ask = crate::ui::prompt::yes_or_terminal(yes);
    let question = format!("Box {name} does not exist. Create it from {}?", found.image);
    if ask.ask(&question)? != Some(true) {
        return missing();
    }
    let options = CreateOptions {
        name: name.to_owned(),
        image: found.image,
        entry: true,
        ..CreateOptions::default()
    };
    // The user agreed to the box, and so to the pull it may need.
    let created = crate::ops::create::create(ctx, &options, &crate::ui::prompt::Assume(true))?;
    // stderr: stdout belongs to the command about to run.
    crate::ui::report::line(format!(
        "Created box {} from {}.",
        created.name, created.image
    ));
    Ok(())
}
