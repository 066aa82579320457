//! `lmx serve` (being written).
use clap::Args;

/// Flags of `lmx serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {}

/// Runs `lmx serve`.
pub fn run(_args: ServeArgs) -> miette::Result<()> {
    Err(miette::miette!("not yet implemented"))
}
