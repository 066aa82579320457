//! `lmx-console`: everything lmx does through a board's serial console.
//!
//! Router bring-up happens over a 3.3 V UART at 115200 baud without flow
//! control, where pasted lines lose characters and a board may reset
//! mid-command. This crate makes that line dependable:
//!
//! * [`UBootShell`] drives U-Boot: stops autoboot the way the board's
//!   dialect says, finds the prompt, types each command in chunks whose
//!   echo is checked (a garbled line is cancelled with Ctrl-C and typed
//!   again, never run), and returns the output with the exit status.
//!   Its decisions live in the sans-I/O [`ShellMachine`], tested with
//!   recorded transcripts; the shell is a thin tokio executor.
//! * [`Transport`] is the byte pipe: [`SerialTransport`] (exclusive,
//!   configured through `serialport`), unix sockets (QEMU) and TCP
//!   (ser2net); [`discover`] finds USB adapters.
//! * [`share`] lets other lmx processes watch or drive a port that one
//!   `lmx console` holds; [`term`] has the key, mapping and log rules of
//!   that interactive console, and [`terminal`] runs them: the keyboard
//!   and screen joined to a held port or to another process's share.
//! * [`sim`] is a UART simulator (baud-rate limit, small receive FIFO
//!   that overflows, noise) used to prove the shell against a real
//!   U-Boot at realistic line conditions.
//!
//! ```no_run
//! # async fn demo(board: &lmx_boards::Board) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use lmx_console::{SerialConfig, SerialTransport, UBootShell};
//!
//! let port = SerialTransport::open("/dev/ttyUSB0".as_ref(), &SerialConfig::from_board(board)?)?;
//! let mut shell = UBootShell::for_board(port, board)?;
//! shell.attach(Duration::from_secs(30)).await?;
//! shell.setenv("serverip", "192.168.8.111").await?;
//! let crc = shell.run("crc32 0x44000000 0x1000", Duration::from_secs(5)).await?;
//! println!("{} (status {:?})", crc.text, crc.status);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod dialect;
pub mod discover;
pub mod error;
pub mod fuzzing;
pub mod machine;
pub mod printenv;
pub mod quote;
pub mod rfc2217;
pub mod serial;
pub mod share;
pub mod shell;
pub mod sim;
pub mod term;
pub mod terminal;
pub mod transport;

pub use dialect::{Dialect, InterruptKey, MarkerMode};
pub use error::{Refusal, ShellError, Tail};
pub use machine::{CommandOptions, CommandOutput, Outcome, Pacing, SendStats, ShellMachine};
pub use serial::{wait_for_port, PortError, SerialConfig, SerialTransport};
pub use shell::{Traffic, UBootShell};
pub use transport::{Endpoint, Transport};
