//! Staying on the console after the boot: the board's output to the
//! terminal, the keyboard to the board, until Ctrl-] (like telnet's escape).
//!
//! The terminal is put in raw mode so that Ctrl-C, arrows and tab reach
//! the board's shell; it is restored on every way out. Without a terminal
//! on stdin the console is only copied to stdout until it closes.

use std::io::{IsTerminal, Read, Write};

use lmx_console::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The key that leaves the console (Ctrl-]).
pub const ESCAPE: u8 = 0x1d;

/// Restores the terminal's settings when dropped.
struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    fn enter() -> std::io::Result<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a valid termios buffer.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
    }
}

/// Bridges the terminal and the console until Ctrl-] or the console closes.
pub async fn interact<T: Transport + ?Sized>(io: &mut T) -> std::io::Result<()> {
    let tty = std::io::stdin().is_terminal();
    let _raw = if tty {
        eprintln!("lmx: console attached; Ctrl-] leaves (a virtual board stops with lmx)\r");
        Some(RawMode::enter()?)
    } else {
        None
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
    if tty {
        // A plain thread: blocking reads of stdin end with the process.
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut b = [0u8; 256];
            loop {
                match stdin.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(b[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    } else {
        drop(tx);
    }
    let mut buf = vec![0u8; 4096];
    let mut keyboard_open = tty;
    loop {
        tokio::select! {
            r = io.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    eprintln!("\r\nlmx: the console closed\r");
                    return Ok(());
                }
                let mut out = std::io::stdout();
                out.write_all(&buf[..n])?;
                out.flush()?;
            }
            k = rx.recv(), if keyboard_open => match k {
                Some(bytes) => {
                    if let Some(i) = bytes.iter().position(|b| *b == ESCAPE) {
                        io.write_all(&bytes[..i]).await?;
                        io.flush().await?;
                        eprintln!("\r\nlmx: left the console\r");
                        return Ok(());
                    }
                    io.write_all(&bytes).await?;
                    io.flush().await?;
                }
                None => keyboard_open = false,
            },
            _ = tokio::signal::ctrl_c(), if !tty => return Ok(()),
        }
    }
}
