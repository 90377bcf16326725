//! Backends: the stores that hold bytes. Layers wrap them (see [`crate::layer`]).

pub mod dir;
pub mod local;
pub mod memory;
pub mod s3;
