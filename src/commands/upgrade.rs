//! `box upgrade`: upgrade boxes' packages with their distribution's package manager, as
//! root in each box; the package manager's output is shown as it comes, then one summary
//! line per box. Fails (125) when any box failed, after trying every one.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::UpgradeArgs;
use crate::context::Context;
use crate::error::failure;
use crate::runtime::state;
use crate::store::Store;

pub fn exec(ctx: &Context, args: UpgradeArgs) -> Result<ExitCode> {
    let store = Store::at(&ctx.dirs.store);
    let mut names = store.named_containers(args.all, &args.names)?;
    if args.running {
        names.retain(|name| !state::status(ctx, &store, name).is_stopped());
    }
    if names.is_empty() {
        crate::ui::report::notice("no box to upgrade");
        return Ok(ExitCode::SUCCESS);
    }
    let mut summary = Vec::new();
    for name in &names {
        crate::ui::report::notice(format!("upgrading box {name}"));
        match crate::provision::upgrade(ctx, name) {
            Ok(()) => summary.push(format!("{name}: upgraded")),
            Err(err) => {
                let hint = err
                    .downcast_ref::<crate::error::Hint>()
                    .map(|h| format!(" (hint: {})", h.0))
                    .unwrap_or_default();
                summary.push(format!(
                    "{name}: failed: {}{hint}",
                    crate::error::message(&err)
                ));
            }
        }
    }
    let failed = summary.iter().filter(|l| l.contains(": failed: ")).count();
    for line in &summary {
        println!("{line}");
    }
    if failed > 0 {
        return Err(failure(
            format!("{failed} of {} boxes failed to upgrade", names.len()),
            "see the summary and the package manager's output above",
        ));
    }
    Ok(ExitCode::SUCCESS)
}
