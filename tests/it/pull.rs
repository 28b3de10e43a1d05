//! `box pull`, `box images`, `box rmi` end to end.
