//! The few U-Boot interactions the test bed needs to prove a board works:
//! stop autoboot, run a command and read its output, recognise U-Boot's
//! error lines. Written for Debian's `qemu_arm64`/`qemu_arm` U-Boot
//! 2023.01 (prompt `=> `, hush shell, echo on) and the malta builds of the
//! MIPS twins (prompt `malta # `: the `*_at` functions take the prompt,
//! see [`crate::Arch::uboot_prompt`]). The general driver with pacing,
//! echo verification and exit codes is `lmx-console`'s job.

use std::time::Duration;

use crate::{ConsoleStream, Error, Result};

/// U-Boot's autoboot line on the `virt` builds.
pub const AUTOBOOT: &str = "Hit any key to stop autoboot";
/// The prompt, as it appears at the start of a line.
pub const PROMPT: &str = "\n=> ";
/// The prompt of the big-endian malta build (`CONFIG_SYS_PROMPT` of
/// `malta_defconfig`), at a line start.
pub const MALTA_PROMPT: &str = "\nmalta # ";
/// The prompt of the little-endian malta builds (`maltael_defconfig`,
/// Debian's and the LZMA one alike).
pub const MALTAEL_PROMPT: &str = "\nmaltael # ";

/// Lines in a command's output that mean it failed.
pub const ERROR_MARKERS: &[&str] = &[
    "Unknown command",
    "TFTP error",
    "Retry count exceeded",
    "## Error",
    "Bad Linux",
    "Wrong Image Format",
    "Bad Data CRC",
    "Unimplemented compression",
    "ERROR: ",
    "Resetting CPU",
    "resetting ...",
];

/// Waits for the autoboot countdown (from power-on: up to `timeout`),
/// presses a key and waits for the prompt. Returns the output seen before
/// the countdown (the banner).
pub fn interrupt_autoboot(console: &mut ConsoleStream, timeout: Duration) -> Result<String> {
    interrupt_autoboot_at(console, PROMPT, timeout)
}

/// [`interrupt_autoboot`] for a U-Boot whose prompt is `prompt`. A U-Boot
/// without a boot command (the malta builds) shows no countdown and goes
/// straight to the prompt; that is accepted too.
pub fn interrupt_autoboot_at(
    console: &mut ConsoleStream,
    prompt: &str,
    timeout: Duration,
) -> Result<String> {
    let (i, banner) = console.expect_any(&[AUTOBOOT, prompt], timeout)?;
    if i == 0 {
        console.send(" ")?;
        console.expect(prompt, Duration::from_secs(5))?;
    }
    Ok(banner)
}

/// Runs `command` at the prompt and returns its output (without the echo
/// of the command line and without the next prompt). Fails when the
/// output carries one of [`ERROR_MARKERS`].
pub fn run(console: &mut ConsoleStream, command: &str, timeout: Duration) -> Result<String> {
    run_at(console, PROMPT, command, timeout)
}

/// [`run`] for a U-Boot whose prompt is `prompt`.
pub fn run_at(
    console: &mut ConsoleStream,
    prompt: &str,
    command: &str,
    timeout: Duration,
) -> Result<String> {
    console.send_line(command)?;
    let raw = console.expect(prompt, timeout).map_err(|e| match e {
        Error::Timeout { secs, tail, .. } => Error::Timeout {
            what: format!("the prompt after `{command}`"),
            secs,
            tail,
        },
        other => other,
    })?;
    // The first line is the echo of what was typed.
    let output = match raw.find('\n') {
        Some(i) => raw[i + 1..].to_owned(),
        None => String::new(),
    };
    if let Some(m) = ERROR_MARKERS.iter().find(|m| output.contains(*m)) {
        return Err(Error::UBoot {
            command: command.to_owned(),
            reason: format!("the output contains {m:?}"),
            output,
        });
    }
    Ok(output)
}

/// Reads `Bytes transferred = N` from `tftpboot` output.
pub fn bytes_transferred(output: &str) -> Option<u64> {
    output.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Bytes transferred = ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Reads the checksum from `crc32 ADDR LEN` output
/// (`crc32 for 44000000 ... 440cffff ==> 1a2b3c4d`).
pub fn crc32_result(output: &str) -> Option<u32> {
    output.lines().find_map(|l| {
        let (_, hex) = l.split_once("==> ")?;
        u32::from_str_radix(hex.trim(), 16).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tftp_and_crc_output() {
        let t = "Using virtio-net#31 device\r\nTFTP from server 192.168.77.1; our IP address is 192.168.77.2\r\nLoading: #####\r\n\t 5 MiB/s\r\ndone\r\nBytes transferred = 851968 (d0000 hex)\r\n";
        assert_eq!(bytes_transferred(t), Some(851_968));
        assert_eq!(
            crc32_result("crc32 for 44000000 ... 440cffff ==> 9a9dc62e\r\n"),
            Some(0x9a9d_c62e)
        );
        assert_eq!(crc32_result("nothing"), None);
    }
}
