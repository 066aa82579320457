//! The codec against U-Boot's own tools: `mkenvimage` writes blobs that
//! lmx must read (and, given the same padding, write byte for byte), and
//! `fw_printenv`/`fw_setenv` read and write blobs and pick copies the way
//! lmx must. The tools come from the Debian package `u-boot-tools`; when
//! one is missing the tests fail and say so instead of passing silently.

use lmx_env::{encode_copy, parse_text, EnvImage, EnvLayout, Environment, FlagStyle};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("`{name}` is missing: install the Debian package u-boot-tools (apt-get install u-boot-tools)");
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("running a u-boot-tools program");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const TEXT: &str = "\
# defaults for a test board
bootdelay=2
baudrate=115200
bootargs=console=ttyS0,115200 root=/dev/mtdblock5 rootfstype=squashfs
bootcmd=tftpboot 0x81000000 uImage; bootm 0x81000000
ethaddr=00:11:22:33:44:55
quoted=\"a;b\" 'c' ${x} $y
multi=first\\
second

empty=
";

fn mkenvimage(dir: &Path, args: &[&str], size: usize) -> Vec<u8> {
    let input = dir.join("in.txt");
    std::fs::write(&input, TEXT).unwrap();
    let out = dir.join("out.bin");
    run(Command::new(tool("mkenvimage"))
        .args(args)
        .arg("-s")
        .arg(format!("{size:#x}"))
        .arg("-o")
        .arg(&out)
        .arg(&input));
    std::fs::read(out).unwrap()
}

#[test]
fn mkenvimage_blobs_parse_identically_and_re_encode_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (expected, warnings) = parse_text(TEXT.as_bytes()).unwrap();
    assert!(warnings.is_empty());
    let cases: &[(&[&str], usize, bool, bool, u8)] = &[
        // args, size, redundant, big-endian, pad
        (&[], 0x100, false, false, 0xff),
        (&[], 0x2000, false, false, 0xff),
        (&[], 0x40000, false, false, 0xff),
        (&["-r"], 0x4000, true, false, 0xff),
        (&["-b"], 0x1000, false, true, 0xff),
        (&["-r", "-b"], 0x10000, true, true, 0xff),
        (&["-p", "0"], 0x1000, false, false, 0x00),
        (&["-p", "0x5a"], 0x1000, false, false, 0x5a),
        (&["-r", "-b", "-p", "0"], 0x800, true, true, 0x00),
    ];
    for &(args, size, redundant, big, pad) in cases {
        let blob = mkenvimage(dir.path(), args, size);
        assert_eq!(blob.len(), size, "{args:?}");
        let mut layout = if redundant {
            EnvLayout::redundant(0, size, size as u64, FlagStyle::Counter)
        } else {
            EnvLayout::single(0, size)
        };
        if big {
            layout = layout.with_endian(lmx_env::Endian::Big);
        }
        // Parse: a redundant blob is one copy; pair it with an erased one.
        let mut dump = blob.clone();
        if redundant {
            dump.extend(vec![0xff; size]);
        }
        let image = EnvImage::from_dump(layout, &dump).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(image.environment(), &expected, "{args:?}");
        assert_eq!(image.selection().unwrap().copy, 0);
        // Emit: the same variables, flag 1 and padding give the same bytes.
        let ours = encode_copy(&layout, &expected, 1, pad).unwrap();
        assert_eq!(
            ours, blob,
            "{args:?}: lmx's encoding differs from mkenvimage's"
        );
        // The wrong byte order is a CRC error, not a silent misread.
        let other = layout.with_endian(if big {
            lmx_env::Endian::Little
        } else {
            lmx_env::Endian::Big
        });
        assert!(EnvImage::from_dump(other, &dump).is_err(), "{args:?}");
    }
}

/// Writes an fw_env config for a plain file: one line per copy.
fn fw_config(dir: &Path, image: &Path, layout: &EnvLayout) -> PathBuf {
    let mut text = String::new();
    for offset in layout.copy_offsets() {
        text.push_str(&format!(
            "{} {offset:#x} {:#x}\n",
            image.display(),
            layout.size
        ));
    }
    let path = dir.join("fw_env.config");
    std::fs::write(&path, text).unwrap();
    path
}

fn fw_printenv(config: &Path) -> Vec<u8> {
    run(Command::new(tool("fw_printenv")).arg("-c").arg(config))
}

fn fw_get(config: &Path, name: &str) -> String {
    let out = run(Command::new(tool("fw_printenv"))
        .arg("-c")
        .arg(config)
        .arg("-n")
        .arg(name));
    String::from_utf8(out)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

fn fw_setenv(config: &Path, name: &str, value: &str) {
    run(Command::new(tool("fw_setenv"))
        .arg("-c")
        .arg(config)
        .arg(name)
        .arg(value));
}

/// `fw_printenv` prints unescaped `name=value` lines, sorted by name
/// (it imports into U-Boot's hash table first).
fn raw_lines(env: &Environment) -> Vec<String> {
    let mut lines: Vec<String> = env
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    lines.sort();
    lines
}

fn sorted_lines(out: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(out)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

fn sample_env() -> Environment {
    Environment::from_pairs([
        ("bootdelay", "3"),
        ("bootcmd", "run boot_a || run boot_b"),
        (
            "bootargs",
            "console=ttyAMA0,115200 mtdparts=phram0:1M(rootfs)",
        ),
        ("weird", "x=y=z \"q\" ;"),
    ])
    .unwrap()
}

#[test]
fn fw_printenv_reads_what_lmx_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.img");
    let layouts = [
        EnvLayout::single(0x1000, 0x2000),
        EnvLayout::redundant(0x1000, 0x2000, 0x3000, FlagStyle::Counter),
        EnvLayout::redundant(0x4000, 0x1000, 0, FlagStyle::Counter),
    ];
    for layout in layouts {
        let mut dump = vec![0xa5u8; 0x8000];
        let blank = EnvImage::blank(layout).unwrap();
        blank
            .plan_write(&sample_env())
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        std::fs::write(&path, &dump).unwrap();
        let config = fw_config(dir.path(), &path, &layout);
        assert_eq!(
            sorted_lines(&fw_printenv(&config)),
            raw_lines(&sample_env()),
            "{layout}"
        );

        // A second write goes to the other copy; fw_printenv follows it.
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        let mut env = image.environment().clone();
        env.set("bootdelay", "0").unwrap();
        image.plan_write(&env).unwrap().apply(&mut dump).unwrap();
        std::fs::write(&path, &dump).unwrap();
        assert_eq!(fw_get(&config, "bootdelay"), "0", "{layout}");
        assert_eq!(
            sorted_lines(&fw_printenv(&config)),
            raw_lines(&env),
            "{layout}"
        );
    }
}

#[test]
fn lmx_picks_the_copy_fw_setenv_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.bin");
    let layout = EnvLayout::redundant(0, 0x1000, 0x1000, FlagStyle::Counter);
    let mut dump = vec![0xffu8; 0x2000];
    EnvImage::blank(layout)
        .unwrap()
        .plan_write(&sample_env())
        .unwrap()
        .apply(&mut dump)
        .unwrap();
    std::fs::write(&path, &dump).unwrap();
    let config = fw_config(dir.path(), &path, &layout);
    for round in 0..5 {
        let value = format!("value {round}");
        fw_setenv(&config, "counter_test", &value);
        let dump = std::fs::read(&path).unwrap();
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(
            image.environment().get("counter_test"),
            Some(value.as_bytes()),
            "round {round}"
        );
        // fw_setenv alternates copies: copy 2 after the 1st call, ...
        assert_eq!(image.selection().unwrap().copy, (round + 1) % 2);
        assert!(image.warnings().is_empty(), "{:?}", image.warnings());
        // ...and lmx's next write lands where fw_setenv would write.
        let mut env = image.environment().clone();
        env.set("from_lmx", format!("{round}")).unwrap();
        let mut patched = dump.clone();
        let plan = image.plan_write(&env).unwrap();
        assert_eq!(plan.target, round % 2);
        plan.apply(&mut patched).unwrap();
        std::fs::write(&path, &patched).unwrap();
        assert_eq!(fw_get(&config, "from_lmx"), format!("{round}"));
        // Put fw_setenv's image back for the next round.
        std::fs::write(&path, &dump).unwrap();
    }
}

#[test]
fn counter_selection_matches_fw_printenv_for_every_flag_pair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.bin");
    let layout = EnvLayout::redundant(0, 0x400, 0x400, FlagStyle::Counter);
    let pairs = [
        (0u8, 0u8),
        (1, 0),
        (0, 1),
        (255, 0),
        (0, 255),
        (254, 255),
        (255, 254),
        (254, 0),
        (0, 254),
        (7, 7),
        (3, 200),
        (200, 3),
    ];
    for (a, b) in pairs {
        let mut dump = Vec::new();
        for (flag, name) in [(a, "first"), (b, "second")] {
            let env = Environment::from_pairs([("which", name)]).unwrap();
            dump.extend(encode_copy(&layout, &env, flag, 0).unwrap());
        }
        std::fs::write(&path, &dump).unwrap();
        let config = fw_config(dir.path(), &path, &layout);
        let theirs = fw_get(&config, "which");
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        let ours = String::from_utf8(image.environment().get("which").unwrap().to_vec()).unwrap();
        assert_eq!(ours, theirs, "flags ({a}, {b})");
    }
}

#[test]
fn fw_setenv_wraps_the_counter_and_lmx_follows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.bin");
    let layout = EnvLayout::redundant(0, 0x400, 0x400, FlagStyle::Counter);
    let mut dump = Vec::new();
    for (flag, name) in [(254u8, "old"), (255, "current")] {
        let env = Environment::from_pairs([("which", name)]).unwrap();
        dump.extend(encode_copy(&layout, &env, flag, 0).unwrap());
    }
    std::fs::write(&path, &dump).unwrap();
    let config = fw_config(dir.path(), &path, &layout);
    fw_setenv(&config, "which", "wrapped");
    let dump = std::fs::read(&path).unwrap();
    assert_eq!(dump[4], 0, "fw_setenv should have written flag 0 to copy 1");
    let image = EnvImage::from_dump(layout, &dump).unwrap();
    assert_eq!(image.selection().unwrap().copy, 0);
    assert_eq!(image.environment().get("which"), Some(&b"wrapped"[..]));
}

#[test]
fn corrupt_copy_is_skipped_like_fw_printenv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.bin");
    let layout = EnvLayout::redundant(0, 0x400, 0x400, FlagStyle::Counter);
    let mut dump = Vec::new();
    for (flag, name) in [(1u8, "older"), (2, "newer")] {
        let env = Environment::from_pairs([("which", name)]).unwrap();
        dump.extend(encode_copy(&layout, &env, flag, 0).unwrap());
    }
    dump[0x400 + 0x20] ^= 1; // damage the newer copy's data
    std::fs::write(&path, &dump).unwrap();
    let config = fw_config(dir.path(), &path, &layout);
    assert_eq!(fw_get(&config, "which"), "older");
    let image = EnvImage::from_dump(layout, &dump).unwrap();
    assert_eq!(image.environment().get("which"), Some(&b"older"[..]));
    assert_eq!(image.warnings().len(), 1);
}
