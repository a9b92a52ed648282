//! Helpers shared by the integration tests: the local cluster, the Labelbox
//! stand-in and trainhook itself, each run as a real process.
#![allow(dead_code)]

pub mod cluster;
pub mod permissions;
pub mod standin;
pub mod trainhook;
pub mod world;
