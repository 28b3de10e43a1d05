//! The runtime: mount plan, holder, join.
pub mod holder;
