//! Reading what U-Boot's `printenv` and `saveenv` print (sans-I/O).
//!
//! `printenv NAME` writes `NAME=value` with the value raw (a newline in
//! it continues on the next line). `printenv` alone writes every variable
//! that way, then an empty line and `Environment size: USED/TOTAL bytes`;
//! mainline sorts by name and escapes the listing as its text format does
//! (a newline in a value as `\` at the end of the line, a backslash as
//! `\\`), old builds keep the stored order and print values raw. The text
//! alone cannot say which, so [`UBootShell::printenv_all`] reads every
//! value holding a backslash or newline again with `printenv NAME`.
//!
//! [`UBootShell::printenv_all`]: crate::UBootShell::printenv_all
//! `printenv NAME` of a missing variable prints `## Error: "NAME" not
//! defined` and sets `$?` to 1.
//!
//! `saveenv` reports in words only: mainline prints `Saving Environment
//! to Flash... ` then the driver's progress and `OK` or `Failed (N)`; old
//! builds print the driver's progress (`Erasing Flash...`, `Writing to
//! Flash... done`) and no verdict. [`judge_saveenv`] reads both.

/// Variables as `printenv` listed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// `(name, value)` in the order printed.
    pub vars: Vec<(String, String)>,
    /// `Environment size: USED/TOTAL bytes`, when printed.
    pub size: Option<(u64, u64)>,
    /// Lines before the first variable that are not `name=value` (warnings).
    pub other: Vec<String>,
    /// Indices into `vars` of entries whose name sorts below the one
    /// before. Mainline prints sorted, so such an entry is most likely a
    /// line of the previous value that looks like `name=value`; ask
    /// U-Boot (`printenv NAME`) and [`merge_into_previous`] if so.
    ///
    /// [`merge_into_previous`]: Listing::merge_into_previous
    pub out_of_order: Vec<usize>,
}

impl Listing {
    /// The value of `name`, if listed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Turns entry `i` back into a line of entry `i - 1`'s value.
    pub fn merge_into_previous(&mut self, i: usize) {
        if i == 0 || i >= self.vars.len() {
            return;
        }
        let (name, value) = self.vars.remove(i);
        let prev = &mut self.vars[i - 1].1;
        prev.push('\n');
        prev.push_str(&name);
        prev.push('=');
        prev.push_str(&value);
        self.out_of_order.retain(|&j| j != i);
        for j in &mut self.out_of_order {
            if *j > i {
                *j -= 1;
            }
        }
    }
}

/// Whether `name` could be the name part of a `printenv` line: not
/// empty, printable ASCII, no blank and no `=`.
fn plausible_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
}

/// Parses `Environment size: 1234/262140 bytes`.
fn size_line(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("Environment size:")?;
    let rest = rest.trim().strip_suffix("bytes")?.trim();
    let (used, total) = rest.split_once('/')?;
    Some((used.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// Parses `printenv` output (the command's output lines, without echo or
/// prompt). A line that does not start with a plausible `name=` continues
/// the previous value (U-Boot prints embedded newlines raw). A
/// continuation line that itself looks like `name=value` cannot be told
/// apart from a new variable from the text alone: such entries are listed
/// in [`Listing::out_of_order`] when they break the sorted order, for the
/// caller to check with `printenv NAME`.
pub fn parse_listing(text: &str) -> Listing {
    let mut listing = Listing::default();
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // The trailer: an empty line, then the size line (whole listings only).
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    if end > 0 {
        if let Some(size) = size_line(lines[end - 1]) {
            listing.size = Some(size);
            end -= 1;
            if end > 0 && lines[end - 1].is_empty() {
                end -= 1;
            }
        }
    }
    for line in &lines[..end] {
        match line.split_once('=') {
            Some((name, value)) if plausible_name(name) => {
                // U-Boot sorts with strcmp: compare bytes.
                if let Some((prev, _)) = listing.vars.last() {
                    if name.as_bytes() < prev.as_bytes() {
                        listing.out_of_order.push(listing.vars.len());
                    }
                }
                listing.vars.push((name.to_string(), value.to_string()));
            }
            _ => match listing.vars.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line);
                }
                None if line.trim().is_empty() => {}
                None => listing.other.push(line.to_string()),
            },
        }
    }
    listing
}

/// What `printenv NAME` said about one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Set, with this value.
    Set(String),
    /// Not set (`## Error: "NAME" not defined`, or `$?` 1 and nothing printed).
    NotSet,
    /// Something else was printed.
    Unexpected,
}

/// Reads the output and status of `printenv NAME`. It prints only that
/// variable, so every line from the one starting `NAME=` on belongs to
/// the value (lines before it, e.g. a warning, are skipped).
pub fn parse_lookup(name: &str, text: &str, status: Option<i32>) -> Lookup {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let prefix = format!("{name}=");
    if let Some(first) = lines.iter().position(|l| l.starts_with(&prefix)) {
        let mut value = lines[first][prefix.len()..].to_string();
        for line in &lines[first + 1..] {
            value.push('\n');
            value.push_str(line);
        }
        return Lookup::Set(value);
    }
    if text.contains("not defined") || (status.is_some_and(|s| s != 0) && text.trim().is_empty()) {
        return Lookup::NotSet;
    }
    Lookup::Unexpected
}

/// A value as mainline's `printenv` listing shows it, unescaped: the
/// listing (`hexport_r` with `\n` as separator) writes a backslash as
/// `\\` and a newline in a value as `\` at the end of the line.
pub fn unescape_listing(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) => out.push(n),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What reading a variable back after a `setenv` showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// The variable holds exactly the value that was set.
    Same,
    /// It holds something else: a simple parser that cut the line at
    /// `CONFIG_SYS_MAXARGS` words, a line cut at CBSIZE, or quoting that
    /// changed the value.
    Different(String),
    /// It is not set at all: the `setenv` did not run.
    Missing,
    /// `printenv NAME` printed something that is not its answer.
    Unreadable,
}

/// Compares the output of `printenv NAME` with the value a `setenv` just
/// stored. This is how a `setenv` is judged on builds without `$?`, where
/// its own output may be empty even when it stored nothing (hush prints
/// only `Usage:`) or a truncated value (`** Too many args`).
pub fn judge_readback(name: &str, expected: &str, text: &str, status: Option<i32>) -> ReadBack {
    match parse_lookup(name, text, status) {
        Lookup::Set(v) if v == expected => ReadBack::Same,
        Lookup::Set(v) => ReadBack::Different(v),
        Lookup::NotSet => ReadBack::Missing,
        Lookup::Unexpected => ReadBack::Unreadable,
    }
}

/// U-Boot's verdict on a `saveenv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveVerdict {
    /// Saved: `OK` (mainline) or the driver's `done` with no error.
    Saved,
    /// Failed; the line that says so.
    Failed(String),
    /// Neither success nor failure text: cannot tell.
    Unclear,
}

/// Texts in `saveenv` output that mean the environment was not saved.
/// Matched case-sensitively, against whole output lines.
pub const SAVEENV_FAILURE_TEXTS: &[&str] = &[
    "Failed",
    "FAILED",
    "failed",
    "Error",
    "ERROR",
    "error",
    "timeout",
    "Timeout",
    "not saved",
    "Cannot",
    "can't",
    "Unknown command",
    "not possible",
    "Read-only",
    "read-only",
];

/// Judges `saveenv` from its output and `$?` (when the build has one).
/// A failure text or a non-zero status fails; `OK` (mainline's last
/// word) or a driver's `done` without failure text passes; anything else
/// is [`SaveVerdict::Unclear`].
pub fn judge_saveenv(text: &str, status: Option<i32>) -> SaveVerdict {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    if let Some(bad) = lines().find(|l| SAVEENV_FAILURE_TEXTS.iter().any(|t| l.contains(t))) {
        return SaveVerdict::Failed(bad.to_string());
    }
    if let Some(s) = status.filter(|s| *s != 0) {
        return SaveVerdict::Failed(format!("saveenv exited with status {s}"));
    }
    let ok = lines().any(|l| {
        l == "OK"
            || l.ends_with(" OK")
            || l.ends_with("...OK")
            || l.ends_with("done")
            || l.ends_with("done.")
    });
    if ok {
        SaveVerdict::Saved
    } else {
        SaveVerdict::Unclear
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printenv` of the test bed's U-Boot 2023.01, shortened.
    const LISTING: &str = "arch=arm\n\
        baudrate=115200\n\
        boot_targets=qfw usb0 scsi0 virtio0 nvme0 dhcp \n\
        bootcmd=run distro_bootcmd\n\
        bootdelay=2\n\
        lmxtest=a b;c$d\n\
        \n\
        Environment size: 3390/262140 bytes";

    #[test]
    fn whole_listing_with_trailer() {
        let l = parse_listing(LISTING);
        assert_eq!(l.size, Some((3390, 262140)));
        assert_eq!(l.vars.len(), 6);
        assert_eq!(
            l.get("boot_targets"),
            Some("qfw usb0 scsi0 virtio0 nvme0 dhcp ")
        );
        assert_eq!(l.get("lmxtest"), Some("a b;c$d"));
        assert_eq!(l.get("bootcmd"), Some("run distro_bootcmd"));
        assert!(l.other.is_empty());
    }

    #[test]
    fn values_keep_equals_signs_and_newlines() {
        let l = parse_listing("bootargs=console=ttyS0 root=/dev/mtdblock2\r\nscript=echo one\r\n  echo two\r\nx=1\r\n");
        assert_eq!(l.get("bootargs"), Some("console=ttyS0 root=/dev/mtdblock2"));
        assert_eq!(l.get("script"), Some("echo one\n  echo two"));
        assert_eq!(l.get("x"), Some("1"));
        assert_eq!(l.size, None);
    }

    #[test]
    fn continuation_lines_that_look_like_variables_are_flagged() {
        // `lmxmulti` holds "line one\nline=two"; `line` sorts below it.
        let mut l = parse_listing("bootdelay=1\nlmxmulti=line one\nline=two\nlmxoff=x\n");
        assert_eq!(l.out_of_order, [2]);
        l.merge_into_previous(2);
        assert_eq!(l.get("lmxmulti"), Some("line one\nline=two"));
        assert_eq!(l.get("line"), None);
        assert_eq!(l.vars.len(), 3);
        assert!(l.out_of_order.is_empty());
        // Sorted listings flag nothing.
        assert!(parse_listing(LISTING).out_of_order.is_empty());
    }

    #[test]
    fn warnings_before_the_first_variable_are_kept_apart() {
        let l = parse_listing("*** Warning - bad CRC, using default environment\n\nbootdelay=1\n");
        assert_eq!(
            l.other,
            ["*** Warning - bad CRC, using default environment"]
        );
        assert_eq!(l.vars, [("bootdelay".to_string(), "1".to_string())]);
    }

    #[test]
    fn lookups() {
        assert_eq!(
            parse_lookup("ipaddr", "ipaddr=192.168.1.1", Some(0)),
            Lookup::Set("192.168.1.1".into())
        );
        assert_eq!(
            parse_lookup("nope", "## Error: \"nope\" not defined", Some(1)),
            Lookup::NotSet
        );
        // Old builds: no `$?`, same text.
        assert_eq!(
            parse_lookup("nope", "## Error: \"nope\" not defined", None),
            Lookup::NotSet
        );
        assert_eq!(parse_lookup("x", "", Some(1)), Lookup::NotSet);
        assert_eq!(parse_lookup("x", "y=1", Some(0)), Lookup::Unexpected);
        assert_eq!(parse_lookup("x", "x=", Some(0)), Lookup::Set(String::new()));
        // Every line belongs to the one variable printed.
        assert_eq!(
            parse_lookup("m", "m=line one\r\nline=two", Some(0)),
            Lookup::Set("line one\nline=two".into())
        );
        assert_eq!(parse_lookup("x", "xy=1", Some(0)), Lookup::Unexpected);
        assert_eq!(
            parse_lookup("filesize", "warning: something\nfilesize=c9000", Some(0)),
            Lookup::Set("c9000".into())
        );
    }

    #[test]
    fn saveenv_verdicts() {
        // Mainline 2023.01 on CFI flash (the test bed).
        let mainline = "Saving Environment to Flash... Un-Protected 2 sectors\n\
            Erasing Flash...\n\
            . done\n\
            Erased 2 sectors\n\
            Writing to Flash... 9....8....7....6....5....4....3....2....1....done\n\
            Protected 2 sectors\n\
            OK";
        assert_eq!(judge_saveenv(mainline, Some(0)), SaveVerdict::Saved);
        // Atheros 1.1.4: no verdict, no `$?`, the driver's `done`.
        let old = "Saving Environment to Flash...\n\
            Protect off 9F040000 ... 9F04FFFF\n\
            Un-Protecting sectors 4..4 in bank 1\n\
            Un-Protected 1 sectors\n\
            Erasing Flash...Erasing flash... \n\
            Writing to Flash... write addr: 9f040000\n\
            done\n\
            Protecting sectors 4..4 in bank 1\n\
            Protected 1 sectors";
        assert_eq!(judge_saveenv(old, None), SaveVerdict::Saved);
        assert_eq!(
            judge_saveenv(
                "Saving Environment to Flash... Flash buffer write timeout at address 4000000 data ffffffff\nFailed (1)",
                Some(1)
            ),
            SaveVerdict::Failed(
                "Saving Environment to Flash... Flash buffer write timeout at address 4000000 data ffffffff".into()
            )
        );
        assert_eq!(
            judge_saveenv("Saving Environment to nowhere... ", Some(1)),
            SaveVerdict::Failed("saveenv exited with status 1".into())
        );
        assert_eq!(
            judge_saveenv("Saving Environment to MMC... ", None),
            SaveVerdict::Unclear
        );
    }
}
