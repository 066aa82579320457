//! Every validation rule has a fixture under `tests/fixtures/` that
//! breaks it; each test asserts the rule, the file and field named, and
//! the message a person reads.

use std::path::PathBuf;

use lmx_boards::{BoardError, BoardErrors, Catalog, Checked, Rule};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.toml"))
}

fn check(name: &str) -> Result<Checked, BoardErrors> {
    Catalog::builtin().check_file(&fixture(name))
}

/// Checks fixture `name`, expects it to break `rule` on `field`, and
/// returns that error.
fn broken(name: &str, rule: Rule, field: &str) -> BoardError {
    let errs = match check(name) {
        Ok(_) => panic!("fixture {name} was accepted"),
        Err(e) => e,
    };
    let found = errs
        .errors
        .iter()
        .find(|e| e.rule == rule)
        .unwrap_or_else(|| panic!("{name}: no {rule} error in {:#?}", errs.errors));
    assert_eq!(found.field, field, "{name}: wrong field in {found}");
    let shown = found.to_string();
    assert!(shown.contains(&format!("[{}]", rule.code())), "{shown}");
    if !field.is_empty() {
        assert!(shown.contains(field), "{shown}");
    }
    found.clone()
}

fn assert_file(e: &BoardError, file: &str) {
    assert!(
        e.file.ends_with(&format!("{file}.toml")),
        "expected file {file}.toml, got {}",
        e.file
    );
}

#[test]
fn the_valid_fixture_passes() {
    match check("valid").expect("valid fixture") {
        Checked::Board(r) => {
            assert_eq!(r.board.name, "valid");
            assert_eq!(r.families.len(), 1);
        }
        Checked::Family { .. } => panic!("valid.toml is a board"),
    }
}

#[test]
fn syntax() {
    let e = broken("syntax", Rule::Syntax, "");
    assert_file(&e, "syntax");
    assert!(
        e.message.contains("not valid TOML at line 3"),
        "{}",
        e.message
    );
}

#[test]
fn schema_version() {
    let e = broken("schema-version", Rule::SchemaVersion, "schema");
    assert_file(&e, "schema-version");
    assert!(
        e.message.contains("schema version 2 is not supported"),
        "{}",
        e.message
    );
    assert!(e.help.as_deref().unwrap().contains("schema = 1"));
}

#[test]
fn unknown_field_with_did_you_mean() {
    let e = broken("unknown-field", Rule::UnknownField, "ram.sise");
    assert_file(&e, "unknown-field");
    assert_eq!(e.message, "unknown field `sise`");
    let help = e.help.unwrap();
    assert!(help.starts_with("did you mean `size`?"), "{help}");
    assert!(
        help.contains("known keys here: base, size, uboot"),
        "{help}"
    );
}

#[test]
fn unknown_field_is_blamed_on_the_family_that_has_it() {
    let e = broken(
        "unknown-field-in-family",
        Rule::UnknownField,
        "console.kernel_nmae",
    );
    assert_file(&e, "typo-family");
    assert!(e.help.unwrap().contains("did you mean `kernel_name`?"));
}

#[test]
fn missing_field() {
    let e = broken("missing-field", Rule::MissingField, "console");
    assert_file(&e, "missing-field");
    assert!(
        e.message.contains("required field `console` is missing"),
        "{}",
        e.message
    );
}

#[test]
fn invalid_value_with_did_you_mean() {
    let e = broken("invalid-value", Rule::InvalidValue, "kernel.format");
    assert!(
        e.message.contains("unknown variant `uimage-lzm`"),
        "{}",
        e.message
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `uimage-lzma`?"));
}

#[test]
fn name_mismatch() {
    let e = broken("name-mismatch", Rule::NameMismatch, "name");
    assert!(
        e.message
            .contains("differs from the file name \"name-mismatch.toml\""),
        "{}",
        e.message
    );
}

#[test]
fn extends_unknown() {
    let e = broken("extends-unknown", Rule::ExtendsUnknown, "extends");
    assert!(
        e.message
            .contains("`extends = \"no-such-family\"` names no known family"),
        "{}",
        e.message
    );
}

#[test]
fn extends_cycle() {
    let e = broken("cycle-a", Rule::ExtendsCycle, "extends");
    assert_file(&e, "cycle-b");
    assert!(e.message.contains("forms a cycle"), "{}", e.message);
    assert!(e.message.contains("cycle-a.toml -> "), "{}", e.message);
}

#[test]
fn partition_overlap() {
    let e = broken(
        "partition-overlap",
        Rule::PartitionOverlap,
        "flash.partitions[1].offset",
    );
    assert_file(&e, "partition-overlap");
    assert!(
        e.message
            .contains("partition \"firmware\" (0x30000..0x1000000) overlaps partition \"u-boot\""),
        "{}",
        e.message
    );
}

#[test]
fn partition_past_end() {
    let e = broken(
        "partition-past-end",
        Rule::PartitionPastEnd,
        "flash.partitions[1].size",
    );
    assert!(
        e.message
            .contains("runs past the end of the 0x1000000-byte flash"),
        "{}",
        e.message
    );
}

#[test]
fn partition_alignment() {
    let e = broken(
        "partition-alignment",
        Rule::PartitionAlignment,
        "flash.partitions[1].offset",
    );
    assert!(
        e.message
            .contains("offset 0x48000 is not a multiple of the erase block 0x10000"),
        "{}",
        e.message
    );
}

#[test]
fn partition_duplicate() {
    let e = broken(
        "partition-duplicate",
        Rule::PartitionDuplicate,
        "flash.partitions[1].name",
    );
    assert!(
        e.message.contains("\"u-boot\" is used twice"),
        "{}",
        e.message
    );
}

#[test]
fn erase_block_power_of_two() {
    let e = broken(
        "erase-block-power-of-two",
        Rule::EraseBlockPowerOfTwo,
        "flash.erase_block",
    );
    assert_file(&e, "erase-block-power-of-two");
    assert!(
        e.message.contains("0x18000 is not a power of two"),
        "{}",
        e.message
    );
}

#[test]
fn protected_in_firmware() {
    let e = broken(
        "protected-in-firmware",
        Rule::ProtectedInFirmware,
        "flash.partitions[2].protected",
    );
    assert!(
        e.message.contains("protected partition \"art\" (0xff0000..0x1000000) lies inside the firmware region \"firmware\""),
        "{}",
        e.message
    );
}

#[test]
fn firmware_outside_usable() {
    let e = broken(
        "firmware-outside-usable",
        Rule::FirmwareOutsideUsable,
        "flash.partitions[2].offset",
    );
    // The partitions come from the family, so the family is blamed.
    assert_file(&e, "fixture-base");
    assert!(
        e.message
            .contains("not inside one region U-Boot can address"),
        "{}",
        e.message
    );
}

#[test]
fn env_outside_flash() {
    let e = broken(
        "env-outside-flash",
        Rule::EnvOutsideFlash,
        "flash.env.offset",
    );
    assert!(
        e.message
            .contains("environment at 0xff8000 (+0x10000) lies outside"),
        "{}",
        e.message
    );
}

#[test]
fn address_outside_ram() {
    let e = broken(
        "address-outside-ram",
        Rule::AddressOutsideRam,
        "ram_boot.rootfs",
    );
    assert_file(&e, "address-outside-ram");
    assert!(
        e.message
            .contains("ram_boot.rootfs (physical 0x9000000) is outside RAM 0x0..0x8000000"),
        "{}",
        e.message
    );
}

#[test]
fn address_in_uboot() {
    let e = broken("address-in-uboot", Rule::AddressInUboot, "ram_boot.rootfs");
    assert!(
        e.message
            .contains("inside U-Boot's own region 0x7f00000..0x8000000"),
        "{}",
        e.message
    );
}

#[test]
fn address_collision() {
    let e = broken(
        "address-collision",
        Rule::AddressCollision,
        "ram_boot.rootfs",
    );
    assert!(
        e.message.contains("same address as kernel.load"),
        "{}",
        e.message
    );
}

#[test]
fn address_unmapped() {
    let e = broken("address-unmapped", Rule::AddressUnmapped, "kernel.load");
    assert!(
        e.message
            .contains("0x60000 is outside every address-map window"),
        "{}",
        e.message
    );
    assert!(e.help.unwrap().contains("KSEG0"));
}

#[test]
fn address_wrong_window() {
    let e = broken(
        "address-wrong-window",
        Rule::AddressWrongWindow,
        "kernel.load",
    );
    assert!(
        e.message.contains(
            "0xa0060000 is in window `kseg1`; kernel addresses go through `kseg0`, where the same byte is 0x80060000"
        ),
        "{}",
        e.message
    );
    assert!(e.help.unwrap().contains("kernel.load = 0x80060000"));
}

#[test]
fn address_map_overlap() {
    let e = broken(
        "address-map-overlap",
        Rule::AddressMapOverlap,
        "address_map.windows[1].uboot",
    );
    assert!(
        e.message
            .contains("window `wide` (0x90000000..0xb0000000) overlaps window `kseg0`"),
        "{}",
        e.message
    );
}

#[test]
fn invalid_prompt() {
    let e = broken("invalid-prompt", Rule::InvalidPrompt, "uboot.prompt");
    assert!(
        e.message
            .starts_with("prompt is not a valid regular expression"),
        "{}",
        e.message
    );
}

#[test]
fn command_conflict() {
    let e = broken(
        "command-conflict",
        Rule::CommandConflict,
        "uboot.commands.absent[0]",
    );
    assert_file(&e, "command-conflict");
    assert!(
        e.message
            .contains("`crc32` is listed both present and absent"),
        "{}",
        e.message
    );
}

#[test]
fn command_conflict_with_the_older_flags() {
    let e = broken("command-conflict-flag", Rule::CommandConflict, "uboot.echo");
    assert!(
        e.message
            .contains("uboot.echo = true contradicts uboot.commands, which lists `echo` as absent"),
        "{}",
        e.message
    );
    assert!(e.help.as_deref().unwrap().contains("state it once"));
}

#[test]
fn trap_on_absent() {
    let e = broken(
        "trap-on-absent",
        Rule::TrapOnAbsent,
        "uboot.traps[0].command",
    );
    assert!(
        e.message
            .contains("`sf` is a trap but uboot.commands lists it as absent"),
        "{}",
        e.message
    );
}

#[test]
fn invalid_command_facts() {
    let errs = check("command-invalid").unwrap_err();
    let got: Vec<(String, &str)> = errs
        .errors
        .iter()
        .map(|e| (e.field.clone(), e.rule.code()))
        .collect();
    let want: Vec<(String, &str)> = [
        ("uboot.maxargs", "invalid-value"),
        ("uboot.commands.present[0]", "invalid-value"),
        ("uboot.commands.restricted", "invalid-value"),
        ("uboot.traps[0].args", "invalid-value"),
        ("uboot.traps[0].reason", "invalid-value"),
    ]
    .iter()
    .map(|(f, r)| (f.to_string(), *r))
    .collect();
    assert_eq!(got, want, "{:#?}", errs.errors);
    assert!(errs.errors[0].message.contains("maxargs = 2"));
    assert!(errs.errors[1]
        .message
        .contains("\"crc32 0x0\" is not a command name"));
}

#[test]
fn an_unusable_wrapper_is_refused_with_each_reason() {
    let errs = check("wrapper-invalid").unwrap_err();
    let got: Vec<(&str, &str)> = errs
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.rule.code()))
        .collect();
    assert_eq!(
        got,
        [
            ("uboot.commands.wrapper", "invalid-value"),
            ("uboot.commands.wrapper", "invalid-value"),
            ("uboot.commands.wrapper.command", "invalid-value"),
        ],
        "{:#?}",
        errs.errors
    );
    assert!(errs.errors[0].message.contains("setenv NAME %s"));
    assert!(errs.errors[1].message.contains("quotes_special"));
    assert!(errs.errors[2].message.contains("`atns`"));
}

#[test]
fn a_trap_without_a_reason_is_a_missing_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("families")).unwrap();
    std::fs::copy(
        fixture("families/fixture-base"),
        dir.path().join("families/fixture-base.toml"),
    )
    .unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "schema = 1\nname = \"t\"\nextends = \"fixture-base\"\n[[uboot.traps]]\ncommand = \"cp\"\n",
    )
    .unwrap();
    let errs = Catalog::builtin().check_file(&path).unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{:#?}", errs.errors);
    assert_eq!(errs.errors[0].rule, Rule::MissingField);
    assert_eq!(errs.errors[0].field, "uboot.traps[0].reason");
}

#[test]
fn the_command_facts_of_a_valid_file_are_read() {
    let Checked::Board(r) = check("valid-commands").expect("valid-commands fixture") else {
        panic!("valid-commands.toml is a board")
    };
    let u = &r.board.uboot;
    assert_eq!(u.maxargs, Some(16));
    assert_eq!(u.traps.len(), 2);
    let inv = lmx_boards::Inventory::of(u);
    assert_eq!(inv.availability("echo"), lmx_boards::Availability::Absent);
    assert!(inv.check("run lmxboot", false).is_ok());
    let e = inv.check("run lu", false).unwrap_err();
    assert!(e.to_string().contains("rewrites U-Boot"), "{e}");
    let e = inv
        .check("cp.b 0x80000000 0x9f060000 0x10", false)
        .unwrap_err();
    assert!(e.to_string().contains("always programs flash"), "{e}");
    let e = inv.check("source 0x81000000", false).unwrap_err();
    assert!(e.to_string().contains("no `source` command"), "{e}");
}

#[test]
fn invalid_framing() {
    let e = broken("invalid-framing", Rule::InvalidFraming, "console.framing");
    assert!(e.message.contains("\"8X1\""), "{}", e.message);
}

#[test]
fn virtual_needs_qemu() {
    let e = broken("virtual-needs-qemu", Rule::VirtualNeedsQemu, "qemu");
    assert!(e.message.contains("needs a [qemu] table"), "{}", e.message);
}

#[test]
fn uboot_build_is_a_name_and_firmware_then_its_file() {
    let errs = match check("uboot-build-invalid") {
        Ok(_) => panic!("fixture uboot-build-invalid was accepted"),
        Err(e) => e.errors,
    };
    let build = errs
        .iter()
        .find(|e| e.field == "qemu.uboot_build")
        .unwrap_or_else(|| panic!("{errs:#?}"));
    assert_eq!(build.rule, Rule::InvalidValue);
    assert!(
        build.message.contains("\"../ar750\" is not a build name"),
        "{}",
        build.message
    );
    assert_file(build, "uboot-build-invalid");
    let firmware = errs
        .iter()
        .find(|e| e.field == "qemu.firmware")
        .unwrap_or_else(|| panic!("{errs:#?}"));
    assert_eq!(firmware.rule, Rule::InvalidValue);
    assert!(
        firmware.message.contains("is a path, but qemu.uboot_build"),
        "{}",
        firmware.message
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let errs = check("many-errors").unwrap_err();
    let rules: Vec<Rule> = errs.errors.iter().map(|e| e.rule).collect();
    // Parsing errors are reported first; semantic ones need a parsed board.
    assert_eq!(rules, vec![Rule::UnknownField], "{:#?}", errs.errors);
    let fixed = std::fs::read_to_string(fixture("many-errors"))
        .unwrap()
        .replace("sise = 1", "");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("families")).unwrap();
    std::fs::copy(
        fixture("families/fixture-base"),
        dir.path().join("families/fixture-base.toml"),
    )
    .unwrap();
    let path = dir.path().join("many-errors.toml");
    std::fs::write(&path, fixed).unwrap();
    let errs = Catalog::builtin().check_file(&path).unwrap_err();
    let mut rules: Vec<&str> = errs.errors.iter().map(|e| e.rule.code()).collect();
    rules.sort();
    assert_eq!(
        rules,
        vec![
            "address-outside-ram",
            "erase-block-power-of-two",
            "invalid-framing"
        ],
        "{:#?}",
        errs.errors
    );
}

#[test]
fn several_unknown_fields_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typos.toml");
    let text = std::fs::read_to_string(fixture("families/fixture-base"))
        .unwrap()
        .replace("name = \"fixture-base\"", "name = \"typos\"")
        .replace("kernel_name", "kernel_nam")
        .replace("erase_block", "erase_blok");
    std::fs::write(&path, text).unwrap();
    let errs = Catalog::builtin().check_file(&path).unwrap_err();
    let fields: Vec<&str> = errs.errors.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"console.kernel_nam"), "{fields:?}");
    assert!(fields.contains(&"flash.erase_blok"), "{fields:?}");
    assert!(
        errs.errors.iter().all(|e| e.rule == Rule::UnknownField),
        "{:#?}",
        errs.errors
    );
}

#[test]
fn unreadable_file_and_unknown_board() {
    let errs = check("does-not-exist").unwrap_err();
    assert_eq!(errs.errors[0].rule, Rule::Io);
    let errs = Catalog::builtin().resolve("gl-ar75").unwrap_err();
    assert_eq!(errs.errors[0].rule, Rule::NotFound);
    assert!(errs.errors[0]
        .help
        .as_deref()
        .unwrap()
        .contains("did you mean `gl-ar750`?"));
}

#[test]
fn a_family_checks_alone() {
    match check("families/fixture-base").expect("family") {
        Checked::Family { families, .. } => assert!(families.is_empty()),
        Checked::Board(_) => panic!("a family"),
    }
    let errs = check("families/typo-family").unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{:#?}", errs.errors);
    assert_eq!(errs.errors[0].rule, Rule::UnknownField);
}

#[test]
fn checking_goes_on_past_missing_fields_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("families")).unwrap();
    // A family lacks most facts (fine for a family) and has typos after them.
    let family = dir.path().join("families/f.toml");
    std::fs::write(
        &family,
        "schema = 1\nname = \"f\"\n[cpu]\narch = \"mips\"\n[console]\nkernel_nam = \"x\"\n[flash]\nerase_blok = 3\n",
    )
    .unwrap();
    let errs = Catalog::builtin().check_file(&family).unwrap_err();
    let fields: Vec<&str> = errs.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["console.kernel_nam", "flash.erase_blok"]);

    // A board: a bad enum value, a missing field, a wrong type and
    // missing tables are all reported, each once.
    let board = dir.path().join("b.toml");
    std::fs::write(
        &board,
        "schema = 1\nname = \"b\"\n[cpu]\narch = \"mipz\"\n[ram]\nbase = \"zero\"\n[flash]\ntype = \"nor\"\n",
    )
    .unwrap();
    let errs = Catalog::builtin().check_file(&board).unwrap_err();
    let got: Vec<(String, &str)> = errs
        .errors
        .iter()
        .map(|e| (e.field.clone(), e.rule.code()))
        .collect();
    let want: Vec<(String, &str)> = [
        ("cpu.arch", "invalid-value"),
        ("cpu.endian", "missing-field"),
        ("ram.base", "invalid-value"),
        ("address_map", "missing-field"),
        ("kernel", "missing-field"),
        ("console", "missing-field"),
        ("uboot", "missing-field"),
    ]
    .iter()
    .map(|(f, r)| (f.to_string(), *r))
    .collect();
    assert_eq!(got, want, "{:#?}", errs.errors);
    assert_eq!(
        errs.errors[3].help.as_deref(),
        Some("add `address_map` to this file, or to a family this board extends")
    );
}

#[test]
fn shipped_families_check_alone() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("families");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match Catalog::builtin().check_file(&path) {
            Ok(Checked::Family { .. }) => {}
            other => panic!("{}: {other:#?}", path.display()),
        }
    }
}

#[test]
fn a_bad_interrupt_method_is_one_error_not_a_cascade() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("families")).unwrap();
    std::fs::copy(
        fixture("families/fixture-base"),
        dir.path().join("families/fixture-base.toml"),
    )
    .unwrap();
    for (method, help) in [
        ("menuu", "did you mean `menu`?"),
        ("keyed", "one of: any-key, menu, string"),
    ] {
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            format!("schema = 1\nname = \"t\"\nextends = \"fixture-base\"\n[uboot]\ninterrupt = {{ method = \"{method}\", choice = \"4\" }}\n"),
        )
        .unwrap();
        let errs = Catalog::builtin().check_file(&path).unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{:#?}", errs.errors);
        assert_eq!(errs.errors[0].field, "uboot.interrupt.method");
        assert_eq!(errs.errors[0].help.as_deref(), Some(help));
    }
}
