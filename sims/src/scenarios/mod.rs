//! The scenarios, one file each. Register a new one in
//! [`crate::registry`].

pub mod append_retention;
pub mod asset;
pub mod load_keys;
pub mod retry_storm;
pub mod socket_pileup;
pub mod spend_flush;
pub mod spend_oracle;
pub mod subtree_oom;
pub mod toy_rmw;
pub mod trace_common;
pub mod trace_saturation;
