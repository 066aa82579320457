//! One module per subcommand: flag definitions and the glue that calls
//! into the library crates.

pub mod boards;
pub mod build;
pub mod console;
pub mod env;
pub mod flash;
pub mod image;
pub mod plan_args;
pub mod serve;
pub mod tftpboot;
