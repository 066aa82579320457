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

/// A console that does not fit the board, as `lmx tftpboot` and `lmx
/// flash` word it: with the `--port` flag it is about.
pub(crate) fn console_report(e: lmx_session::ConsoleChoiceError) -> miette::Report {
    use lmx_session::ConsoleChoiceError as E;
    match e {
        E::NoPort { board } => miette::miette!(
            help =
                "e.g. --port /dev/ttyUSB0, --port unix:/tmp/console.sock or --port tcp:host:2000",
            "board {board}: which console? give --port"
        ),
        E::PortOnVirtual {
            port,
            pty_allowed: true,
            ..
        } => miette::miette!(
            "--port {port}: a virtual board's console is `pty` or the default unix socket"
        ),
        E::PortOnVirtual {
            board,
            pty_allowed: false,
            ..
        } => miette::miette!("--port: lmx starts virtual board {board} itself"),
        e @ E::Setup(_) => miette::Report::new(e),
    }
}
