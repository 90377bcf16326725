//! Operations above stores: [`sync()`], [`bench`]. Each takes `&dyn Store` plus a
//! [`Reporter`], and never prints.

pub mod bench;
pub mod reporter;
pub mod sync;

pub use reporter::{
    Action, Event, Failure, Item, NoReporter, Outcome, Recorder, Reporter, Summary, Totals,
};
pub use sync::{sync, Compare, SyncOptions, SyncSummary};

#[cfg(test)]
mod send_check {
    //! The CLI and Python spawn these futures on a multi-threaded runtime: they must be Send.
    use super::*;
    use crate::transfer::*;
    use crate::{Key, Store};
    use std::path::Path;

    fn is_send<T: Send>(_: &T) {}

    #[allow(dead_code)]
    fn futures_are_send(s: &dyn Store, k: &Key, p: &Path, o: &TransferOptions, so: &SyncOptions) {
        let r = NoReporter;
        is_send(&upload_file(s, k, p, o, &r));
        is_send(&download_file(s, k, p, o, &r));
        is_send(&copy_object(s, k, s, k, o, &r));
        is_send(&transfer_tree(s, "", s, "", o, &r));
        is_send(&upload_tree(p, s, "", o, &r));
        is_send(&download_tree(s, "", p, o, &r));
        is_send(&sync(s, s, so, &r));
        is_send(&bench::run_bench(s, &bench::BenchOptions::default(), &r));
    }
}
