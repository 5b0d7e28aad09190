//! The scenarios, one file each. Register a new one in
//! [`crate::registry`].

pub mod toy_rmw;
