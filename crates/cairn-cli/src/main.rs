//! `cairn`: the command-line tool over cairn's one storage API.

mod address;
mod args;
mod chart;
mod commands;
mod error;
mod printer;
mod progress;
mod run;
mod signal;

fn main() -> std::process::ExitCode {
    run::run(std::env::args_os())
}
