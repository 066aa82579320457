//! `FlashExecutor::boot_from_flash` against a scripted console (a tokio
//! duplex pipe standing in for the serial line; the real U-Boot runs in
//! the QEMU tier, `tests/flash_mips.rs`): U-Boot's own banner after
//! `reset` is expected, a banner after the kernel started is a reset, and
//! a U-Boot without autoboot gets `boot` once.

use std::time::Duration;

use lmx_boards::Catalog;
use lmx_console::UBootShell;
use lmx_session::{FlashExecutor, Recorder};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const MARKER: &str = "LMX-USERLAND-READY";

/// Reads from the host side until `want` was typed.
async fn expect_typed(board: &mut DuplexStream, want: &str) {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains(want) {
        let n = board.read(&mut buf).await.unwrap();
        assert!(n > 0, "host closed before typing {want:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

fn executor(host: DuplexStream) -> FlashExecutor<DuplexStream, Recorder> {
    let board = Catalog::builtin().resolve("qemu-mips").unwrap().board;
    let shell = UBootShell::for_board(host, &board).unwrap();
    FlashExecutor::new(
        shell,
        std::env::temp_dir(),
        None,
        false,
        Recorder::default(),
    )
}

const BANNER: &str = "resetting ...\r\n\r\nU-Boot 2023.01 (Dec 07 2026)\r\n\r\nBoard: MIPS Malta CoreLV\r\nDRAM:  256 MiB\r\nmalta # ";

#[tokio::test]
async fn a_u_boot_without_autoboot_gets_boot_and_the_marker_line_is_returned() {
    let (host, mut board) = tokio::io::duplex(4096);
    let mut exec = executor(host);
    let script = tokio::spawn(async move {
        expect_typed(&mut board, "reset\r").await;
        board.write_all(b"reset\r\n").await.unwrap();
        board.write_all(BANNER.as_bytes()).await.unwrap();
        expect_typed(&mut board, "boot\r").await;
        board
            .write_all(b"boot\r\n## Booting kernel from Legacy Image at be080000 ...\r\nStarting kernel ...\r\n\r\nLinux version 6.1\r\n")
            .await
            .unwrap();
        board
            .write_all(format!("{MARKER} mips root=/dev/mtdblock0\r\n# ").as_bytes())
            .await
            .unwrap();
        board
    });
    let line = exec
        .boot_from_flash(MARKER, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(line, format!("{MARKER} mips root=/dev/mtdblock0"));
    let said = exec.reporter_mut().lines.join("\n");
    assert!(
        said.contains("==> boot (this U-Boot has no autoboot"),
        "{said}"
    );
    drop(script.await.unwrap());
}

#[tokio::test]
async fn a_reset_after_the_kernel_started_is_a_failure() {
    let (host, mut board) = tokio::io::duplex(4096);
    let mut exec = executor(host);
    let script = tokio::spawn(async move {
        expect_typed(&mut board, "reset\r").await;
        board.write_all(BANNER.as_bytes()).await.unwrap();
        expect_typed(&mut board, "boot\r").await;
        board
            .write_all(b"Starting kernel ...\r\nLinux version 6.1\r\n[ 0.5] oops\r\n")
            .await
            .unwrap();
        board.write_all(BANNER.as_bytes()).await.unwrap();
        board
    });
    let e = exec
        .boot_from_flash(MARKER, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        e.reason.contains("U-Boot 20") || e.reason.contains("resetting"),
        "{e}"
    );
    assert!(
        e.state.0.is_none(),
        "a boot failure has no flash state line"
    );
    drop(script.await.unwrap());
}
