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
    one_malloc_arena();
    run::run(std::env::args_os())
}

/// Holds glibc to one malloc arena unless `MALLOC_ARENA_MAX` says otherwise. By default
/// glibc gives threads that allocate at once arenas of their own, up to 8 per core, and keeps
/// what each freed: a sync of a million objects, whose local listings and copies run on many
/// blocking threads, then grew 18 MiB more than one of 100,000; with one arena, 7 MiB, at the
/// same speed (docs/benchmarks.md, "A million objects"). Small allocations go through each
/// thread's cache without the arena lock.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: first thing in main, before any thread exists; mallopt only sets a limit.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
