//! The scenarios, one file each. Register a new one in
//! [`crate::registry`].

pub mod append_retention;
pub mod spend_flush;
pub mod spend_oracle;
pub mod toy_rmw;
