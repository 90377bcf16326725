//! The conformance suite against the embedded stores: memory and local (a temp dir).

mod memory {
    use cairn::backend::memory::MemoryStore;
    cairn::conformance_tests!(|_name: &'static str| async { MemoryStore::new() });
}

mod local {
    use cairn::backend::local::LocalStore;
    cairn::conformance_tests!(|_name: &'static str| async {
        // Leaked on purpose: the directory must outlive the store for the whole test.
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        LocalStore::new(dir.path()).unwrap()
    });
}

mod memory_prefixed {
    use cairn::backend::memory::MemoryStore;
    use cairn::layer::PrefixStore;
    cairn::conformance_tests!(|_name: &'static str| async {
        PrefixStore::new(MemoryStore::new(), "run/123").unwrap()
    });
}
