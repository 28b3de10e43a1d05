//! Distribution catalogue.
