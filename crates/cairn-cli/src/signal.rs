//! Ctrl-C and SIGTERM. The running command is cancelled: its future is dropped, so its guards
//! abort multipart uploads and remove temp files. Cleanup gets a few seconds, then cairn says
//! "interrupted" and exits 130 (SIGINT) or 143 (SIGTERM), as shells expect. A second signal
//! during cleanup exits at once.

use std::future::Future;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How long the aborts of uploads may hold up the exit.
pub const CLEANUP: Duration = Duration::from_secs(5);
/// How long blocking calls under way (file writes, renames) may hold it up after that; a read
/// of a terminal's stdin never ends by itself, so this is short.
pub const BLOCKING: Duration = Duration::from_secs(2);

/// The signals that interrupt a command.
pub struct Signals {
    int: Option<Signal>,
    term: Option<Signal>,
}

/// Which signal arrived.
#[derive(Debug, Clone, Copy)]
pub enum Interrupt {
    Int,
    Term,
}

impl Interrupt {
    /// 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
        }
    }
}

impl Signals {
    /// Takes over SIGINT and SIGTERM (within a runtime). One that cannot be installed is
    /// left at its default, which ends the process.
    pub fn install() -> Signals {
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next SIGINT or SIGTERM.
    pub async fn next(&mut self) -> Interrupt {
        async fn recv(s: &mut Option<Signal>) {
            if let Some(s) = s {
                if s.recv().await.is_some() {
                    return;
                }
            }
            std::future::pending().await
        }
        tokio::select! {
            () = recv(&mut self.int) => Interrupt::Int,
            () = recv(&mut self.term) => Interrupt::Term,
        }
    }
}

/// Runs `work` as a task until it ends or a signal arrives. On a signal the task is aborted
/// (dropped on its worker, so its guards run) and `cleanup` (waiting for what those guards
/// started) gets up to [`CLEANUP`]; a second signal cuts that short.
pub async fn run_cancellable<T, W, C>(
    work: W,
    cleanup: C,
) -> Result<Result<T, tokio::task::JoinError>, Interrupt>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    C: Future<Output = ()>,
{
    let mut signals = Signals::install();
    let mut task = tokio::spawn(work);
    let sig = tokio::select! {
        r = &mut task => return Ok(r),
        sig = signals.next() => sig,
    };
    task.abort();
    let settle = async {
        // Resolves once the command's future is dropped (or, if it was finishing, has ended).
        let _ = task.await;
        cleanup.await;
    };
    tokio::select! {
        () = settle => {}
        _ = tokio::time::sleep(CLEANUP) => {}
        _ = signals.next() => {}
    }
    Err(sig)
}
