//! The runtime: mount plan, holder, join.
pub mod holder;

/// The root directory of running box `name` as seen from this process, starting the box
/// if needed: `/proc/<holder pid>/root`, or `/` when called inside that very box.
/// (Declared for `box export`; wired to the holder when the runtime lands.)
pub fn box_root(_ctx: &crate::context::Context, name: &str) -> anyhow::Result<std::path::PathBuf> {
    anyhow::bail!("reading the files of box `{name}` is not available yet")
}
