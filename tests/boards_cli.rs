//! `lmx boards` driven as a user runs it: the real binary, a scratch
//! working directory, and a private config home.

use std::path::Path;
use std::process::{Command, Output};

fn lmx(cwd: &Path, config_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("LMX_BOARDS_DIR")
        .env("NO_COLOR", "1")
        .output()
        .expect("run lmx")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fixture(name: &str) -> String {
    format!(
        "{}/boards/tests/fixtures/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn list_shows_every_builtin_board_from_an_empty_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let out = lmx(cwd.path(), cfg.path(), &["boards", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let header = stdout.lines().next().unwrap();
    for col in ["NAME", "ARCH", "FLASH", "SOURCE"] {
        assert!(header.contains(col), "{header}");
    }
    for name in [
        "gl-ar750",
        "gl-mt300a",
        "gl-mt300n-v2",
        "tp-archer-ax23",
        "zyxel-nwa50ax",
        "belkin-rt3200",
        "openwrt-one",
        "turris-omnia",
        "qemu-aarch64",
        "qemu-armv7l",
        "qemu-mips-ar750",
        "qemu-mipsel-mt300",
        "qemu-aarch64-mt7622",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"));
        assert!(line.ends_with("built-in"), "{line}");
    }
    let ar750 = stdout.lines().find(|l| l.starts_with("gl-ar750 ")).unwrap();
    assert!(
        ar750.contains("mips-be") && ar750.contains("spi-nor 16 MiB"),
        "{ar750}"
    );
}

#[test]
fn user_files_shadow_builtins_in_lookup_order() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let flag = tempfile::tempdir().unwrap();
    let builtin = lmx_boards::builtin::FILES
        .iter()
        .find(|f| f.name == "qemu-aarch64")
        .unwrap()
        .text;
    // ~/.config/lmx/boards/ (via XDG_CONFIG_HOME) shadows the built-in ...
    let user_dir = cfg.path().join("lmx/boards");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(
        user_dir.join("qemu-aarch64.toml"),
        format!("{builtin}\n[network]\nip = \"192.168.77.20\"\n"),
    )
    .unwrap();
    let out = lmx(cwd.path(), cfg.path(), &["boards", "show", "qemu-aarch64"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "# source: {}",
            user_dir.join("qemu-aarch64.toml").display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("# shadows: built-in (qemu-aarch64.toml)"),
        "{stdout}"
    );
    assert!(stdout.contains("ip = \"192.168.77.20\""), "{stdout}");

    // ... ./boards/ shadows the user's file ...
    std::fs::create_dir(cwd.path().join("boards")).unwrap();
    std::fs::write(
        cwd.path().join("boards/qemu-aarch64.toml"),
        format!("{builtin}\n[network]\nip = \"192.168.77.30\"\n"),
    )
    .unwrap();
    let out = lmx(
        cwd.path(),
        cfg.path(),
        &["boards", "show", "qemu-aarch64", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    assert!(
        json.contains(r#""source": "boards/qemu-aarch64.toml""#),
        "{json}"
    );
    assert!(json.contains(r#""ip": "192.168.77.30""#), "{json}");
    assert!(json.contains(r#""built-in (qemu-aarch64.toml)""#), "{json}");

    // ... and --boards-dir comes first of all.
    std::fs::write(
        flag.path().join("qemu-aarch64.toml"),
        format!("{builtin}\n[network]\nip = \"192.168.77.40\"\n"),
    )
    .unwrap();
    let dir = flag.path().to_str().unwrap();
    let out = lmx(
        cwd.path(),
        cfg.path(),
        &[
            "boards",
            "--boards-dir",
            dir,
            "show",
            "qemu-aarch64",
            "--json",
        ],
    );
    assert!(text(&out.stdout).contains(r#""ip": "192.168.77.40""#));
    let out = lmx(
        cwd.path(),
        cfg.path(),
        &["boards", "list", "--boards-dir", dir],
    );
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("qemu-aarch64 "))
        .unwrap();
    assert!(line.contains(dir) && line.contains("shadows"), "{line}");
}

#[test]
fn show_prints_a_board_file_that_checks() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let out = lmx(cwd.path(), cfg.path(), &["boards", "show", "gl-ar750"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("load = 0x80060000"), "{stdout}");
    assert!(
        stdout.contains("# extends: built-in (families/ath79.toml)"),
        "{stdout}"
    );
    std::fs::write(cwd.path().join("gl-ar750.toml"), &stdout).unwrap();
    let out = lmx(
        cwd.path(),
        cfg.path(),
        &["boards", "check", "gl-ar750.toml"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: gl-ar750.toml (board gl-ar750"));
}

#[test]
fn show_an_unknown_board_fails_with_a_suggestion() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let out = lmx(cwd.path(), cfg.path(), &["boards", "show", "gl-ar75"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no board named \"gl-ar75\""), "{stderr}");
    assert!(stderr.contains("did you mean `gl-ar750`?"), "{stderr}");
}

#[test]
fn check_reports_every_error_of_every_file_and_fails() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let valid = fixture("valid");
    let typo = fixture("unknown-field");
    let overlap = fixture("partition-overlap");
    let out = lmx(
        cwd.path(),
        cfg.path(),
        &["boards", "check", &valid, &typo, &overlap],
    );
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stdout.contains(&format!("ok: {valid} (board valid, extends")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "error: {typo}: `ram.sise`: unknown field `sise` [unknown-field]"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("help: did you mean `size`?"), "{stderr}");
    assert!(
        stderr.contains("`flash.partitions[1].offset`: partition \"firmware\""),
        "{stderr}"
    );
    assert!(stderr.contains("[partition-overlap]"), "{stderr}");
    assert!(stderr.contains("in 2 of 3 file(s)"), "{stderr}");
}

#[test]
fn check_accepts_every_shipped_file() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("families")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("Cargo.toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    // 16 boards (eight real, five virtual, three vendor-dialect twins)
    // and 7 families.
    assert_eq!(files.len(), 23);
    let mut args = vec!["boards", "check"];
    args.extend(files.iter().map(String::as_str));
    let out = lmx(cwd.path(), cfg.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ok: "))
            .count(),
        23
    );
}

/// The worked example of docs/boards.md, as a user would save it.
fn porting_example() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/boards.md"))
        .expect("docs/boards.md");
    let start = doc
        .find("<!-- porting-example: acme-r1.toml -->\n```toml\n")
        .expect("example marker");
    let body = &doc[start..];
    let body = &body[body.find("```toml\n").unwrap() + 8..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_porting_guide_example_checks_and_its_sample_errors_are_real() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let example = porting_example();
    std::fs::write(cwd.path().join("acme-r1.toml"), &example).unwrap();
    let out = lmx(cwd.path(), cfg.path(), &["boards", "check", "acme-r1.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(
        "ok: acme-r1.toml (board acme-r1, extends built-in (families/ramips-legacy.toml) -> built-in (families/mips-kseg.toml))"
    ));

    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/boards.md")).unwrap();
    for (from, to) in [
        ("rootfs = 0x01000000", "rootfs = 0x81000000"),
        ("erase_block = 0x10000", "erase_blok = 0x10000"),
    ] {
        std::fs::write(cwd.path().join("acme-r1.toml"), example.replace(from, to)).unwrap();
        let out = lmx(cwd.path(), cfg.path(), &["boards", "check", "acme-r1.toml"]);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        let first = stderr.lines().next().unwrap();
        assert!(doc.contains(first), "docs/boards.md should show:\n{stderr}");
        // The guide may shorten the list of known keys with "…".
        let help = stderr.lines().nth(1).unwrap();
        let head: String = help.chars().take(60).collect();
        assert!(doc.contains(&head), "docs/boards.md should show:\n{stderr}");
    }
}

#[test]
fn a_boards_dir_that_does_not_exist_is_an_error() {
    let cwd = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let out = lmx(
        cwd.path(),
        cfg.path(),
        &["boards", "list", "--boards-dir", "nope"],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--boards-dir nope: not a directory"));
}

#[test]
fn check_of_the_shipped_directory_glob_passes() {
    // `lmx boards check boards/*.toml` as the docs write it: every shipped
    // board and family is valid, and the crate's Cargo.toml is skipped.
    let cfg = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = vec!["boards".to_string(), "check".to_string()];
    let mut boards = 0;
    for e in std::fs::read_dir(root.join("boards")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            boards += 1;
            args.push(p.display().to_string());
        }
    }
    assert!(boards >= 14, "{args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lmx(root, cfg.path(), &args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("skipped: ") && stdout.contains("Cargo.toml"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        boards - 1
    );
}

#[test]
fn every_command_takes_lmx_boards_dir_and_names_every_problem() {
    // A boards directory with a broken board (two problems) and the
    // fixtures' family, given through LMX_BOARDS_DIR alone.
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/tests/fixtures");
    std::fs::copy(
        fixtures.join("address-collision.toml"),
        dir.path().join("address-collision.toml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("families")).unwrap();
    for e in std::fs::read_dir(fixtures.join("families")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join("families").join(p.file_name().unwrap())).unwrap();
    }
    let hostname = "/etc/hostname";
    for args in [
        vec![
            "tftpboot",
            "--kernel",
            hostname,
            "--rootfs",
            hostname,
            "--board-ip",
            "192.168.1.1",
            "--server-ip",
            "192.168.1.2",
            "--dry-run",
        ],
        vec![
            "build",
            "--kernel",
            hostname,
            "--rootfs",
            hostname,
            "--dry-run",
        ],
        vec!["flash", "--image", hostname, "--dry-run"],
        vec!["env", "print", "--image", hostname],
        vec!["console", "--port", "/dev/lmx-no-such-port"],
    ] {
        let mut full = vec![args[0], "--board", "address-collision"];
        full.extend(&args[1..]);
        if args[0] == "env" {
            full = vec![
                "env",
                "print",
                "--board",
                "address-collision",
                "--image",
                hostname,
            ];
        }
        let out = Command::new(env!("CARGO_BIN_EXE_lmx"))
            .args(&full)
            .env("LMX_BOARDS_DIR", dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{full:?}: {err}");
        assert!(err.contains("2 problems"), "{full:?}: {err}");
        assert!(
            err.contains("kernel.load") && err.contains("kernel.entry"),
            "{full:?}: every problem named: {err}"
        );
    }
}
