//! `lmx console`: an interactive serial console that shares its port.
//!
//! The rules (keys, mapping, logs, sharing protocol, transports) live in
//! `lmx-console`; this module wires them to the terminal: raw mode that
//! is undone on every way out, a reader thread for the keyboard, status
//! lines marked `[lmx]`, reconnecting when the adapter comes back, and
//! the share socket through which `lmx tftpboot` and other consoles
//! attach while this one holds the port.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use lmx_console::discover::{self, Choice};
use lmx_console::serial::{FlowControl, PortError};
use lmx_console::share::{self, Role, ShareError, ShareServer};
use lmx_console::term::{self, ConsoleLog, EnterMap, KeyAction, Keys, OutputMap, RawMode};
use lmx_console::{Endpoint, SerialConfig, Transport};
use miette::{miette, IntoDiagnostic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

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

/// The screen side: board output, status lines, toggles, log.
struct Screen {
    out: std::io::Stdout,
    color: bool,
    stamps: Option<term::Timestamper>,
    map: OutputMap,
    prev: u8,
    log: Option<ConsoleLog>,
    log_path: Option<PathBuf>,
    log_timestamps: bool,
    local_echo: bool,
}

impl Screen {
    fn board(&mut self, bytes: &[u8]) {
        let mapped = term::map_output(self.map, &mut self.prev, bytes);
        let shown = match &mut self.stamps {
            Some(t) => t.stamp(std::time::SystemTime::now(), &mapped),
            None => mapped,
        };
        let _ = self.out.write_all(&shown);
        let _ = self.out.flush();
        if let Some(log) = &mut self.log {
            let _ = log.write(bytes);
        }
    }

    fn status(&mut self, text: &str) {
        let line = if self.color {
            format!("\r\n\x1b[1;36m[lmx] {text}\x1b[0m\r\n")
        } else {
            format!("\r\n[lmx] {text}\r\n")
        };
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
        if let Some(log) = &mut self.log {
            let _ = log.note(text);
        }
    }

    fn toggle_log(&mut self) -> String {
        if self.log.take().is_some() {
            return "logging off".into();
        }
        let path = self
            .log_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("lmx-console.log"));
        match ConsoleLog::open(&path, self.log_timestamps) {
            Ok(l) => {
                self.log = Some(l);
                self.log_path = Some(path.clone());
                format!("logging to {}", path.display())
            }
            Err(e) => format!("cannot log to {}: {e}", path.display()),
        }
    }
}

/// Keyboard bytes, read by a plain thread (it may stay blocked at exit).
fn keyboard() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 1024];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The terminal side of a console session: keys, screen, log. What
/// `lmx console` takes from its flags, and `lmx tftpboot` from the
/// defaults when it stays on the console after the boot.
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

    fn keys_and_screen(&self) -> miette::Result<(Keys, Screen)> {
        let exit = term::parse_key(&self.exit_key)
            .ok_or_else(|| miette!("--exit-key {}: use e.g. ctrl-] or ^]", self.exit_key))?;
        let prefix = term::parse_key(&self.prefix_key)
            .ok_or_else(|| miette!("--prefix-key {}: use e.g. ctrl-t", self.prefix_key))?;
        let enter = match self.enter {
            Enter::Cr => EnterMap::Cr,
            Enter::Lf => EnterMap::Lf,
            Enter::Crlf => EnterMap::CrLf,
        };
        let log = match &self.log {
            Some(p) => Some(ConsoleLog::open(p, self.log_timestamps).into_diagnostic()?),
            None => None,
        };
        let screen = Screen {
            out: std::io::stdout(),
            color: std::io::stdout().is_terminal(),
            stamps: self.timestamps.then(term::Timestamper::default),
            map: if self.lf_to_crlf {
                OutputMap::LfToCrLf
            } else {
                OutputMap::AsIs
            },
            prev: 0,
            log,
            log_path: self.log.clone(),
            log_timestamps: self.log_timestamps,
            local_echo: self.local_echo,
        };
        Ok((Keys::new(exit, prefix, enter), screen))
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
    let (mut keys, mut screen) = opts.keys_and_screen()?;
    let _raw = if std::io::stdin().is_terminal() {
        Some(RawMode::enable(0).into_diagnostic()?)
    } else {
        None
    };
    let kb = keyboard();
    screen.status(&format!("{name}; {}", keys.help()));
    let r = hold_loop(port, name, None, None, &mut keys, &mut screen, kb).await;
    drop(_raw);
    term::restore_terminal();
    r
}

async fn console(args: ConsoleArgs, endpoint: Endpoint, cfg: SerialConfig) -> miette::Result<()> {
    let (mut keys, mut screen) = TermOptions::of(&args).keys_and_screen()?;

    // Another lmx holds the port: attach through its share socket.
    let sock = share::socket_path(&endpoint);
    let mut direct: Option<Box<dyn Transport>> = None;
    let mut attached = None;
    if sock.exists() {
        let name = share::client_name("lmx console");
        let role = if args.watch { Role::Watch } else { Role::Write };
        match share::connect(&sock, role, &name).await {
            Ok(s) => attached = Some((s, role, None)),
            Err(ShareError::Busy { holder }) => {
                let s = share::connect(&sock, Role::Watch, &name).await?;
                attached = Some((s, Role::Watch, Some(holder)));
            }
            Err(ShareError::Io { .. }) => {} // stale socket
        }
    }
    if attached.is_none() {
        direct = Some(endpoint.open(&cfg).await?);
    }

    let _raw = if std::io::stdin().is_terminal() {
        Some(RawMode::enable(0).into_diagnostic()?)
    } else {
        None
    };
    let kb = keyboard();
    screen.status(&format!("{}; {}", endpoint, keys.help()));

    match attached {
        Some((stream, role, holder)) => {
            match (&role, holder) {
                (Role::Watch, Some(h)) => {
                    screen.status(&format!("watching read-only: the console is driven by {h}"))
                }
                (Role::Watch, None) => screen.status("watching read-only"),
                (Role::Write, _) => screen.status("attached through the holder's share socket"),
            }
            client_loop(stream, role, &mut keys, &mut screen, kb).await
        }
        None => {
            let port = direct.expect("opened above");
            let share = if args.no_share {
                None
            } else {
                match ShareServer::bind(&sock, endpoint.to_string()).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        screen.status(&format!("not sharing this port: {e}"));
                        None
                    }
                }
            };
            let name = endpoint.to_string();
            let reconnect = (!args.no_reconnect).then_some((&endpoint, &cfg));
            hold_loop(port, &name, reconnect, share, &mut keys, &mut screen, kb).await
        }
    }
}

/// The holder's loop: board output to the screen (and to share clients),
/// keys to the board. With `reconnect`, a port that goes away is reopened
/// when it comes back; without, the loop ends there.
async fn hold_loop(
    port: Box<dyn Transport>,
    name: &str,
    reconnect: Option<(&Endpoint, &SerialConfig)>,
    mut share: Option<ShareServer>,
    keys: &mut Keys,
    screen: &mut Screen,
    mut kb: mpsc::Receiver<Vec<u8>>,
) -> miette::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).into_diagnostic()?;
    let mut hup = signal(SignalKind::hangup()).into_diagnostic()?;
    let mut port = Some(port);
    let mut buf = vec![0u8; 4096];
    let mut retry = tokio::time::interval(Duration::from_millis(250));
    loop {
        let from_share = async {
            match share.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let read = async {
            match port.as_mut() {
                Some(p) => Some(p.read(&mut buf).await),
                None => {
                    retry.tick().await;
                    None
                }
            }
        };
        tokio::select! {
            r = read => match r {
                Some(Ok(n)) if n > 0 => {
                    screen.board(&buf[..n]);
                    if let Some(s) = &share {
                        s.broadcast(&buf[..n]);
                    }
                }
                Some(r) => {
                    port = None;
                    let why = match r {
                        Err(e) => e.to_string(),
                        Ok(_) => "closed".to_string(),
                    };
                    if reconnect.is_none() {
                        screen.status(&format!("{name} went away ({why})"));
                        return Err(miette!("{name} went away ({why})"));
                    }
                    let msg = format!("{name} went away ({why}); waiting for it to come back");
                    screen.status(&msg);
                    if let Some(s) = &share { s.status(&msg); }
                }
                None => {
                    let Some((endpoint, cfg)) = reconnect else { continue };
                    if let Ok(p) = endpoint.open(cfg).await {
                        let msg = format!("{name} is back");
                        screen.status(&msg);
                        if let Some(s) = &share { s.status(&msg); }
                        port = Some(p);
                    }
                }
            },
            k = kb.recv() => {
                let Some(k) = k else {
                    // No keyboard (stdin closed): keep showing output.
                    kb = mpsc::channel(1).1;
                    continue;
                };
                for action in keys.feed(&k) {
                    match action {
                        KeyAction::Exit => {
                            screen.status("bye");
                            return Ok(());
                        }
                        KeyAction::Send(bytes) => {
                            if let Some(w) = share.as_ref().and_then(|s| s.writer()) {
                                screen.status(&format!("keys ignored: the console is driven by {w}"));
                                continue;
                            }
                            match port.as_mut() {
                                Some(p) => {
                                    if p.write_all(&bytes).await.is_err() {
                                        screen.status("write failed");
                                    }
                                    if screen.local_echo {
                                        screen.board(&bytes);
                                    }
                                }
                                None => screen.status("not connected; keys dropped"),
                            }
                        }
                        KeyAction::Break => match port.as_mut().map(|p| p.send_break()) {
                            Some(Ok(())) => screen.status("BREAK sent"),
                            Some(Err(e)) => screen.status(&format!("no BREAK: {e}")),
                            None => screen.status("not connected"),
                        },
                        KeyAction::ToggleEcho => {
                            screen.local_echo = !screen.local_echo;
                            let on = if screen.local_echo { "on" } else { "off" };
                            screen.status(&format!("local echo {on}"));
                        }
                        KeyAction::ToggleTimestamps => {
                            screen.stamps = match screen.stamps.take() {
                                Some(_) => None,
                                None => Some(term::Timestamper::default()),
                            };
                            let on = if screen.stamps.is_some() { "on" } else { "off" };
                            screen.status(&format!("timestamps {on}"));
                        }
                        KeyAction::ToggleLog => {
                            let msg = screen.toggle_log();
                            screen.status(&msg);
                        }
                        KeyAction::Help => screen.status(&keys.help()),
                    }
                }
            }
            d = from_share => {
                if let (Some(d), Some(p)) = (d, port.as_mut()) {
                    let _ = p.write_all(&d).await;
                }
            }
            _ = term.recv() => {
                screen.status("terminated");
                return Ok(());
            }
            _ = hup.recv() => return Ok(()),
        }
    }
}

async fn client_loop(
    mut stream: tokio::net::UnixStream,
    role: Role,
    keys: &mut Keys,
    screen: &mut Screen,
    mut kb: mpsc::Receiver<Vec<u8>>,
) -> miette::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).into_diagnostic()?;
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(n) if n > 0 => screen.board(&buf[..n]),
                _ => {
                    screen.status("the holder of the port went away");
                    return Ok(());
                }
            },
            k = kb.recv() => {
                let Some(k) = k else {
                    kb = mpsc::channel(1).1;
                    continue;
                };
                for action in keys.feed(&k) {
                    match action {
                        KeyAction::Exit => {
                            screen.status("bye");
                            return Ok(());
                        }
                        KeyAction::Send(bytes) if role == Role::Write => {
                            let _ = stream.write_all(&bytes).await;
                        }
                        KeyAction::Send(_) => screen.status("read-only: keys ignored"),
                        KeyAction::Help => screen.status(&keys.help()),
                        _ => screen.status("only the holder of the port can do that"),
                    }
                }
            }
            _ = term.recv() => return Ok(()),
        }
    }
}
