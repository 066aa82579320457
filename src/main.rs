//! `lmx`: the command-line entry point. It parses flags and wires the
//! library crates together; no protocol or format logic lives here.

mod boot;
mod cmd;

use clap::{Parser, Subcommand};

/// Bring up embedded Linux on routers from the host.
#[derive(Parser, Debug)]
#[command(name = "lmx", version, about, long_about = None)]
struct Cli {
    /// More output: -v logs decisions, -vv logs every packet-level step.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve files over TFTP (standalone; `lmx tftpboot` embeds the same server).
    Serve(cmd::serve::ServeArgs),
    /// List, show and check board definitions (boards/*.toml).
    Boards(cmd::boards::BoardsArgs),
    /// Inspect boot images: uImage, FIT, device tree (CRCs and hashes checked).
    Image(cmd::image::ImageArgs),
    /// Read and edit U-Boot environments in flash dumps and env files.
    Env(cmd::env::EnvArgs),
    /// Boot a kernel and rootfs from RAM over TFTP through U-Boot (nothing written to flash).
    Tftpboot(cmd::tftpboot::TftpbootArgs),
    /// Interactive serial console: raw terminal, log, reconnect, shared with other lmx processes.
    Console(cmd::console::ConsoleArgs),
    /// Build what a board boots from RAM: kernel image, patched DTB, rootfs, boot plan, manifest.
    Build(cmd::build::BuildArgs),
    /// Write a firmware into the board's flash from U-Boot: planned from the board file, refused when unsafe, verified by CRC32.
    Flash(cmd::flash::FlashArgs),
}

fn main() -> miette::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Boards(args) => cmd::boards::run(args),
        Command::Image(args) => cmd::image::run(args),
        Command::Env(args) => cmd::env::run(args),
        Command::Console(args) => cmd::console::run(args),
        Command::Tftpboot(args) => cmd::tftpboot::run(args),
        Command::Build(args) => cmd::build::run(args),
        Command::Flash(args) => cmd::flash::run(args),
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,lmx=debug,lmx_tftpd=debug,lmx_console=debug,lmx_builder=debug,lmx_testbed=debug",
        _ => "debug,lmx=trace,lmx_tftpd=trace,lmx_console=trace",
    };
    let filter = EnvFilter::try_from_env("LMX_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 1)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
