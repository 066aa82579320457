//! Running plans on a board.
//!
//! `lmx-builder` and `lmx-flasher` decide *what* to send (a [`BootPlan`],
//! a [`FlashPlan`]); `lmx-console` knows *how* U-Boot's line protocol
//! works. This crate is the small loop between them that the binary used
//! to carry: it executes a plan through a [`UBootShell`], verifies every
//! load and every write, watches the console after the boot command, and
//! turns anything that goes wrong into one [`StepFailure`] diagnostic
//! (what was expected, what was seen, the console's last lines, the state
//! the flash is in, what to try).
//!
//! - [`boot`]: [`BootRunner`] — network settings, loads checked by
//!   `${filesize}` and `crc32`, `lzmadec` unpacks, the boot command, the
//!   kernel banner and the userland marker;
//! - [`flash`]: [`FlashExecutor`] — the command probe, each flash step
//!   with its check, backups, the boot environment, and booting from
//!   flash after `reset`;
//! - [`watch`]: [`BootWatch`], the one sans-I/O matcher of console text
//!   after a boot or reset command, shared by both;
//! - [`env`]: [`LiveEnv`](env::LiveEnv), the environment of a running
//!   U-Boot — `printenv`, `setenv` read back, `saveenv` judged;
//! - [`report`]: the [`Reporter`] trait through which progress and step
//!   lines reach the user (the binary renders them, tests record them);
//! - [`rerun`]: the edit-build-boot loop of `--watch` (changed inputs
//!   noticed, the board reset back to U-Boot);
//! - [`setup`]: [`Session`], one value owning what a run needs — the
//!   TFTP server, the console (a port, `lmx console`'s share socket, or a
//!   virtual board) and the [`UBootShell`] — and shutting it down on drop;
//! - [`virt`]: the virtual boards lmx starts itself (QEMU, the private
//!   network, kept flash, the test bed's default inputs).
//!
//! [`BootPlan`]: lmx_builder::plan::BootPlan
//! [`FlashPlan`]: lmx_flasher::plan::FlashPlan
//! [`UBootShell`]: lmx_console::UBootShell

// A StepFailure is a cold-path value of a few strings; boxing it would
// add an allocation and a deref at every call site for nothing.
#![allow(clippy::result_large_err)]

pub mod boot;
pub mod env;
pub mod failure;
pub mod flash;
pub mod fuzzing;
pub mod power;
pub mod report;
pub mod rerun;
pub mod setup;
pub mod virt;
pub mod watch;

pub use boot::{BootRunner, NetSetup, RunOptions, Timings};
pub use failure::StepFailure;
pub use flash::FlashExecutor;
pub use report::{Recorder, Reporter};
pub use setup::{
    ConsoleChoice, ConsoleChoiceError, ConsoleSpec, Host, Serve, Session, SessionSpec, SetupError,
    Shell,
};
pub use virt::{Flash, Virtual};
pub use watch::BootWatch;
