//! `lmx env` end to end: the real binary on real files, with U-Boot's
//! `mkenvimage` and `fw_printenv`/`fw_setenv` (Debian package
//! `u-boot-tools`) as the independent readers and writers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lmx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("LMX_LOG")
        .env_remove("LMX_BOARDS_DIR")
        .output()
        .expect("running lmx")
}

fn ok(args: &[&str]) -> String {
    let out = lmx(args);
    assert!(
        out.status.success(),
        "lmx {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = lmx(args);
    assert!(!out.status.success(), "lmx {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("`{name}` is missing: install the Debian package u-boot-tools (apt-get install u-boot-tools)");
}

fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running a u-boot-tools program");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fw_get(config: &Path, name: &str) -> String {
    run_tool(
        Command::new(tool("fw_printenv"))
            .arg("-c")
            .arg(config)
            .args(["-n", name]),
    )
    .trim_end_matches('\n')
    .to_string()
}

fn fw_config(dir: &Path, image: &Path, offsets: &[u64], size: u64) -> PathBuf {
    let text: String = offsets
        .iter()
        .map(|o| format!("{} {o:#x} {size:#x}\n", image.display()))
        .collect();
    let path = dir.join("fw_env.config");
    std::fs::write(&path, text).unwrap();
    path
}

/// Deterministic non-trivial filler for the bytes around the environment.
fn filler(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

const ENV_OFFSET: usize = 0x40000;
const ENV_SIZE: usize = 0x20000;

/// A 1 MiB "flash dump" with a mkenvimage environment at 0x40000.
fn flash_dump(dir: &Path) -> PathBuf {
    let text = dir.join("defaults.txt");
    std::fs::write(
        &text,
        "bootdelay=2\nbootcmd=run boot_flash\nipaddr=192.168.1.1\nserverip=192.168.1.2\n",
    )
    .unwrap();
    let blob = dir.join("env.bin");
    run_tool(
        Command::new(tool("mkenvimage"))
            .args(["-s", &format!("{ENV_SIZE:#x}"), "-o"])
            .arg(&blob)
            .arg(&text),
    );
    let mut dump = filler(1 << 20);
    dump[ENV_OFFSET..ENV_OFFSET + ENV_SIZE].copy_from_slice(&std::fs::read(&blob).unwrap());
    let path = dir.join("flash.img");
    std::fs::write(&path, dump).unwrap();
    path
}

fn loc(image: &Path) -> Vec<String> {
    vec![
        "--image".into(),
        image.display().to_string(),
        "--offset".into(),
        format!("{ENV_OFFSET:#x}"),
        "--size".into(),
        "128K".into(),
    ]
}

fn with<'a>(head: &[&'a str], location: &'a [String], tail: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = head.to_vec();
    v.extend(location.iter().map(String::as_str));
    v.extend_from_slice(tail);
    v
}

fn assert_outside_unchanged(before: &[u8], after: &[u8], areas: &[(usize, usize)]) {
    assert_eq!(before.len(), after.len(), "image length changed");
    let mut inside = vec![false; before.len()];
    for &(start, len) in areas {
        inside[start..start + len]
            .iter_mut()
            .for_each(|b| *b = true);
    }
    for (i, (a, b)) in before.iter().zip(after).enumerate() {
        assert!(
            inside[i] || a == b,
            "byte {i:#x} outside the environment changed"
        );
    }
}

#[test]
fn edit_a_flash_dump_and_fw_printenv_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let image = flash_dump(dir.path());
    let l = loc(&image);
    let before = std::fs::read(&image).unwrap();

    let printed = ok(&with(&["env", "print"], &l, &[]));
    assert_eq!(
        printed,
        "bootdelay=2\nbootcmd=run boot_flash\nipaddr=192.168.1.1\nserverip=192.168.1.2\n"
    );
    assert_eq!(
        ok(&with(&["env", "get"], &l, &["bootcmd"])),
        "run boot_flash\n"
    );

    ok(&with(
        &["env", "set"],
        &l,
        &["bootcmd", "tftpboot 0x81000000 uImage; bootm"],
    ));
    ok(&with(&["env", "unset"], &l, &["serverip"]));
    let after = std::fs::read(&image).unwrap();
    assert_outside_unchanged(&before, &after, &[(ENV_OFFSET, ENV_SIZE)]);
    // mkenvimage padded with 0xff; lmx keeps that style.
    assert_eq!(after[ENV_OFFSET + ENV_SIZE - 1], 0xff);

    let config = fw_config(dir.path(), &image, &[ENV_OFFSET as u64], ENV_SIZE as u64);
    assert_eq!(
        fw_get(&config, "bootcmd"),
        "tftpboot 0x81000000 uImage; bootm"
    );
    let all = run_tool(Command::new(tool("fw_printenv")).arg("-c").arg(&config));
    assert!(!all.contains("serverip"), "{all}");

    // Import merges; --replace replaces; comments and '=' in values work.
    let text = dir.path().join("more.txt");
    std::fs::write(
        &text,
        "# comment\nbootargs=console=ttyS0,115200 a=b\n\nbootdelay=0\n",
    )
    .unwrap();
    ok(&with(&["env", "import"], &l, &[text.to_str().unwrap()]));
    assert_eq!(fw_get(&config, "bootargs"), "console=ttyS0,115200 a=b");
    assert_eq!(fw_get(&config, "bootdelay"), "0");
    assert_eq!(fw_get(&config, "ipaddr"), "192.168.1.1");
    ok(&with(
        &["env", "import"],
        &l,
        &["--replace", text.to_str().unwrap()],
    ));
    assert_eq!(
        ok(&with(&["env", "print"], &l, &[])),
        "bootargs=console=ttyS0,115200 a=b\nbootdelay=0\n"
    );
    let after = std::fs::read(&image).unwrap();
    assert_outside_unchanged(&before, &after, &[(ENV_OFFSET, ENV_SIZE)]);

    // fw_setenv writes; lmx reads it.
    run_tool(
        Command::new(tool("fw_setenv"))
            .arg("-c")
            .arg(&config)
            .args(["ethaddr", "00:11:22:33:44:55"]),
    );
    assert_eq!(
        ok(&with(&["env", "get"], &l, &["ethaddr"])),
        "00:11:22:33:44:55\n"
    );
}

#[test]
fn diff_images_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let image = flash_dump(dir.path());
    let copy = dir.path().join("copy.img");
    std::fs::copy(&image, &copy).unwrap();
    let l = loc(&image);
    let lc = loc(&copy);
    ok(&with(&["env", "set"], &lc, &["bootdelay", "5"]));
    ok(&with(&["env", "set"], &lc, &["newvar", "x"]));
    ok(&with(&["env", "unset"], &lc, &["ipaddr"]));

    let out = ok(&with(&["env", "diff"], &l, &[copy.to_str().unwrap()]));
    assert_eq!(
        out,
        "-bootdelay=2\n+bootdelay=5\n-ipaddr=192.168.1.1\n+newvar=x\n"
    );
    let same = lmx(&with(
        &["env", "diff"],
        &l,
        &["--exit-code", image.to_str().unwrap()],
    ));
    assert!(same.status.success());
    assert!(same.stdout.is_empty());
    let differs = lmx(&with(
        &["env", "diff"],
        &l,
        &["--exit-code", copy.to_str().unwrap()],
    ));
    assert_eq!(differs.status.code(), Some(1));

    let text = dir.path().join("want.txt");
    std::fs::write(
        &text,
        "bootdelay=2\nbootcmd=run boot_flash\nipaddr=10.0.0.1\nserverip=192.168.1.2\n",
    )
    .unwrap();
    let out = ok(&with(&["env", "diff"], &l, &[text.to_str().unwrap()]));
    assert_eq!(out, "-ipaddr=192.168.1.1\n+ipaddr=10.0.0.1\n");
}

#[test]
fn redundant_env_created_read_by_fw_printenv_and_updated_by_fw_setenv() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("nand.img");
    std::fs::write(&image, vec![0xffu8; 0x10000]).unwrap();
    let before = std::fs::read(&image).unwrap();
    let l: Vec<String> = [
        "--image",
        image.to_str().unwrap(),
        "--offset",
        "0x4000",
        "--size",
        "0x2000",
        "--redundant",
        "0x8000",
        "--flags",
        "counter",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // An erased area is an error that says what to do...
    let err = fails(&with(&["env", "set"], &l, &["a", "1"]));
    assert!(err.contains("erased"), "{err}");
    assert!(err.contains("--create"), "{err}");
    // ...and --create starts a new environment.
    ok(&with(&["env", "set"], &l, &["--create", "a", "1"]));
    ok(&with(&["env", "set"], &l, &["b", "2"]));
    let after = std::fs::read(&image).unwrap();
    assert_outside_unchanged(&before, &after, &[(0x4000, 0x2000), (0x8000, 0x2000)]);
    // Copy 1 got flag 1, copy 2 flag 2.
    assert_eq!((after[0x4004], after[0x8004]), (1, 2));

    let config = fw_config(dir.path(), &image, &[0x4000, 0x8000], 0x2000);
    assert_eq!(fw_get(&config, "a"), "1");
    assert_eq!(fw_get(&config, "b"), "2");
    run_tool(
        Command::new(tool("fw_setenv"))
            .arg("-c")
            .arg(&config)
            .args(["b", "3"]),
    );
    assert_eq!(ok(&with(&["env", "get"], &l, &["b"])), "3\n");
    ok(&with(&["env", "set"], &l, &["c", "4"]));
    assert_eq!(fw_get(&config, "b"), "3");
    assert_eq!(fw_get(&config, "c"), "4");

    // --dry-run shows the plan and writes nothing.
    let snapshot = std::fs::read(&image).unwrap();
    let plan = ok(&with(&["env", "set"], &l, &["--dry-run", "d", "5"]));
    assert!(plan.contains("write copy"), "{plan}");
    assert_eq!(std::fs::read(&image).unwrap(), snapshot);

    // A redundant environment needs to know its flag style.
    let err = fails(&[
        "env",
        "print",
        "--image",
        image.to_str().unwrap(),
        "--offset",
        "0x4000",
        "--size",
        "0x2000",
        "--redundant",
        "0x8000",
    ]);
    assert!(err.contains("--flags"), "{err}");
}

#[test]
fn boolean_flags_mark_the_old_copy_obsolete() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("nor.img");
    std::fs::write(&image, vec![0xffu8; 0x4000]).unwrap();
    let l: Vec<String> = [
        "--image",
        image.to_str().unwrap(),
        "--size",
        "0x1000",
        "--redundant",
        "--flags",
        "boolean",
        "--big-endian",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ok(&with(&["env", "set"], &l, &["--create", "x", "1"]));
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(bytes[4], 1);
    ok(&with(&["env", "set"], &l, &["x", "2"]));
    let bytes = std::fs::read(&image).unwrap();
    // Second copy (right after the first) is active, the first obsolete.
    assert_eq!((bytes[4], bytes[0x1004]), (0, 1));
    assert_eq!(ok(&with(&["env", "get"], &l, &["x"])), "2\n");
}

#[test]
fn bad_input_gets_clear_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = flash_dump(dir.path());
    let l = loc(&image);
    let before = std::fs::read(&image).unwrap();

    for key in ["a=b", "", "#x"] {
        let err = fails(&with(&["env", "set"], &l, &[key, "v"]));
        assert!(err.contains("invalid variable name"), "{key:?}: {err}");
    }
    let err = fails(&with(&["env", "set"], &l, &["k", ""]));
    assert!(err.contains("unset"), "{err}");

    // Too large: says how many bytes it needs and has.
    // (through import: one argument cannot be that long)
    let big = dir.path().join("big.txt");
    std::fs::write(&big, format!("big={}\n", "x".repeat(ENV_SIZE))).unwrap();
    let err = fails(&with(&["env", "import"], &l, &[big.to_str().unwrap()]));
    assert!(
        err.contains("needs") && err.contains("holds 131068"),
        "{err}"
    );

    // Text with a line U-Boot would drop.
    let text = dir.path().join("bad.txt");
    std::fs::write(&text, "a=1\njunk line\n").unwrap();
    let err = fails(&with(&["env", "import"], &l, &[text.to_str().unwrap()]));
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(
        std::fs::read(&image).unwrap(),
        before,
        "nothing may be written"
    );

    // Wrong offset: CRC mismatch, and a suggestion of what matches.
    let err = fails(&[
        "env",
        "print",
        "--image",
        image.to_str().unwrap(),
        "--offset",
        "0x20000",
        "--size",
        "0x20000",
    ]);
    assert!(err.contains("no valid environment"), "{err}");
    assert!(err.contains("--offset 0x40000 --size 0x20000"), "{err}");
    // Wrong size: the same suggestion.
    let err = fails(&[
        "env",
        "get",
        "--image",
        image.to_str().unwrap(),
        "--offset",
        "0x40000",
        "--size",
        "0x10000",
        "bootcmd",
    ]);
    assert!(err.contains("--offset 0x40000 --size 0x20000"), "{err}");

    // Truncated image.
    let short = dir.path().join("short.img");
    std::fs::write(&short, &before[..ENV_OFFSET + 0x1000]).unwrap();
    let err = fails(&with(&["env", "print"], &loc(&short), &[]));
    assert!(
        err.contains("truncated") || err.contains("incomplete"),
        "{err}"
    );
    assert!(err.contains("0x60000"), "{err}");

    // Device nodes are never replaced by a rename.
    let err = fails(&with(
        &["env", "set"],
        &l,
        &["-o", "/dev/null", "bootdelay", "9"],
    ));
    assert!(err.contains("not a regular file"), "{err}");

    // Missing variable.
    let err = fails(&with(&["env", "get"], &l, &["nope"]));
    assert!(err.contains("not set"), "{err}");
    assert_eq!(std::fs::read(&image).unwrap(), before);
}

#[test]
fn output_file_leaves_the_input_alone() {
    let dir = tempfile::tempdir().unwrap();
    let image = flash_dump(dir.path());
    let out = dir.path().join("new.img");
    let l = loc(&image);
    let before = std::fs::read(&image).unwrap();
    ok(&with(
        &["env", "set"],
        &l,
        &["-o", out.to_str().unwrap(), "bootdelay", "7"],
    ));
    assert_eq!(std::fs::read(&image).unwrap(), before);
    assert_eq!(
        ok(&with(&["env", "get"], &loc(&out), &["bootdelay"])),
        "7\n"
    );
    assert_outside_unchanged(
        &before,
        &std::fs::read(&out).unwrap(),
        &[(ENV_OFFSET, ENV_SIZE)],
    );
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".lmx-env-")), "{names:?}");
}

#[test]
fn board_supplies_the_location() {
    let dir = tempfile::tempdir().unwrap();
    // gl-ar750: big-endian MIPS, environment at 0x40000, 0x10000 bytes,
    // one copy (GL's board953x.h, cited in the board file).
    let text = dir.path().join("ar750.txt");
    std::fs::write(&text, "bootcmd=bootm 0x9f060000\n").unwrap();
    let blob = dir.path().join("ar750-env.bin");
    run_tool(
        Command::new(tool("mkenvimage"))
            .args(["-b", "-s", "0x10000", "-o"])
            .arg(&blob)
            .arg(&text),
    );
    let mut dump = filler(0x100000);
    dump[0x40000..0x50000].copy_from_slice(&std::fs::read(&blob).unwrap());
    let image = dir.path().join("ar750.img");
    std::fs::write(&image, &dump).unwrap();
    let img = image.to_str().unwrap();
    assert_eq!(
        ok(&["env", "print", "--board", "gl-ar750", "--image", img]),
        "bootcmd=bootm 0x9f060000\n"
    );
    // A size that contradicts the board's is the user's to give.
    let err = fails(&[
        "env", "print", "--board", "gl-ar750", "--image", img, "--size", "0x8000",
    ]);
    assert!(err.contains("CRC"), "{err}");
    assert_eq!(
        ok(&["env", "get", "--board", "gl-ar750", "--image", img, "--size", "0x10000", "bootcmd"]),
        "bootm 0x9f060000\n"
    );

    // qemu-aarch64: the virtual board's environment at the start of bank 1
    // (0x4000000 in the whole flash), 0x40000 bytes, little-endian.
    let flash = dir.path().join("flash.img");
    let file = std::fs::File::create(&flash).unwrap();
    file.set_len(0x4000000 + 0x40000).unwrap();
    drop(file);
    let f = flash.to_str().unwrap();
    let board = ["--board", "qemu-aarch64", "--image", f];
    ok(&[&["env", "set"][..], &board, &["--create", "bootdelay", "1"]].concat());
    let config = fw_config(dir.path(), &flash, &[0x4000000], 0x40000);
    assert_eq!(fw_get(&config, "bootdelay"), "1");
    // A dump of bank 1 alone: the board's offset does not fit; --offset 0 does.
    let bank1 = dir.path().join("flash1.img");
    let all = std::fs::read(&flash).unwrap();
    std::fs::write(&bank1, &all[0x4000000..]).unwrap();
    let b1 = bank1.to_str().unwrap();
    let err = fails(&["env", "print", "--board", "qemu-aarch64", "--image", b1]);
    assert!(err.contains("--offset"), "{err}");
    assert_eq!(
        ok(&[
            "env",
            "print",
            "--board",
            "qemu-aarch64",
            "--image",
            b1,
            "--offset",
            "0"
        ]),
        "bootdelay=1\n"
    );
}
