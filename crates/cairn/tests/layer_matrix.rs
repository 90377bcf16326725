//! The layer matrix (`cairn::testkit::matrix`): every operation through every layer stack
//! (none, checksum, zstd, gzip, AES, zstd+AES, each with and without a prefix) on memory,
//! local, moto and Garage, with random and compressible bodies from 0 B to 64 MiB.
//!
//! One test per (store, stack, operation), e.g. `moto::zstd_aes_prefix::sync_to_dir`.
//! The S3 servers come from `scripts/servers/start.sh ENVFILE` (`source ENVFILE`).

mod memory {
    cairn::layer_matrix_tests!(Memory);
}

mod local {
    cairn::layer_matrix_tests!(Local);
}

mod moto {
    cairn::layer_matrix_tests!(Moto);
}

mod garage {
    cairn::layer_matrix_tests!(Garage);
}
