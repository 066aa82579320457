//! `lmx-tftpd`: the TFTP server lmx uses to feed U-Boot.
//!
//! The crate has two layers:
//! - a sans-I/O protocol core — [`packet`] (wire format), [`options`]
//!   (negotiation), [`netascii`], [`rto`] (adaptive retransmission timer),
//!   [`busy`] (when to spin for an answer instead of sleeping) and
//!   [`transfer`] (per-transfer state machines) — that takes datagrams
//!   and clock ticks and returns datagrams to send, with no sockets inside;
//! - [`server`], a tokio adapter: sockets, files, the serving policy of
//!   [`policy`] (roots, named files, symlinks, allowlist, uploads), the
//!   [`admission`] control that keeps floods and silent clients from
//!   locking others out or growing memory, and [`event`]s for progress
//!   display.

pub mod admission;
pub mod busy;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod netascii;
pub mod options;
pub mod packet;
pub mod policy;
pub mod rto;
pub mod server;
pub mod transfer;

pub use admission::{Counters, Tally};
pub use event::{Event, RefusalKind, TransferInfo, TransferSummary};
pub use options::{Limits, LimitsError};
pub use policy::{Policy, PolicyError};
pub use server::{Server, ServerConfig, ServerError};
pub use transfer::{TransferConfig, TransferError};
