//! Lossy links into the real U-Boot: nftables rules inside the test's own
//! network namespace drop a share of the packets on the tap, and 8 MiB
//! loads must still arrive intact (U-Boot's `crc32` of the loaded region
//! equals the file's), lock-step and with windows.
//!
//! The windowed cases also guard lmx-tftpd's receive budget: this U-Boot's
//! virtio-net (2023.01 on QEMU) stops receiving for good when a frame finds
//! its 32-frame receive ring full, which overlapping recovery bursts used
//! to cause (see tftpd/README.md, "Receive budget"). The rate of recovery
//! is a benchmark matter; here only correctness is asserted. One VM at a
//! time.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn rules(to_board_pct: u32, from_board_pct: u32) -> String {
    let mut s = String::from(
        "nft add table inet lmxloss && \
         nft add chain inet lmxloss out '{ type filter hook output priority 0; }' && \
         nft add chain inet lmxloss in '{ type filter hook input priority 0; }'",
    );
    if to_board_pct > 0 {
        s.push_str(&format!(
            " && nft add rule inet lmxloss out oifname tap0 numgen random mod 100 '<' {to_board_pct} drop"
        ));
    }
    if from_board_pct > 0 {
        s.push_str(&format!(
            " && nft add rule inet lmxloss in iifname tap0 numgen random mod 100 '<' {from_board_pct} drop"
        ));
    }
    s
}

fn need_tools() {
    for (tool, hint) in [
        ("qemu-system-aarch64", "scripts/deps.sh virtual"),
        ("nft", "scripts/deps.sh virtual (Debian package nftables)"),
    ] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "{tool} is missing: run {hint}");
    }
}

fn load(dir: &Path, file: &str, netns: &str, window: Option<u16>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lmx-testbed-run"));
    cmd.args(["--arch", "aarch64", "--serve"])
        .arg(dir)
        .args(["--load", &format!("0x44000000:{file}")])
        .args(["--netns-exec", netns])
        .args(["--timeout", "240", "--quiet"]);
    if let Some(w) = window {
        cmd.args(["--cmd", &format!("setenv tftpwindowsize {w}")]);
    }
    let out = cmd.output().expect("run lmx-testbed-run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn loads_survive_one_and_five_percent_loss() {
    need_tools();
    let dir = tempfile::tempdir().unwrap();
    let mut x = 0x9e3779b97f4a7c15u64;
    let data: Vec<u8> = (0..8 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(dir.path().join("blob"), &data).unwrap();
    let cases = [
        ("1% toward the board, lock-step", rules(1, 0), None),
        ("1% each way, lock-step", rules(1, 1), None),
        ("5% each way, lock-step", rules(5, 5), None),
        ("1% each way, window 16", rules(1, 1), Some(16)),
        ("5% each way, window 16", rules(5, 5), Some(16)),
        ("1% each way, window 32", rules(1, 1), Some(32)),
    ];
    for (name, netns, window) in cases {
        let t = Instant::now();
        let (ok, text) = load(dir.path(), "blob", &netns, window);
        assert!(ok, "{name}: load failed or CRC mismatch:\n{text}");
        let summary: Vec<&str> = text.lines().filter(|l| l.contains("sent blob")).collect();
        eprintln!(
            "{name}: {:.1} s; {}",
            t.elapsed().as_secs_f64(),
            summary.join(" | ")
        );
        assert!(
            summary.iter().any(|l| !l.contains(" 0 retransmits")),
            "{name}: no retransmission happened, so no loss was applied:\n{text}"
        );
    }
}
