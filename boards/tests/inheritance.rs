//! `extends` precedence and the lookup order, on temporary directories.

use std::fs;
use std::path::Path;

use lmx_boards::{Catalog, Layer, LayerKind, Rule, Source};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A family with every required fact, as the root of a chain.
const GRAND: &str = r#"
schema = 1
name = "grand"
description = "the grand family"
links = ["https://example.invalid/grand"]

[cpu]
arch = "aarch64"
endian = "little"
soc = "GRAND-SOC"

[[address_map.windows]]
name = "identity"
uboot = 0
phys = 0
size = 0x100000000

[ram]
base = 0x40000000
size = 0x10000000

[kernel]
format = "fit"

[console]
baud = 57600
framing = "8N1"
flow_control = "none"
kernel_name = "ttyS0"

[uboot]
prompt = '^grand> '
cbsize = 256

[flash]
type = "nor"
size = 0x1000000
erase_block = 0x10000

[[flash.partitions]]
name = "a"
offset = 0
size = 0x10000

[[flash.partitions]]
name = "b"
offset = 0x10000
size = 0x10000
"#;

const PARENT: &str = r#"
schema = 1
name = "parent"
extends = "grand"

[console]
baud = 115200

[uboot]
prompt = '^parent> '

[[flash.partitions]]
name = "only"
offset = 0
size = 0x20000
"#;

const CHILD: &str = r#"
schema = 1
name = "child"
extends = "parent"

[ram]
size = 0x20000000

[uboot]
prompt = '^child> '
"#;

#[test]
fn nearer_files_win_tables_merge_arrays_replace() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "families/grand.toml", GRAND);
    write(dir.path(), "families/parent.toml", PARENT);
    write(dir.path(), "child.toml", CHILD);
    let cat = Catalog {
        layers: vec![Layer::from_dir(LayerKind::BoardsDir, dir.path())],
    };
    let r = cat.resolve("child").unwrap();
    let b = &r.board;
    // The child's own value beats both families.
    assert_eq!(b.ram.size, Some(0x2000_0000));
    assert_eq!(b.uboot.prompt, "^child> ");
    // The parent beats the grand family.
    assert_eq!(b.console.baud, 115200);
    // Keys nobody nearer sets come from the grand family, table by table.
    assert_eq!(b.ram.base, 0x4000_0000);
    assert_eq!(b.cpu.soc.as_deref(), Some("GRAND-SOC"));
    assert_eq!(b.uboot.cbsize, Some(256));
    assert_eq!(b.console.kernel_name, "ttyS0");
    // Arrays are replaced whole, not appended.
    let names: Vec<&str> = b.flash.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["only"]);
    // Identity keys belong to each file.
    assert_eq!(b.name, "child");
    assert_eq!(b.description, None);
    assert!(b.links.is_empty());
    assert_eq!(b.extends.as_deref(), Some("parent"));
    // The chain is reported nearest first.
    let fams: Vec<String> = r.families.iter().map(|s| s.to_string()).collect();
    assert!(
        fams[0].ends_with("families/parent.toml") && fams[1].ends_with("families/grand.toml"),
        "{fams:?}"
    );
}

#[test]
fn a_family_beats_a_board_of_the_same_name_and_boards_can_extend_boards() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "families/grand.toml", GRAND);
    // A board called "grand" too, with another prompt: the family wins for `extends`.
    write(
        dir.path(),
        "grand.toml",
        &GRAND.replace("^grand> ", "^board> "),
    );
    write(
        dir.path(),
        "kid.toml",
        "schema = 1\nname = \"kid\"\nextends = \"grand\"\n",
    );
    // A board may extend another board when no family has that name.
    write(
        dir.path(),
        "variant.toml",
        "schema = 1\nname = \"variant\"\nextends = \"kid\"\n[ram]\nsize = 0x8000000\n",
    );
    let cat = Catalog {
        layers: vec![Layer::from_dir(LayerKind::BoardsDir, dir.path())],
    };
    assert_eq!(cat.resolve("kid").unwrap().board.uboot.prompt, "^grand> ");
    let v = cat.resolve("variant").unwrap().board;
    assert_eq!(v.ram.size, Some(0x800_0000));
    assert_eq!(v.uboot.prompt, "^grand> ");
}

#[test]
fn a_cycle_through_two_families_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "families/x.toml",
        "schema = 1\nname = \"x\"\nextends = \"y\"\n",
    );
    write(
        dir.path(),
        "families/y.toml",
        "schema = 1\nname = \"y\"\nextends = \"x\"\n",
    );
    write(
        dir.path(),
        "b.toml",
        "schema = 1\nname = \"b\"\nextends = \"x\"\n",
    );
    let cat = Catalog {
        layers: vec![Layer::from_dir(LayerKind::BoardsDir, dir.path())],
    };
    let e = cat.resolve("b").unwrap_err();
    assert_eq!(e.errors[0].rule, Rule::ExtendsCycle);
    assert!(e.errors[0].file.ends_with("families/y.toml"));
    assert!(
        e.errors[0].message.contains("x.toml -> "),
        "{}",
        e.errors[0].message
    );
}

#[test]
fn lookup_order_and_shadowing() {
    let flag = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    let ar750 = lmx_boards::builtin::FILES
        .iter()
        .find(|f| f.name == "gl-ar750" && !f.family)
        .unwrap()
        .text;
    // ./boards/ shadows the built-in gl-ar750 with a different RAM size.
    write(
        cwd.path(),
        "gl-ar750.toml",
        &ar750.replace("size = 0x8000000  # 128 MiB", "size = 0x4000000"),
    );
    // The user's config dir has one too, which loses to ./boards/.
    write(user.path(), "gl-ar750.toml", ar750);
    // --boards-dir shadows a built-in family: every ath79 board sees it.
    let ath79 = lmx_boards::builtin::FILES
        .iter()
        .find(|f| f.name == "ath79")
        .unwrap()
        .text;
    write(
        flag.path(),
        "families/ath79.toml",
        &ath79.replace("^(ath|ar7240)> ", "^custom> "),
    );
    // And a board only the user has.
    write(
        user.path(),
        "mine.toml",
        "schema = 1\nname = \"mine\"\nextends = \"gl-ar750\"\n",
    );

    let cat = Catalog {
        layers: vec![
            Layer::from_dir(LayerKind::BoardsDir, flag.path()),
            Layer::from_dir(LayerKind::CurrentDir, cwd.path()),
            Layer::from_dir(LayerKind::UserConfig, user.path()),
            Layer::builtin(),
        ],
    };
    let r = cat.resolve("gl-ar750").unwrap();
    assert_eq!(r.source, Source::File(cwd.path().join("gl-ar750.toml")));
    assert_eq!(
        r.shadowed,
        vec![
            Source::File(user.path().join("gl-ar750.toml")),
            Source::BuiltIn("gl-ar750.toml")
        ]
    );
    assert_eq!(r.board.ram.size, Some(0x400_0000));
    assert_eq!(r.board.uboot.prompt, "^custom> ");
    assert_eq!(
        r.families[0],
        Source::File(flag.path().join("families/ath79.toml"))
    );

    let entries = cat.boards();
    let e = entries.iter().find(|e| e.name == "gl-ar750").unwrap();
    assert_eq!(e.shadowed.len(), 2);
    let mine = cat.resolve("mine").unwrap();
    assert_eq!(mine.source, Source::File(user.path().join("mine.toml")));
    assert_eq!(
        mine.board.ram.size,
        Some(0x400_0000),
        "extends the winning gl-ar750"
    );
    // Boards not shadowed still come from the built-in set.
    assert_eq!(
        cat.resolve("qemu-aarch64").unwrap().source,
        Source::BuiltIn("qemu-aarch64.toml")
    );
    assert_eq!(
        Source::BuiltIn("gl-ar750.toml").to_string(),
        "built-in (gl-ar750.toml)"
    );
}

#[test]
fn missing_directories_are_empty_layers_and_cargo_toml_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Cargo.toml", "[package]\nname = \"x\"\n");
    let layer = Layer::from_dir(LayerKind::CurrentDir, dir.path());
    assert!(layer.docs.is_empty());
    let gone = Layer::from_dir(LayerKind::UserConfig, &dir.path().join("nope"));
    assert!(gone.docs.is_empty());
}
