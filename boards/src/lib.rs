//! Board definitions for lmx, as data.
//!
//! Every lmx command needs to know the board it talks to: where RAM is
//! and how U-Boot addresses it, where to load the kernel and the root
//! filesystem, which kernel format its U-Boot boots, how its flash is
//! laid out and which partitions must never be written, and how its
//! U-Boot behaves at the prompt. This crate holds those facts as TOML
//! files, one per board, and turns them into a typed, validated
//! [`Board`]. A new board is a new file, never new code.
//!
//! * [`schema`]: the types (`Board`, `Ram`, `Kernel`, `RamBoot`,
//!   `Console`, `UBoot`, `Flash`, `Network`, `Qemu`) and the
//!   [`AddressMap`] that converts physical addresses to the addresses
//!   U-Boot commands take, refusing any address it does not cover.
//! * [`Catalog`]: the lookup order (`--boards-dir`, `./boards/`,
//!   `~/.config/lmx/boards/`, the built-in set) and resolution of
//!   `extends = "FAMILY"` inheritance.
//! * [`shell`]: how lmx may talk to the board's U-Boot, from `[uboot]`:
//!   the line limit the planners and the console share ([`LineLimit`]),
//!   `CONFIG_SYS_MAXARGS`, the command inventory and the traps
//!   ([`Inventory`]).
//! * Validation: every problem is a [`BoardError`] naming the file, the
//!   field and the [`Rule`], with a help line ("did you mean `size`?").
//!
//! ```
//! let catalog = lmx_boards::Catalog::builtin();
//! let ar750 = catalog.resolve("gl-ar750").unwrap().board;
//! // The rootfs is a physical address; U-Boot reaches it through KSEG0.
//! let rootfs = ar750.ram_boot.rootfs.unwrap();
//! assert_eq!(ar750.to_uboot_addr(rootfs).unwrap(), 0x80A0_0000);
//! assert_eq!(ar750.boot_command(), "bootm");
//! ```

#![warn(missing_docs)]

pub mod builtin;
pub mod catalog;
pub mod error;
pub mod fuzzing;
pub mod number;
pub mod render;
mod resolve;
pub mod schema;
pub mod shell;
pub mod validate;

pub use catalog::{
    user_boards_dir, Catalog, Checked, DocKind, Entry, Layer, LayerKind, Resolved, Source,
};
pub use error::{BoardError, BoardErrors, Rule};
pub use schema::*;
pub use shell::{
    Availability, CommandProblem, Inventory, LineLimit, MarkerMode, Wrap, WrapBudget, WrapCost,
    WrapperError,
};

impl Board {
    /// Parses and validates one self-contained board file (no `extends`)
    /// from TOML text; `file` names it in errors. Boards that extend a
    /// family are resolved through a [`Catalog`] instead.
    pub fn from_toml_str(file: &str, text: &str) -> Result<Board, BoardErrors> {
        let board = resolve::board_from_str(file, text)?;
        let problems = validate::validate(&board);
        if problems.is_empty() {
            return Ok(board);
        }
        Err(BoardErrors {
            errors: problems
                .into_iter()
                .map(|p| BoardError {
                    file: file.to_string(),
                    field: p.field,
                    rule: p.rule,
                    message: p.message,
                    help: p.help,
                })
                .collect(),
        })
    }
}
