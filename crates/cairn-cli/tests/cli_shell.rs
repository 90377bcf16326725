//! Shell completions and man pages, generated from the same definitions as `--help`.

mod common;
use common::Sandbox;

#[test]
fn bash_completion_loads_and_completes_cairn() {
    let s = Sandbox::new();
    let script = s.ok(&["completions", "bash"]).out();
    let path = s.write("cairn.bash", script.as_bytes());
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p cairn", path.display()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&loaded.stdout).trim(),
        "complete -o bashdefault -o default -o nosort -F _cairn cairn",
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    // The completion knows the subcommands, nested ones too.
    assert!(
        script.contains("cmd=\"cairn__subcmd__bench__subcmd__history\""),
        "bench history is completed"
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = s.ok(&["completions", shell]).out();
        assert!(
            out.contains("sync") && out.contains("history"),
            "{shell}: {out}"
        );
    }
    let r = s.run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid value 'tcsh'"), "{}", r.stderr);
}

#[test]
fn man_pages_for_cairn_and_every_command() {
    let s = Sandbox::new();
    s.ok(&["man", "man1"]);
    let dir = s.work.join("man1");
    let page = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert!(
        page("cairn.1").contains(".TH cairn 1"),
        "{}",
        page("cairn.1")
    );
    let sync = page("cairn-sync.1");
    assert!(sync.contains(".TH cairn-sync 1"), "{sync}");
    assert!(
        sync.contains("\\-\\-delete"),
        "options are documented: {sync}"
    );
    assert!(page("cairn-bench-history.1").contains(".TH cairn-bench-history 1"));
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert!(n > 30, "one page per command and subcommand, found {n}");
}
