//! `cairn sync` between plain directories and local stores, through the real binary.

mod common;
use common::{tree, Sandbox};

fn summary(s: &Sandbox, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "sync"];
    all.extend_from_slice(args);
    s.ok(&all).json()["summary"].clone()
}

fn sample(s: &Sandbox) {
    s.write("src/a.txt", b"alpha");
    s.write("src/sub/b.csv", b"1,2,3");
    s.write("src/sub/deep/c.log", b"log line");
    s.write("src/space dir/ünï.txt", b"unicode");
}

#[test]
fn second_run_transfers_nothing_and_back_again() {
    let s = Sandbox::new();
    sample(&s);
    let r = s.ok(&["sync", "--list", "src", "local://m/"]);
    assert_eq!(r.lines().len(), 4, "{}", r.out());
    assert!(
        r.lines().contains(&"upload sub/b.csv".to_string()),
        "{}",
        r.out()
    );
    assert!(r.stderr.contains("uploaded 4"), "{}", r.stderr);
    let again = summary(&s, &["src", "local://m/"]);
    assert_eq!(again["transferred"], 0);
    assert_eq!(again["skipped"], 4);
    assert_eq!(again["failed"], 0);
    // --checksum agrees, and store → directory reproduces the tree.
    let sum = summary(&s, &["--checksum", "src", "local://m/"]);
    assert_eq!(
        (sum["transferred"].as_u64(), sum["skipped"].as_u64()),
        (Some(0), Some(4))
    );
    let back = s.ok(&["sync", "-v", "local://m", "copy"]);
    assert!(
        back.lines().contains(&"download sub/b.csv".to_string()),
        "{}",
        back.out()
    );
    assert!(back.stderr.contains("downloaded 4"), "{}", back.stderr);
    assert_eq!(tree(&s.work.join("copy")), tree(&s.work.join("src")));
    // A changed file is sent again (different size).
    s.write("src/a.txt", b"alpha, longer");
    let sum = summary(&s, &["src", "local://m/"]);
    assert_eq!(sum["transferred"], 1);
    assert_eq!(s.ok(&["cat", "local://m/a.txt"]).stdout, b"alpha, longer");
}

#[test]
fn quiet_prints_no_item_lines_and_no_summary() {
    let s = Sandbox::new();
    sample(&s);
    let r = s.ok(&["-q", "sync", "src", "local://m/"]);
    assert_eq!((r.out(), r.stderr.as_str()), (String::new(), ""));
    let again = summary(&s, &["src", "local://m/"]);
    assert_eq!(
        (again["transferred"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(4))
    );
}

#[test]
fn delete_and_dry_run() {
    let s = Sandbox::new();
    sample(&s);
    s.ok(&["sync", "src", "local://m/"]);
    std::fs::remove_file(s.work.join("src/sub/b.csv")).unwrap();
    s.write("src/new.txt", b"new");
    let before = tree(&s.root);

    let r = s.ok(&[
        "sync",
        "--list",
        "--dry-run",
        "--delete",
        "src",
        "local://m/",
    ]);
    let lines = r.lines();
    assert!(
        lines.contains(&"(dry run) delete sub/b.csv".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"(dry run) upload new.txt".to_string()),
        "{lines:?}"
    );
    assert!(r.stderr.contains("would delete 1"), "{}", r.stderr);
    assert_eq!(tree(&s.root), before, "a dry run changed the store");
    let sum = summary(&s, &["--dry-run", "--delete", "src", "local://m/"]);
    assert_eq!(sum["dry_run"], true);
    assert_eq!(sum["deleted"], 1);
    assert_eq!(tree(&s.root), before);

    // Without --delete the extra object stays; with it, it goes.
    let sum = summary(&s, &["src", "local://m/"]);
    assert_eq!(
        (sum["transferred"].as_u64(), sum["deleted"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(s.ok(&["cat", "local://m/sub/b.csv"]).stdout, b"1,2,3");
    let sum = summary(&s, &["--delete", "src", "local://m/"]);
    assert_eq!(sum["deleted"], 1);
    assert_eq!(s.run(&["cat", "local://m/sub/b.csv"]).code, 1);
    let keys = s.ok(&["ls", "-r", "local://m/"]).lines();
    assert_eq!(
        keys,
        [
            "m/a.txt",
            "m/new.txt",
            "m/space dir/ünï.txt",
            "m/sub/deep/c.log"
        ]
    );
}

#[test]
fn include_and_exclude() {
    let s = Sandbox::new();
    sample(&s);
    let sum = summary(
        &s,
        &[
            "--include",
            "*.txt",
            "--include",
            "*.csv",
            "--exclude",
            "space dir/**",
            "src",
            "dst",
        ],
    );
    assert_eq!(sum["transferred"], 2);
    let got: Vec<String> = tree(&s.work.join("dst")).into_keys().collect();
    assert_eq!(got, ["a.txt", "sub/b.csv"]);
    // Excluded keys are never deleted.
    s.write("dst/keep.bin", b"mine");
    summary(&s, &["--delete", "--exclude", "keep.bin", "src", "dst"]);
    assert!(s.work.join("dst/keep.bin").exists());
    assert_eq!(tree(&s.work.join("dst")).len(), 5);
    // A bad glob is a usage error before anything is written.
    let r = s.run(&["sync", "--include", "a[", "src", "other"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: ") && r.stderr.contains("glob"),
        "{}",
        r.stderr
    );
    assert!(tree(&s.work.join("other")).is_empty());
}

#[test]
fn failed_items_do_not_stop_the_rest_and_exit_2() {
    let s = Sandbox::new();
    s.write("src/x/blocked", b"1");
    s.write("src/x/fine", b"2");
    s.write("src/y.txt", b"3");
    // The destination has a directory where a file must go.
    std::fs::create_dir_all(s.work.join("dst/x/blocked/inside")).unwrap();
    let r = s.run(&["sync", "src", "dst"]);
    assert_eq!(r.code, 2, "{}\n{}", r.out(), r.stderr);
    assert!(r.stderr.contains("copy x/blocked: "), "{}", r.stderr);
    assert!(r.stderr.contains("failed 1"), "{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .last()
            .unwrap()
            .contains("1 of 3 objects failed"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(s.work.join("dst/x/fine")).unwrap(), b"2");
    assert_eq!(std::fs::read(s.work.join("dst/y.txt")).unwrap(), b"3");
    let r = s.run(&["--json", "sync", "src", "dst"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(r.out().lines().next().unwrap()).unwrap();
    assert_eq!(v["summary"]["failed"], 1);
    assert_eq!(v["summary"]["failures"][0]["key"], "x/blocked");
    assert_eq!(v["summary"]["skipped"], 2);
}

/// Runs `cairn ARGS` with stdout and stderr on a fresh pseudo-terminal (80×24) and returns
/// everything it drew there.
fn run_on_a_terminal(s: &Sandbox, args: &[&str]) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two descriptors that this function then owns.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are not owned elsewhere.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = s.cmd(args);
    cmd.env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = cmd.spawn().unwrap();
    // Drop the parent's copies of the terminal side, so reading ends when the child exits.
    drop(cmd);
    let mut out = Vec::new();
    let mut master = std::fs::File::from(master);
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // Linux reports the closed terminal side as EIO.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("reading the terminal: {e}"),
        }
    }
    let status = child.wait().unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(
        status.success(),
        "cairn {args:?} failed on a terminal:\n{out}"
    );
    out
}

#[test]
fn progress_bars_on_a_terminal_only() {
    let s = Sandbox::new();
    for i in 0..200 {
        s.write(
            &format!("src/d{}/f{i}.bin", i % 7),
            &common::bytes(64 * 1024, i),
        );
    }
    // On a terminal: a bar with bytes, rate and ETA, and the object count.
    let shown = run_on_a_terminal(&s, &["sync", "src", "local://tty/"]);
    assert!(
        shown.contains("/200 objects"),
        "no object count drawn:\n{shown}"
    );
    assert!(shown.contains("eta"), "no ETA drawn:\n{shown}");
    assert!(shown.contains("/s"), "no rate drawn:\n{shown}");
    assert!(shown.contains("uploaded 200"), "no summary:\n{shown}");

    // In a pipe, and on a terminal with --json, --quiet or CI set: no bar, no escape codes.
    let piped = s.ok(&["sync", "src", "local://pipe/"]);
    assert!(!piped.stderr.contains("objects") && !piped.stderr.contains('\x1b'));
    assert!(piped.stderr.contains("uploaded 200"), "{}", piped.stderr);
    let json = run_on_a_terminal(&s, &["--json", "sync", "src", "local://json/"]);
    assert!(
        !json.contains("objects") && !json.contains('\x1b'),
        "{json}"
    );
    let mut ci = Sandbox::new();
    ci.env.push(("CI".into(), "true".into()));
    for i in 0..20 {
        ci.write(&format!("src/f{i}"), b"x");
    }
    let shown = run_on_a_terminal(&ci, &["sync", "src", "local://ci/"]);
    assert!(
        !shown.contains("objects") && !shown.contains('\x1b'),
        "{shown}"
    );
    assert!(shown.contains("uploaded 20"), "{shown}");
}

#[test]
fn progress_in_a_pipe_is_timed_lines_and_the_summary_not_item_lines() {
    let s = Sandbox::new();
    for i in 0..60 {
        s.write(
            &format!("src/f{i:02}.json"),
            format!("{{\"n\": {i}}}").as_bytes(),
        );
    }
    let total: u64 = (0..60)
        .map(|i| format!("{{\"n\": {i}}}").len() as u64)
        .sum();
    // The default in a pipe: no item lines on stdout; the summary on stderr.
    let r = s.ok(&["sync", "src", "local://a/"]);
    assert_eq!(r.out(), "");
    assert!(r.stderr.contains("uploaded 60"), "{}", r.stderr);
    // Timed lines every interval, the last one with the totals.
    let r = s.ok(&["--progress-interval", "1ms", "sync", "src", "local://b/"]);
    assert_eq!(r.out(), "");
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("sync: "))
        .collect();
    assert!(
        lines.len() >= 2,
        "a timed line and the last one:\n{}",
        r.stderr
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!("sync: 60/60 objects, {total} B/{total} B, ")),
        "{last}"
    );
    assert!(
        last.ends_with(" (done)") && last.contains(", 0 failed, "),
        "{last}"
    );
    assert!(!r.stderr.contains('\x1b'), "no escape codes in a pipe");
    // JSON lines: the last is `final`, with the counts.
    let r = s.ok(&["--progress=json", "sync", "src", "local://c/"]);
    let reports: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("progress").cloned())
        .collect();
    let last = reports.last().expect("a final progress object");
    assert_eq!(last["final"], true);
    assert_eq!(
        (
            &last["op"],
            &last["objects"],
            &last["objects_total"],
            &last["bytes"],
            &last["failed"]
        ),
        (
            &"sync".into(),
            &60.into(),
            &60.into(),
            &total.into(),
            &0.into()
        )
    );
    // --list brings the item lines back; -q leaves nothing but the exit code.
    let r = s.ok(&["sync", "--list", "--delete", "src", "local://b/"]);
    assert_eq!(r.out(), "", "nothing changed, so no item lines");
    s.write("src/new.csv", b"a,b\n1,2\n");
    let r = s.ok(&["sync", "--list", "src", "local://b/"]);
    assert_eq!(r.lines(), ["upload new.csv"]);
    s.write("src/new2.csv", b"a,b\n");
    let r = s.ok(&[
        "-q",
        "--progress-interval",
        "1ms",
        "sync",
        "src",
        "local://b/",
    ]);
    assert_eq!((r.out(), r.stderr.as_str()), (String::new(), ""));
}

/// The last `--progress=json` object a command printed on stderr.
fn final_progress(r: &common::Run) -> serde_json::Value {
    let last = r
        .stderr
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("progress").cloned())
        .unwrap_or_else(|| panic!("no progress object:\n{}", r.stderr));
    assert_eq!(last["final"], true, "{last}");
    last
}

#[test]
fn every_bulk_command_reports_through_the_one_progress() {
    let s = Sandbox::new();
    let mut total = 0u64;
    for i in 0..12 {
        let body = format!("id,v\n{i},{}\n", i * 7);
        total += body.len() as u64;
        s.write(&format!("tree/d{}/r{i}.csv", i % 3), body.as_bytes());
    }
    let counts = |r: &common::Run| {
        let p = final_progress(r);
        (
            p["op"].as_str().unwrap().to_string(),
            p["objects"].as_u64().unwrap(),
            p["bytes"].as_u64().unwrap(),
            p["failed"].as_u64().unwrap(),
        )
    };
    let j = "--progress=json";
    let r = s.ok(&[j, "cp", "-r", "tree", "local://p/"]);
    assert_eq!(counts(&r), ("copy".into(), 12, total, 0));
    let r = s.ok(&[j, "verify", "local://p/"]);
    assert_eq!(counts(&r), ("verify".into(), 12, total, 0));
    let r = s.ok(&[j, "stats", "local://p/"]);
    assert_eq!(counts(&r), ("stats".into(), 12, total, 0));
    let r = s.ok(&[j, "rm", "-r", "local://p/tree/d0/"]);
    assert_eq!(counts(&r), ("delete".into(), 4, 0, 0));
}

/// A local tree holding what cairn cannot copy (a link, a FIFO, names that are not keys):
/// `sync`, `cp -r` and `ls -r` name each one, count it in `--json` and exit 2, and copy the
/// rest. `--exclude` passes over them on purpose, as it does objects.
#[test]
fn local_entries_cairn_cannot_copy_are_named_counted_and_exit_2() {
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new();
    s.write("src/good.txt", b"good");
    s.write("src/sub/ok.csv", b"1,2");
    s.write("src/back\\slash.txt", b"x");
    std::fs::write(
        s.work
            .join("src")
            .join(std::ffi::OsStr::from_bytes(b"bad\xff.txt")),
        b"x",
    )
    .unwrap();
    let outside = s.write("outside/secret.txt", b"secret");
    std::os::unix::fs::symlink(&outside, s.work.join("src/sub/link")).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(s.work.join("src/fifo"))
        .status()
        .unwrap();
    assert!(st.success());
    let odd = [
        ("back\\slash.txt", "contains `\\`"),
        ("bad\u{FFFD}.txt", "not UTF-8"),
        ("fifo", "socket, FIFO or device"),
        ("sub/link", "symbolic link"),
    ];

    let r = s.run(&["--json", "sync", "src", "dst"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let sum = &r.json()["summary"];
    assert_eq!(
        (
            sum["unlisted"].as_u64(),
            sum["failed"].as_u64(),
            sum["transferred"].as_u64()
        ),
        (Some(4), Some(4), Some(2)),
        "{sum}"
    );
    let named: Vec<(String, String)> = sum["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(named.len(), 4, "{named:?}");
    for ((key, error), (want, why)) in named.iter().zip(odd) {
        assert_eq!(key, want, "{named:?}");
        assert!(error.contains(why), "{key}: {error}");
    }
    assert_eq!(
        tree(&s.work.join("dst")).into_keys().collect::<Vec<_>>(),
        ["good.txt", "sub/ok.csv"]
    );
    // Excluded, they are passed over like objects: nothing left to say.
    let sum = summary(
        &s,
        &[
            "--exclude",
            "sub/link",
            "--exclude",
            "fifo",
            "--exclude",
            "ba*",
            "src",
            "dst",
        ],
    );
    assert_eq!(
        (sum["unlisted"].as_u64(), sum["skipped"].as_u64()),
        (Some(0), Some(2)),
        "{sum}"
    );

    let r = s.run(&["cp", "-r", "src", "out"]);
    assert_eq!(r.code, 2, "cp -r: {}", r.stderr);
    for (name, _) in odd {
        let shown = name.escape_debug().to_string();
        assert!(
            r.stderr.contains(name) || r.stderr.contains(&shown),
            "cp -r: {name} not named in:\n{}",
            r.stderr
        );
    }
    assert_eq!(
        tree(&s.work.join("out")).into_keys().collect::<Vec<_>>(),
        ["good.txt", "sub/ok.csv"]
    );
    let r = s.run(&["ls", "-r", "--json", "src"]);
    assert_eq!(r.code, 2, "ls -r: {}", r.stderr);
    let unlisted = r
        .out()
        .lines()
        .filter(|l| l.contains("\"unlisted\""))
        .count();
    assert_eq!(unlisted, 5, "4 entries and the summary:\n{}", r.out());
    assert_eq!(
        std::fs::read(&outside).unwrap(),
        b"secret",
        "the outside file is untouched"
    );
}
