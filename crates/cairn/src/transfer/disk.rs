//! Positional file I/O for downloads: gathered writes, early writeback, hashing what is written.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// Most buffers one `pwritev` takes (POSIX guarantees at least 16; Linux allows 1024).
const MAX_IOV: usize = 64;

/// Writes `bufs` back to back at `at`, with one `pwritev` per up to [`MAX_IOV`] buffers, so
/// the network's chunks reach the page cache without first being gathered into one buffer.
pub(crate) fn write_all_at(file: &File, bufs: &[Bytes], at: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let (mut bufs, mut skip, mut at) = (bufs, 0usize, at);
        while !bufs.is_empty() {
            let iov: Vec<libc::iovec> = bufs
                .iter()
                .take(MAX_IOV)
                .enumerate()
                .map(|(i, b)| {
                    let s = if i == 0 { &b[skip..] } else { &b[..] };
                    libc::iovec {
                        iov_base: s.as_ptr() as *mut libc::c_void,
                        iov_len: s.len(),
                    }
                })
                .collect();
            // SAFETY: every iovec points into a `Bytes` borrowed for the whole call, and the
            // descriptor stays open while `file` is borrowed.
            let n = unsafe {
                libc::pwritev(
                    file.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    at as libc::off_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            at += n as u64;
            let mut n = n as usize;
            while n > 0 {
                let left = bufs[0].len() - skip;
                if n < left {
                    skip += n;
                    break;
                }
                n -= left;
                bufs = &bufs[1..];
                skip = 0;
            }
            // Empty buffers would otherwise stop the loop from making progress.
            while bufs.first().is_some_and(|b| b.len() == skip) {
                bufs = &bufs[1..];
                skip = 0;
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut at = at;
        for b in bufs {
            file.write_all_at(b, at)?;
            at += b.len() as u64;
        }
        Ok(())
    }
}

/// Starts writing `range` of the file to disk without waiting, so the fsync at the end of a
/// durable download only waits for the tail instead of the whole file.
pub(crate) fn start_writeback(file: &File, range: Range<u64>) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: plain syscall on an open descriptor; a failure only loses the head start
        // (the final fsync still flushes everything), so its result is ignored.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                range.start as libc::off64_t,
                (range.end - range.start) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, range);
}

/// Bytes read back per block when hashing: small enough to stay in the CPU's L2 cache
/// between the copy out of the page cache and the hash.
const HASH_BUF: u64 = 256 * 1024;

/// Feeds `range` of the file into `hasher`, reading it back in [`HASH_BUF`] blocks.
pub(crate) fn hash_range(file: &File, range: Range<u64>, hasher: &mut Sha256) -> io::Result<()> {
    let mut buf = vec![0u8; (range.end - range.start).min(HASH_BUF) as usize];
    let mut at = range.start;
    while at < range.end {
        let n = ((range.end - at) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_write_lands_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("f"))
            .unwrap();
        // More buffers than one pwritev takes, some empty, at an offset.
        let bufs: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![i as u8; (i % 7) as usize * 1000]))
            .collect();
        let want: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        write_all_at(&f, &bufs, 5).unwrap();
        let mut got = vec![0u8; want.len()];
        f.read_exact_at(&mut got, 5).unwrap();
        assert_eq!(got, want);
        let mut h = Sha256::new();
        hash_range(&f, 5..5 + want.len() as u64, &mut h).unwrap();
        assert_eq!(h.finalize(), Sha256::digest(&want));
        start_writeback(&f, 0..want.len() as u64);
    }
}
