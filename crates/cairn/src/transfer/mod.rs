//! The one transfer engine under `put_stream`, `cp`, `sync` and the Python writer.

mod writer;

pub use writer::{put_stream, Writer, WriterOptions};
