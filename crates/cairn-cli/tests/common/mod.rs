//! A sandbox for driving the real `cairn` binary: a work dir (the current directory), a
//! local-store root and an empty HOME, with a clean environment.

#![allow(dead_code)]

pub mod s3;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A test server's setting (`CAIRN_TEST_MOTO_ENDPOINT`, ...); a missing one fails the test,
/// never a skip: scripts/test starts the servers.
pub fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: start servers with scripts/servers/start.sh ENVFILE, then \
             `source ENVFILE` before running these tests"
        ),
    }
}

pub const BIN: &str = env!("CARGO_BIN_EXE_cairn");

pub struct Sandbox {
    _dir: tempfile::TempDir,
    pub work: PathBuf,
    pub root: PathBuf,
    pub home: PathBuf,
    /// Extra environment for every run.
    pub env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }
    pub fn lines(&self) -> Vec<String> {
        self.out().lines().map(str::to_string).collect()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", self.out()))
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (work, root, home) = (
            dir.path().join("work"),
            dir.path().join("root"),
            dir.path().join("home"),
        );
        for d in [&work, &root, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        Sandbox {
            _dir: dir,
            work,
            root,
            home,
            env: Vec::new(),
        }
    }

    /// The command with a clean environment: no stray config, only what the test sets.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CAIRN_ROOT", &self.root)
            .current_dir(&self.work)
            .args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, b"")
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        Run {
            code: status.code().expect("exited normally"),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "cairn {args:?} failed:\n{}\n{}",
            r.out(),
            r.stderr
        );
        r
    }

    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }
}

/// Every file under `dir` (relative path → bytes), skipping cairn's own `.cairn/`.
pub fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(
        base: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, Vec<u8>>,
    ) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap() == ".cairn" {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = Default::default();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// Pseudo-random bytes without a dependency: xorshift, seeded.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
