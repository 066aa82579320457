//! Rules a resolved board must satisfy before any command trusts it.
//!
//! Validation runs on the merged [`Board`], so a rule sees the facts a
//! board inherits as well as its own. Each broken rule becomes one
//! [`Problem`] with the dotted path of the field at fault; the resolver
//! then finds which file in the inheritance chain holds that field.
//! Facts that are unknown (`None`) are not guessed at: a rule that
//! needs one is skipped, never satisfied with an invented value.

use crate::error::Rule;
use crate::schema::{AddressError, Board, Region};

/// One broken rule in a resolved board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the field at fault.
    pub field: String,
    /// The rule.
    pub rule: Rule,
    /// What is wrong.
    pub message: String,
    /// What to try.
    pub help: Option<String>,
}

fn problem(field: impl Into<String>, rule: Rule, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        rule,
        message: message.into(),
        help: None,
    }
}

impl Problem {
    fn help(mut self, h: impl Into<String>) -> Self {
        self.help = Some(h.into());
        self
    }
}

/// Checks every rule and returns all problems (empty when the board is valid).
pub fn validate(board: &Board) -> Vec<Problem> {
    let mut out = Vec::new();
    if board.schema != crate::schema::SCHEMA_VERSION {
        out.push(
            problem(
                "schema",
                Rule::SchemaVersion,
                format!(
                    "schema version {} is not supported (this lmx reads version {})",
                    board.schema,
                    crate::schema::SCHEMA_VERSION
                ),
            )
            .help(format!("set `schema = {}`", crate::schema::SCHEMA_VERSION)),
        );
    }
    check_flash(board, &mut out);
    check_address_map(board, &mut out);
    check_addresses(board, &mut out);
    check_console_and_uboot(board, &mut out);
    check_commands(board, &mut out);
    check_virtual(board, &mut out);
    out
}

fn span(r: &Region) -> String {
    format!("{:#x}..{:#x}", r.base, r.end())
}

fn check_flash(board: &Board, out: &mut Vec<Problem>) {
    let flash = &board.flash;
    let erase = flash.erase_block;
    for (field, value) in [
        ("flash.erase_block", flash.erase_block),
        ("flash.uboot_sector", flash.uboot_sector),
    ] {
        if let Some(v) = value {
            if !v.is_power_of_two() {
                out.push(
                    problem(
                        field,
                        Rule::EraseBlockPowerOfTwo,
                        format!("erase block {v:#x} is not a power of two"),
                    )
                    .help("erase blocks are powers of two (0x10000 = 64 KiB, 0x20000 = 128 KiB, 0x40000 = 256 KiB); check /proc/mtd's erasesize"),
                );
            }
        }
    }
    let erase = erase.filter(|e| e.is_power_of_two());

    for (i, p) in flash.partitions.iter().enumerate() {
        let field = format!("flash.partitions[{i}]");
        if flash.partitions[..i].iter().any(|q| q.name == p.name) {
            out.push(problem(
                format!("{field}.name"),
                Rule::PartitionDuplicate,
                format!("partition name \"{}\" is used twice", p.name),
            ));
        }
        if p.size == 0 {
            out.push(problem(
                format!("{field}.size"),
                Rule::InvalidValue,
                format!("partition \"{}\" has size 0", p.name),
            ));
        }
        if let Some(e) = erase {
            for (what, v) in [("offset", p.offset), ("size", p.size)] {
                if v % e != 0 {
                    out.push(
                        problem(
                            format!("{field}.{what}"),
                            Rule::PartitionAlignment,
                            format!(
                                "partition \"{}\" {what} {v:#x} is not a multiple of the erase block {e:#x}",
                                p.name
                            ),
                        )
                        .help("partitions start and end on erase-block boundaries; compare with /proc/mtd"),
                    );
                }
            }
        }
        if let Some(size) = flash.size {
            if p.region().end() > size {
                out.push(
                    problem(
                        format!("{field}.size"),
                        Rule::PartitionPastEnd,
                        format!(
                            "partition \"{}\" ({}) runs past the end of the {size:#x}-byte flash",
                            p.name,
                            span(&p.region())
                        ),
                    )
                    .help("check `flash.size` and the partition's offset and size"),
                );
            }
        }
        for (j, q) in flash.partitions[..i].iter().enumerate() {
            if p.region().overlaps(&q.region()) {
                out.push(problem(
                    format!("{field}.offset"),
                    Rule::PartitionOverlap,
                    format!(
                        "partition \"{}\" ({}) overlaps partition \"{}\" (flash.partitions[{j}], {})",
                        p.name,
                        span(&p.region()),
                        q.name,
                        span(&q.region())
                    ),
                )
                .help("a board file lists disjoint partitions; describe a container (e.g. `firmware`) and its parts in separate boards or drop one"));
            }
        }
    }

    for f in flash.firmware() {
        for (i, p) in flash.partitions.iter().enumerate() {
            if p.protected && p.name != f.name && p.region().overlaps(&f.region()) {
                out.push(
                    problem(
                        format!("flash.partitions[{i}].protected"),
                        Rule::ProtectedInFirmware,
                        format!(
                            "protected partition \"{}\" ({}) lies inside the firmware region \"{}\" ({})",
                            p.name,
                            span(&p.region()),
                            f.name,
                            span(&f.region())
                        ),
                    )
                    .help("flashing writes the whole firmware region; shrink it so protected data stays outside"),
                );
            }
        }
        if f.protected {
            let i = flash
                .partitions
                .iter()
                .position(|p| p.name == f.name)
                .unwrap_or(0);
            out.push(problem(
                format!("flash.partitions[{i}].protected"),
                Rule::ProtectedInFirmware,
                format!("firmware partition \"{}\" is marked protected", f.name),
            ));
        }
        if !flash.usable.is_empty() && !flash.usable.iter().any(|u| u.contains_region(&f.region()))
        {
            let i = flash
                .partitions
                .iter()
                .position(|p| p.name == f.name)
                .unwrap_or(0);
            out.push(
                problem(
                    format!("flash.partitions[{i}].offset"),
                    Rule::FirmwareOutsideUsable,
                    format!(
                        "firmware partition \"{}\" ({}) is not inside one region U-Boot can address (flash.usable)",
                        f.name,
                        span(&f.region())
                    ),
                )
                .help("keep firmware inside one `flash.usable` region"),
            );
        }
    }

    if let (Some(env), Some(size)) = (&flash.env, flash.size) {
        let len = env.size.unwrap_or(1);
        for (what, off) in [
            ("offset", Some(env.offset)),
            ("redundant_offset", env.redundant_offset),
        ] {
            if let Some(off) = off {
                if off.saturating_add(len) > size {
                    out.push(problem(
                        format!("flash.env.{what}"),
                        Rule::EnvOutsideFlash,
                        format!(
                            "environment at {off:#x} (+{len:#x}) lies outside the {size:#x}-byte flash"
                        ),
                    ).help("take the offset from CONFIG_ENV_OFFSET (or CONFIG_ENV_ADDR minus the flash base)"));
                }
            }
        }
    }

    if let Some(w) = &flash.mapped_window {
        if !board.address_map.windows.iter().any(|x| &x.name == w) {
            out.push(problem(
                "flash.mapped_window",
                Rule::AddressUnmapped,
                format!("the address map has no window named `{w}`"),
            ));
        }
    }
    if let Some(base) = flash.mapped_base {
        if board.address_map.to_uboot_addr(base).is_err() {
            out.push(problem(
                "flash.mapped_base",
                Rule::AddressUnmapped,
                format!("flash base {base:#x} (physical) is outside the address map"),
            ));
        }
    }
}

fn check_address_map(board: &Board, out: &mut Vec<Problem>) {
    let windows = &board.address_map.windows;
    if windows.is_empty() {
        out.push(
            problem(
                "address_map.windows",
                Rule::MissingField,
                "the address map has no windows",
            )
            .help("state the map: one identity window on ARM, KSEG0/KSEG1 on MIPS"),
        );
    }
    for (i, w) in windows.iter().enumerate() {
        let r = Region {
            base: w.uboot,
            size: w.size,
        };
        for (j, v) in windows[..i].iter().enumerate() {
            let q = Region {
                base: v.uboot,
                size: v.size,
            };
            if r.overlaps(&q) {
                out.push(problem(
                    format!("address_map.windows[{i}].uboot"),
                    Rule::AddressMapOverlap,
                    format!(
                        "window `{}` ({}) overlaps window `{}` (address_map.windows[{j}], {}) in U-Boot's address space",
                        w.name,
                        span(&r),
                        v.name,
                        span(&q)
                    ),
                ));
            }
        }
    }
}

fn check_addresses(board: &Board, out: &mut Vec<Problem>) {
    let ram = &board.ram;
    let ram_desc = match ram.region() {
        Some(r) => format!("RAM {}", span(&r)),
        None => format!("RAM from {:#x} (size unknown)", ram.base),
    };
    // (field, physical address)
    let mut placed: Vec<(&str, u64)> = Vec::new();
    for (field, addr) in [
        ("kernel.load", board.kernel.load),
        ("kernel.entry", board.kernel.entry),
    ] {
        let Some(addr) = addr else { continue };
        match board.address_map.ram_to_phys(addr) {
            Ok(phys) => placed.push((field, phys)),
            Err(AddressError::WrongWindow {
                window,
                expected,
                instead,
                ..
            }) => out.push(
                problem(
                    field,
                    Rule::AddressWrongWindow,
                    format!(
                        "{addr:#x} is in window `{window}`; kernel addresses go through `{expected}`, where the same byte is {instead:#x}"
                    ),
                )
                .help(format!(
                    "write {field} = {instead:#x} (on MIPS U-Boot runs the kernel from KSEG0, cached)"
                )),
            ),
            Err(AddressError::PhysicalGiven { window, instead, .. }) => out.push(
                problem(
                    field,
                    Rule::AddressUnmapped,
                    format!(
                        "{addr:#x} is outside every address-map window; if it is physical, the `{window}` address is {instead:#x}"
                    ),
                )
                .help(
                    "kernel addresses are U-Boot addresses (KSEG0 on MIPS); check the address map",
                ),
            ),
            Err(_) => out.push(
                problem(
                    field,
                    Rule::AddressUnmapped,
                    format!("{addr:#x} is outside every address-map window"),
                )
                .help(
                    "kernel addresses are U-Boot addresses (KSEG0 on MIPS); check the address map",
                ),
            ),
        }
    }
    if let Some(rootfs) = board.ram_boot.rootfs {
        if board.to_uboot_addr(rootfs).is_err() {
            out.push(
                problem(
                    "ram_boot.rootfs",
                    Rule::AddressUnmapped,
                    format!("physical {rootfs:#x} is outside every address-map window"),
                )
                .help(
                    "ram_boot.rootfs is a physical address (0x00A00000, not 0x80A00000, on MIPS)",
                ),
            );
        }
        placed.push(("ram_boot.rootfs", rootfs));
    }
    for (field, phys) in &placed {
        if !ram.contains(*phys) {
            out.push(
                problem(
                    *field,
                    Rule::AddressOutsideRam,
                    format!("{field} (physical {phys:#x}) is outside {ram_desc}"),
                )
                .help(
                    "load, entry and rootfs addresses must be in RAM; check ram.base and ram.size",
                ),
            );
        } else if let Some(u) = &ram.uboot {
            if u.contains(*phys) {
                out.push(
                    problem(
                        *field,
                        Rule::AddressInUboot,
                        format!(
                            "{field} (physical {phys:#x}) is inside U-Boot's own region {}",
                            span(u)
                        ),
                    )
                    .help("move it below U-Boot's relocation address (bdinfo: relocaddr)"),
                );
            }
        }
    }
    if let Some(&(_, rootfs)) = placed.iter().find(|(f, _)| *f == "ram_boot.rootfs") {
        for (field, phys) in placed.iter().filter(|(f, _)| *f != "ram_boot.rootfs") {
            if *phys == rootfs {
                out.push(
                    problem(
                        "ram_boot.rootfs",
                        Rule::AddressCollision,
                        format!("rootfs (physical {rootfs:#x}) is at the same address as {field}"),
                    )
                    .help("the kernel and the rootfs need separate RAM; put the rootfs well above the kernel"),
                );
            }
        }
    }
    if let Some(u) = &ram.uboot {
        if let Some(r) = ram.region() {
            if !r.contains_region(u) {
                out.push(problem(
                    "ram.uboot",
                    Rule::AddressOutsideRam,
                    format!("U-Boot region {} is outside {ram_desc}", span(u)),
                ));
            }
        }
    }
    if let Some(free) = &board.ram_boot.free {
        let inside = match ram.region() {
            Some(r) => r.contains_region(free),
            None => free.base >= ram.base,
        };
        if !inside {
            out.push(problem(
                "ram_boot.free",
                Rule::AddressOutsideRam,
                format!("free region {} is outside {ram_desc}", span(free)),
            ));
        } else if ram.uboot.is_some_and(|u| u.overlaps(free)) {
            out.push(problem(
                "ram_boot.free",
                Rule::AddressInUboot,
                format!("free region {} overlaps U-Boot's own region", span(free)),
            ));
        }
    }
}

fn check_console_and_uboot(board: &Board, out: &mut Vec<Problem>) {
    if let Err(e) = regex::Regex::new(&board.uboot.prompt) {
        out.push(
            problem(
                "uboot.prompt",
                Rule::InvalidPrompt,
                format!("prompt is not a valid regular expression: {e}"),
            )
            .help("escape regex characters, e.g. `^ath> ` or `^MT7621 # `"),
        );
    }
    let f = board.console.framing.as_bytes();
    let ok = f.len() == 3
        && (b'5'..=b'8').contains(&f[0])
        && b"NEOMS".contains(&f[1])
        && (f[2] == b'1' || f[2] == b'2');
    if !ok {
        out.push(
            problem(
                "console.framing",
                Rule::InvalidFraming,
                format!(
                    "framing \"{}\" is not data bits, parity and stop bits",
                    board.console.framing
                ),
            )
            .help("write it like `8N1` (data bits 5-8, parity N/E/O/M/S, stop bits 1-2)"),
        );
    }
}

/// A command name as a board file may write it: one word of printable
/// ASCII without U-Boot syntax.
fn command_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"'\";&|$#\\".contains(&b))
}

fn check_commands(board: &Board, out: &mut Vec<Problem>) {
    let u = &board.uboot;
    if let Some(m) = u.maxargs {
        if m < crate::shell::MIN_MAXARGS {
            out.push(
                problem(
                    "uboot.maxargs",
                    Rule::InvalidValue,
                    format!(
                        "maxargs = {m} leaves no room for `setenv NAME VALUE` (3 words)"
                    ),
                )
                .help("CONFIG_SYS_MAXARGS counts every word of a command, the command itself included; U-Boot's default is 16"),
            );
        }
    }
    let c = &u.commands;
    for (list, names) in [("present", &c.present), ("absent", &c.absent)] {
        for (i, n) in names.iter().enumerate() {
            if !command_name_ok(n) {
                out.push(
                    problem(
                        format!("uboot.commands.{list}[{i}]"),
                        Rule::InvalidValue,
                        format!("{n:?} is not a command name"),
                    )
                    .help(
                        "list command names as `help` prints them, one word each, e.g. \"crc32\"",
                    ),
                );
            }
        }
    }
    for (i, n) in c.absent.iter().enumerate() {
        if c.present.contains(n) {
            out.push(
                problem(
                    format!("uboot.commands.absent[{i}]"),
                    Rule::CommandConflict,
                    format!("`{n}` is listed both present and absent"),
                )
                .help("keep it in the list the source (the build's `help`, its configuration) supports, or in neither if unknown"),
            );
        }
    }
    for (field, name, flag) in [
        ("uboot.echo", "echo", u.echo),
        ("uboot.lzmadec", "lzmadec", u.lzmadec),
    ] {
        let contradicts = match flag {
            Some(true) => c.absent.iter().any(|n| n == name),
            Some(false) => c.present.iter().any(|n| n == name),
            None => false,
        };
        if contradicts {
            let flag = flag.unwrap_or_default();
            out.push(
                problem(
                    field,
                    Rule::CommandConflict,
                    format!(
                        "{field} = {flag} contradicts uboot.commands, which lists `{name}` as {}",
                        if flag { "absent" } else { "present" }
                    ),
                )
                .help(format!(
                    "state it once: drop {field}, or take `{name}` out of uboot.commands"
                )),
            );
        }
    }
    if c.restricted.as_deref().is_some_and(|r| r.trim().is_empty()) {
        out.push(
            problem(
                "uboot.commands.restricted",
                Rule::InvalidValue,
                "restricted is empty; it says why the prompt refuses commands",
            )
            .help("give the reason and its source, or leave restricted out"),
        );
    }
    if let Some(w) = &c.wrapper {
        check_wrapper(board, w, out);
    }
    let inventory = crate::shell::Inventory::of(u);
    for (i, t) in u.traps.iter().enumerate() {
        let field = format!("uboot.traps[{i}]");
        if !command_name_ok(&t.command) {
            out.push(problem(
                format!("{field}.command"),
                Rule::InvalidValue,
                format!("{:?} is not a command name", t.command),
            ));
        }
        if t.args.as_deref().is_some_and(|a| a.trim().is_empty()) {
            out.push(
                problem(format!("{field}.args"), Rule::InvalidValue, "args is empty")
                    .help("leave args out to trap every use of the command"),
            );
        }
        if t.reason.trim().is_empty() {
            out.push(
                problem(
                    format!("{field}.reason"),
                    Rule::InvalidValue,
                    format!("the trap on `{}` gives no reason", t.command),
                )
                .help("say what the command does on this build and cite the source"),
            );
        }
        if inventory.availability(&t.command) == crate::shell::Availability::Absent {
            out.push(
                problem(
                    format!("{field}.command"),
                    Rule::TrapOnAbsent,
                    format!(
                        "`{}` is a trap but uboot.commands lists it as absent",
                        t.command
                    ),
                )
                .help("a command the build lacks cannot be a trap: drop the trap, or take the command out of `absent`"),
            );
        }
    }
}

/// `[uboot.commands.wrapper]`: a form lmx understands, a command the
/// restricted prompt runs, and a hush prompt (lmx single-quotes the line).
fn check_wrapper(board: &Board, w: &crate::schema::Wrapper, out: &mut Vec<Problem>) {
    let u = &board.uboot;
    let field = "uboot.commands.wrapper";
    if let Err(e) = crate::shell::Wrap::of(w) {
        out.push(
            problem(field, Rule::InvalidValue, e.0)
                .help("describe the command as its source does: `runs = \"setenv NAME %s\"`, `buffer` = the size of the buffer it formats that line into"),
        );
    }
    if u.quotes_special != Some(true) {
        out.push(
            problem(
                field,
                Rule::InvalidValue,
                "lmx passes the line single-quoted, which only hush reads as one word; this board does not state uboot.quotes_special = true",
            )
            .help("state the parser (uboot.quotes_special) when the build has hush, or drop the wrapper"),
        );
    }
    let c = &u.commands;
    if c.restricted.is_some() && !c.present.iter().any(|n| n == &w.command) {
        out.push(
            problem(
                format!("{field}.command"),
                Rule::InvalidValue,
                format!(
                    "`{}` is not among the commands the restricted prompt runs (uboot.commands.present)",
                    w.command
                ),
            )
            .help("list the wrapper in uboot.commands.present"),
        );
    }
    let inventory = crate::shell::Inventory::of(u);
    if inventory.trap(&w.command, true).is_some() {
        out.push(problem(
            format!("{field}.command"),
            Rule::InvalidValue,
            format!(
                "`{}` is a trap on this board; lmx cannot type through it",
                w.command
            ),
        ));
    }
}

fn check_virtual(board: &Board, out: &mut Vec<Problem>) {
    match (board.is_virtual, &board.qemu) {
        (true, None) => out.push(
            problem(
                "qemu",
                Rule::VirtualNeedsQemu,
                "a virtual board needs a [qemu] table saying how to start it",
            )
            .help(
                "add [qemu] with binary, machine, cpu, memory_mib, firmware, firmware_via and nic",
            ),
        ),
        (false, Some(_)) => out.push(
            problem(
                "virtual",
                Rule::VirtualNeedsQemu,
                "[qemu] is only for virtual boards",
            )
            .help("set `virtual = true` or remove [qemu]"),
        ),
        (true, Some(q)) => {
            if let Some(build) = &q.uboot_build {
                let plain = !build.is_empty()
                    && build
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && !build.starts_with('-');
                if !plain {
                    out.push(
                        problem(
                            "qemu.uboot_build",
                            Rule::InvalidValue,
                            format!("qemu.uboot_build = {build:?} is not a build name"),
                        )
                        .help("name a build of testbed/uboot.sh, e.g. `ar750`: letters, digits, `_` and `-`"),
                    );
                }
                if q.firmware.starts_with('/') {
                    out.push(
                        problem(
                            "qemu.firmware",
                            Rule::InvalidValue,
                            format!(
                                "qemu.firmware = {:?} is a path, but qemu.uboot_build = {build:?} says the test bed builds this board's U-Boot",
                                q.firmware
                            ),
                        )
                        .help("set qemu.firmware to the file that build makes (`u-boot.bin`), or drop qemu.uboot_build"),
                    );
                }
            }
            if let Some(size) = board.ram.size {
                if u64::from(q.memory_mib) << 20 != size {
                    out.push(problem(
                        "qemu.memory_mib",
                        Rule::InvalidValue,
                        format!(
                            "qemu.memory_mib = {} MiB disagrees with ram.size = {size:#x}",
                            q.memory_mib
                        ),
                    ));
                }
            }
        }
        (false, None) => {}
    }
}
