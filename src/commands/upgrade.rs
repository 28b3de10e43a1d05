//! `box upgrade`: upgrade boxes' packages with their distribution's package manager, as
//! root in each box; the package manager's output is shown as it comes, then one summary
//! line per box. Fails (125) when any box failed, after trying every one.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::UpgradeArgs;
use crate::context::Context;
use crate::error::failure;

pub fn exec(ctx: &Context, args: UpgradeArgs) -> Result<ExitCode> {
    let outcomes = crate::ops::upgrade::upgrade(ctx, args.all, &args.names, args.running)?;
    if outcomes.is_empty() {
        crate::ui::report::notice("no box to upgrade");
        return Ok(ExitCode::SUCCESS);
    }
    for (name, outcome) in &outcomes {
        println!("{}", summary_line(name, outcome));
    }
    let failed = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    if failed > 0 {
        return Err(failure(
            format!("{failed} of {} boxes failed to upgrade", outcomes.len()),
            "see the summary and the package manager's output above",
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary line of box `name`: `NAME: upgraded`, or `NAME: failed: WHY (hint: ...)`.
fn summary_line(name: &str, outcome: &Result<()>) -> String {
    match outcome {
        Ok(()) => format!("{name}: upgraded"),
        Err(err) => {
            let hint = err
                .downcast_ref::<crate::error::Hint>()
                .map(|h| format!(" (hint: {})", h.0))
                .unwrap_or_default();
            format!("{name}: failed: {}{hint}", crate::error::message(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_line_says_upgraded_or_why_not_with_the_hint() {
        assert_eq!(summary_line("dev", &Ok(())), "dev: upgraded");
        let err = failure("apt-get exited with status 100", "see the log");
        assert_eq!(
            summary_line("dev", &Err(err)),
            "dev: failed: apt-get exited with status 100 (hint: see the log)"
        );
    }
}
