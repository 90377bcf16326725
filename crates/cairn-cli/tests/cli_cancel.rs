//! Ctrl-C and SIGTERM in the middle of a copy (issue 15 item 6): the real `cairn` binary copies
//! 200 MiB in 5 MiB parts, 4 at once; once the server shows an open multipart upload (or a temp
//! file appears) it gets the signal. It must exit 130 / 143 with "interrupted", and leave no
//! open upload on the server and no temp file on disk.
//!
//! Needs moto: `source /tmp/moto.env` (scripts/servers/start.sh). A missing server is a
//! failure, never a skip.

mod common;

use common::s3::S3;
use common::{bytes, Sandbox};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

const SIZE: usize = 200 * 1024 * 1024;
const PARTS: [&str; 4] = ["--part-size", "5M", "--parts", "4"];

fn spawn(s: &Sandbox, args: &[&str]) -> Child {
    s.cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls until `ready` holds; panics (with cairn's output) if cairn exits first, i.e. the
/// copy was never seen mid-flight.
fn wait_until(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    loop {
        if ready() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("cairn exited ({status}) before {what}:\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends `signal` and waits for cairn to exit.
fn interrupt(child: Child, signal: libc::c_int) -> Output {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    child.wait_with_output().unwrap()
}

/// cairn exited with `code` and said "interrupted" on stderr. Checked after the debris, so a
/// leftover is what a failing run reports first.
fn assert_interrupted(out: &Output, code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}; stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("interrupted"),
        "stderr does not say interrupted:\n{stderr}"
    );
}

/// Files whose names end in `suffix` anywhere under `dir`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_ending(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out
}

/// Every file under `dir`, `.cairn/` included.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, "")
}

/// CSV rows with random numbers: compresses about 2x, as real exports do.
fn csv(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(b"id,reading,station\n");
    let (mut x, mut id) = (0x9e37_79b9_7f4a_7c15u64, 0u64);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        id += 1;
        out.extend_from_slice(format!("{id},{},st-{}\n", x % 1_000_000, x >> 56).as_bytes());
    }
    out.truncate(size);
    out
}

fn upload_to_moto_interrupted(test: &str, signal: libc::c_int, code: i32) {
    upload_interrupted(test, &bytes(SIZE, 41), &[], signal, code);
}

fn upload_interrupted(test: &str, data: &[u8], opts: &[&str], signal: libc::c_int, code: i32) {
    let m = S3::from_env("MOTO");
    let s = m.sandbox();
    s.write("big.bin", data);
    let prefix = m.prefix(&format!("cli-cancel/{test}"));
    let dst = m.url(&format!("{prefix}/big.bin"));
    let args = [opts, &["cp", "big.bin", &dst][..], &PARTS].concat();
    let mut child = spawn(&s, &m.args(&args));
    wait_until(&mut child, "a multipart upload was open with parts", || {
        m.upload_has_parts(&prefix)
    });
    let out = interrupt(child, signal);
    let open = m.open_uploads(&prefix);
    assert!(open.is_empty(), "uploads left open: {open:?}");
    assert_eq!(m.keys(&prefix), Vec::<String>::new(), "nothing at the key");
    assert_interrupted(&out, code);
}

#[test]
fn sigint_mid_upload_leaves_no_open_upload() {
    upload_to_moto_interrupted("sigint-upload", libc::SIGINT, 130);
}

#[test]
fn sigterm_mid_upload_leaves_no_open_upload() {
    upload_to_moto_interrupted("sigterm-upload", libc::SIGTERM, 143);
}

/// Through the compression layer, whose upload buffers compressed parts of its own.
#[test]
fn sigint_mid_compressed_upload_leaves_no_open_upload() {
    let opts = ["-o", "compression=zstd"];
    upload_interrupted("sigint-zstd", &csv(SIZE), &opts, libc::SIGINT, 130);
}

#[test]
fn sigint_mid_download_leaves_no_temp_file() {
    let m = S3::from_env("MOTO");
    let s = m.sandbox();
    s.write("big.bin", &bytes(SIZE, 43));
    let prefix = m.prefix("cli-cancel/sigint-download");
    let src = m.url(&format!("{prefix}/big.bin"));
    s.ok(&m.args(&[&["cp", "big.bin", &src][..], &PARTS].concat()));
    let dl = s.work.join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    let mut child = spawn(&s, &m.args(&[&["cp", &src, "dl/"][..], &PARTS].concat()));
    wait_until(&mut child, "a download temp file appeared", || {
        !files_ending(&dl, ".cairn-tmp").is_empty()
    });
    let out = interrupt(child, libc::SIGINT);
    assert_eq!(
        all_files(&dl),
        Vec::<PathBuf>::new(),
        "files left in the download directory"
    );
    assert_interrupted(&out, 130);
}

#[test]
fn sigint_mid_local_store_upload_leaves_no_temp_file() {
    let s = Sandbox::new();
    s.write("big.bin", &bytes(SIZE, 47));
    let mut child = spawn(
        &s,
        &[&["cp", "big.bin", "local://cancel/big.bin"][..], &PARTS].concat(),
    );
    let tmp = s.root.join(".cairn/tmp");
    wait_until(&mut child, "a temp file appeared in .cairn/tmp", || {
        !all_files(&tmp).is_empty()
    });
    let out = interrupt(child, libc::SIGINT);
    assert_eq!(all_files(&tmp), Vec::<PathBuf>::new(), "left in .cairn/tmp");
    assert!(
        !s.root.join("cancel/big.bin").exists(),
        "an interrupted copy must not appear at its key"
    );
    assert_interrupted(&out, 130);
}
