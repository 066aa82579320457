//! `lmx tftpboot`'s executor: the glue between a boot plan, the embedded
//! TFTP server and the U-Boot driver.
//!
//! - [`report`]: the terminal reporter the session library talks to (step
//!   lines, progress bars, the console during the boot); the step loops
//!   themselves are in `lmx-session`.
//!
//! No protocol or format logic lives here: U-Boot's line discipline is in
//! `lmx-console`, TFTP in `lmx-tftpd`, addresses and commands in
//! `lmx-builder`, the session (TFTP server, port or virtual board, shell)
//! in `lmx-session`.

pub mod report;
