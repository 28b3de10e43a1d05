//! The holder process.
use std::process::ExitCode;
pub fn main(_args: &[String]) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented")
}
