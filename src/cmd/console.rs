//! `lmx console`: an interactive serial console that shares its port.
//!
//! The terminal (keys, screen, log, raw mode undone on every way out,
//! reconnecting when the adapter comes back, the share socket through
//! which `lmx tftpboot` and other consoles attach while this one holds
//! the port) is `lmx_console::terminal`; this module parses the flags,
//! picks the port (asking when there are several) and runs it.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use lmx_console::discover::{self, Choice};
use lmx_console::serial::{FlowControl, PortError};
use lmx_console::term::{self, EnterMap};
use lmx_console::terminal::{self, ConsoleMode, Terminal};
use lmx_console::{Endpoint, SerialConfig, Transport};
use miette::{miette, IntoDiagnostic};

/// Flags of `lmx console`.
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Serial device (/dev/ttyUSB0, /dev/serial/by-id/...), unix:PATH or tcp:HOST:PORT.
    /// Without it, the one known USB adapter is used (or you are asked).
    #[arg(short, long, env = "LMX_PORT", value_name = "PORT")]
    pub port: Option<String>,
    /// Take baud, framing and flow control from this board's [console].
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Look here for board files first.
    #[arg(long, env = "LMX_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// Baud rate (default 115200, or the board's).
    #[arg(short, long)]
    pub baud: Option<u32>,
    /// Data bits, parity, stop bits, e.g. 8N1.
    #[arg(long)]
    pub framing: Option<String>,
    /// Flow control.
    #[arg(long, value_enum)]
    pub flow: Option<Flow>,
    /// Also take a UUCP lock file (/var/lock/LCK..ttyUSB0).
    #[arg(long)]
    pub uucp_lock: bool,
    /// Append board output to this file (ANSI sequences stripped).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Timestamp each line in the log file.
    #[arg(long)]
    pub log_timestamps: bool,
    /// Timestamp each line on screen (toggle with the prefix key, then t).
    #[arg(long)]
    pub timestamps: bool,
    /// Show what you type locally (for targets that do not echo).
    #[arg(long)]
    pub local_echo: bool,
    /// Key that quits.
    #[arg(long, default_value = "ctrl-]", value_name = "KEY")]
    pub exit_key: String,
    /// Key that starts a console command (b BREAK, e echo, t timestamps, l log, q quit).
    #[arg(long, default_value = "ctrl-t", value_name = "KEY")]
    pub prefix_key: String,
    /// What the Enter key sends.
    #[arg(long, value_enum, default_value = "cr")]
    pub enter: Enter,
    /// Show a bare LF from the board as CR LF.
    #[arg(long)]
    pub lf_to_crlf: bool,
    /// Quit when the port goes away instead of waiting for it.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Do not offer the port to other lmx processes.
    #[arg(long)]
    pub no_share: bool,
    /// Attach to a shared console read-only.
    #[arg(long)]
    pub watch: bool,
    /// List serial ports and exit.
    #[arg(long)]
    pub list: bool,
}

/// Flow control names for the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Flow {
    /// None.
    None,
    /// RTS/CTS.
    Rtscts,
    /// XON/XOFF.
    Xonxoff,
}

/// What Enter sends.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Enter {
    /// CR.
    Cr,
    /// LF.
    Lf,
    /// CR LF.
    Crlf,
}

/// Runs `lmx console`.
pub fn run(args: ConsoleArgs) -> miette::Result<()> {
    if args.list {
        let ports = discover::list_ports();
        if ports.is_empty() {
            println!("no serial ports found");
        }
        for p in ports {
            let by_id = p
                .by_id
                .as_ref()
                .map(|b| format!("\n    {}", b.display()))
                .unwrap_or_default();
            println!("{}{}", p.display_name(), by_id);
        }
        return Ok(());
    }
    let cfg = serial_config(&args)?;
    let endpoint = pick_endpoint(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    let result = rt.block_on(console(args, endpoint, cfg));
    term::restore_terminal();
    result
}

fn serial_config(args: &ConsoleArgs) -> miette::Result<SerialConfig> {
    let mut cfg = match &args.board {
        Some(name) => {
            let board = crate::cmd::boards::resolve_board(args.boards_dir.as_deref(), name)?;
            SerialConfig::from_board(&board)?
        }
        None => SerialConfig::default(),
    };
    if let Some(b) = args.baud {
        cfg.baud = b;
    }
    if let Some(f) = &args.framing {
        cfg = cfg.with_framing(f)?;
    }
    if let Some(f) = args.flow {
        cfg.flow_control = match f {
            Flow::None => FlowControl::None,
            Flow::Rtscts => FlowControl::Hardware,
            Flow::Xonxoff => FlowControl::Software,
        };
    }
    cfg.uucp_lock = args.uucp_lock;
    Ok(cfg)
}

fn pick_endpoint(args: &ConsoleArgs) -> miette::Result<Endpoint> {
    if let Some(p) = &args.port {
        return Ok(Endpoint::parse(p));
    }
    let ports = discover::list_ports();
    match discover::choose(&ports) {
        Choice::One(p) => {
            eprintln!("[lmx] using {}", p.display_name());
            Ok(Endpoint::Serial(p.best_path().to_path_buf()))
        }
        Choice::None => Err(PortError::NoChoice("no serial ports found".into()).into()),
        Choice::Several(list) => {
            let names: Vec<String> = list.iter().map(|p| p.display_name()).collect();
            if !std::io::stdin().is_terminal() {
                return Err(PortError::NoChoice(format!(
                    "several serial ports, none of them a known adapter: {}",
                    names.join(", ")
                ))
                .into());
            }
            eprintln!("[lmx] which serial port?");
            for (i, n) in names.iter().enumerate() {
                eprintln!("  {}) {n}", i + 1);
            }
            eprint!("number: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).into_diagnostic()?;
            let i: usize = line
                .trim()
                .parse()
                .ok()
                .filter(|i| (1..=list.len()).contains(i))
                .ok_or_else(|| miette!("not one of 1..{}", list.len()))?;
            Ok(Endpoint::Serial(list[i - 1].best_path().to_path_buf()))
        }
    }
}

/// The terminal side of a console session, as flags: what `lmx console`
/// takes from its command line, and `lmx tftpboot` from the defaults when
/// it stays on the console after the boot.
#[derive(Debug, Clone)]
pub struct TermOptions {
    /// Key that quits.
    pub exit_key: String,
    /// Key that starts a console command.
    pub prefix_key: String,
    /// What Enter sends.
    pub enter: Enter,
    /// Timestamp lines on screen.
    pub timestamps: bool,
    /// Log file.
    pub log: Option<PathBuf>,
    /// Timestamp lines in the log.
    pub log_timestamps: bool,
    /// Show typed bytes locally.
    pub local_echo: bool,
    /// Show a bare LF as CR LF.
    pub lf_to_crlf: bool,
}

impl TermOptions {
    /// `lmx console`'s defaults (Ctrl-] quits, Ctrl-T prefix, Enter sends CR).
    pub fn defaults() -> TermOptions {
        TermOptions {
            exit_key: "ctrl-]".into(),
            prefix_key: "ctrl-t".into(),
            enter: Enter::Cr,
            timestamps: false,
            log: None,
            log_timestamps: false,
            local_echo: false,
            lf_to_crlf: false,
        }
    }

    fn of(args: &ConsoleArgs) -> TermOptions {
        TermOptions {
            exit_key: args.exit_key.clone(),
            prefix_key: args.prefix_key.clone(),
            enter: args.enter,
            timestamps: args.timestamps,
            log: args.log.clone(),
            log_timestamps: args.log_timestamps,
            local_echo: args.local_echo,
            lf_to_crlf: args.lf_to_crlf,
        }
    }

    /// The terminal these flags describe (the log file is opened now).
    fn terminal(&self) -> miette::Result<Terminal> {
        let exit_key = term::parse_key(&self.exit_key)
            .ok_or_else(|| miette!("--exit-key {}: use e.g. ctrl-] or ^]", self.exit_key))?;
        let prefix_key = term::parse_key(&self.prefix_key)
            .ok_or_else(|| miette!("--prefix-key {}: use e.g. ctrl-t", self.prefix_key))?;
        let enter = match self.enter {
            Enter::Cr => EnterMap::Cr,
            Enter::Lf => EnterMap::Lf,
            Enter::Crlf => EnterMap::CrLf,
        };
        Terminal::new(&terminal::TermOptions {
            exit_key,
            prefix_key,
            enter,
            timestamps: self.timestamps,
            log: self.log.clone(),
            log_timestamps: self.log_timestamps,
            local_echo: self.local_echo,
            lf_to_crlf: self.lf_to_crlf,
        })
        .into_diagnostic()
    }
}

/// Stays on an open console (`port`, named `name` in status lines) with
/// `lmx console`'s terminal: raw mode restored on every way out, the same
/// keys, toggles, log and timestamps. No sharing and no reconnect: the
/// session ends when the console closes. `lmx tftpboot` ends with this.
pub async fn attach_terminal(
    port: Box<dyn Transport>,
    name: &str,
    opts: &TermOptions,
) -> miette::Result<()> {
    let mut t = opts.terminal()?;
    t.start().into_diagnostic()?;
    let help = t.help();
    t.status(&format!("{name}; {help}"));
    let r = t.hold(port, name, None, None).await;
    drop(t);
    term::restore_terminal();
    Ok(r?)
}

async fn console(args: ConsoleArgs, endpoint: Endpoint, cfg: SerialConfig) -> miette::Result<()> {
    let mut t = TermOptions::of(&args).terminal()?;
    let mode = ConsoleMode {
        watch: args.watch,
        no_share: args.no_share,
        reconnect: !args.no_reconnect,
    };
    Ok(t.console(&endpoint, &cfg, mode).await?)
}
