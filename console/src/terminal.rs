//! The interactive terminal: a keyboard and a screen joined to a console.
//!
//! [`term`](crate::term) has the rules (which key does what, how board
//! output is mapped, stamped and logged); this module runs them. A
//! [`Terminal`] owns the screen side (status lines marked `[lmx]`, the
//! toggles, the log file) and the keyboard (a plain thread reading
//! stdin, in raw mode that is undone on drop and on panic). It then
//! either holds a port ([`Terminal::hold`]: board output to the screen
//! and to share clients, keys to the board, the port reopened when it
//! comes back) or attaches through another process's share socket
//! ([`Terminal::client`]); [`Terminal::console`] picks between the two
//! as `lmx console` does. `lmx tftpboot` stays on the board's console
//! with the same terminal ([`Terminal::hold`] without reconnect).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::serial::PortError;
use crate::share::{self, Role, ShareError, ShareServer};
use crate::term::{self, ConsoleLog, EnterMap, KeyAction, Keys, OutputMap, RawMode};
use crate::{Endpoint, SerialConfig, Transport};

/// The terminal side of a console session: keys, screen, log.
#[derive(Debug, Clone)]
pub struct TermOptions {
    /// Key that quits.
    pub exit_key: u8,
    /// Key that starts a console command (BREAK, toggles, help).
    pub prefix_key: u8,
    /// What Enter sends.
    pub enter: EnterMap,
    /// Timestamp lines on screen.
    pub timestamps: bool,
    /// Log file (board output, ANSI sequences stripped).
    pub log: Option<PathBuf>,
    /// Timestamp lines in the log.
    pub log_timestamps: bool,
    /// Show typed bytes locally.
    pub local_echo: bool,
    /// Show a bare LF as CR LF.
    pub lf_to_crlf: bool,
}

impl Default for TermOptions {
    /// `lmx console`'s defaults: Ctrl-] quits, Ctrl-T prefix, Enter sends CR.
    fn default() -> TermOptions {
        TermOptions {
            exit_key: term::DEFAULT_EXIT_KEY,
            prefix_key: term::DEFAULT_PREFIX_KEY,
            enter: EnterMap::Cr,
            timestamps: false,
            log: None,
            log_timestamps: false,
            local_echo: false,
            lf_to_crlf: false,
        }
    }
}

/// How `lmx console` reaches its port ([`Terminal::console`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleMode {
    /// Attach to a shared console read-only.
    pub watch: bool,
    /// Do not offer the port to other lmx processes.
    pub no_share: bool,
    /// Reopen the port when it comes back instead of ending.
    pub reconnect: bool,
}

/// Why a terminal session ended with an error.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TerminalError {
    /// The console went away and is not waited for.
    #[error("{name} went away ({why})")]
    Gone {
        /// The console, as status lines name it.
        name: String,
        /// The read error, or `closed`.
        why: String,
    },
    /// The port could not be opened.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Port(#[from] PortError),
    /// The share socket refused or failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Share(#[from] ShareError),
    /// The terminal itself (raw mode, signals, the log file).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The screen side: board output, status lines, toggles, log.
struct Screen {
    out: Box<dyn Write + Send>,
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

/// A keyboard and a screen for one console session.
pub struct Terminal {
    keys: Keys,
    screen: Screen,
    kb: Option<mpsc::Receiver<Vec<u8>>>,
    raw: Option<RawMode>,
    /// Whether [`Terminal::start`] reads stdin (false for [`Terminal::with_io`]).
    stdin: bool,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal").finish_non_exhaustive()
    }
}

impl Terminal {
    /// A terminal on stdout (colored status lines when it is a tty) and
    /// stdin; opens the log file now. Raw mode and the keyboard start
    /// with [`Terminal::start`].
    pub fn new(opts: &TermOptions) -> std::io::Result<Terminal> {
        let color = std::io::stdout().is_terminal();
        let mut t = Terminal::with_io(opts, Box::new(std::io::stdout()), color, None)?;
        t.stdin = true;
        Ok(t)
    }

    /// A terminal writing to `out` and reading keys from `keys` (tests,
    /// or a front end of its own); no raw mode.
    pub fn with_io(
        opts: &TermOptions,
        out: Box<dyn Write + Send>,
        color: bool,
        keys: Option<mpsc::Receiver<Vec<u8>>>,
    ) -> std::io::Result<Terminal> {
        let log = match &opts.log {
            Some(p) => Some(ConsoleLog::open(p, opts.log_timestamps)?),
            None => None,
        };
        let screen = Screen {
            out,
            color,
            stamps: opts.timestamps.then(term::Timestamper::default),
            map: if opts.lf_to_crlf {
                OutputMap::LfToCrLf
            } else {
                OutputMap::AsIs
            },
            prev: 0,
            log,
            log_path: opts.log.clone(),
            log_timestamps: opts.log_timestamps,
            local_echo: opts.local_echo,
        };
        Ok(Terminal {
            keys: Keys::new(opts.exit_key, opts.prefix_key, opts.enter),
            screen,
            kb: keys,
            raw: None,
            stdin: false,
        })
    }

    /// Puts stdin in raw mode (when it is a tty) and starts reading keys.
    pub fn start(&mut self) -> std::io::Result<()> {
        if self.stdin && self.kb.is_none() {
            if std::io::stdin().is_terminal() {
                self.raw = Some(RawMode::enable(0)?);
            }
            self.kb = Some(keyboard());
        }
        Ok(())
    }

    /// Shows a status line (`[lmx] text`), also noted in the log.
    pub fn status(&mut self, text: &str) {
        self.screen.status(text);
    }

    /// The key help line (`Ctrl-] quits, ...`).
    pub fn help(&self) -> String {
        self.keys.help()
    }

    /// `lmx console`: attaches through the share socket of another lmx
    /// that holds `endpoint` (read-only when asked, or when someone else
    /// is writing), else opens the port and holds it, offering it to
    /// others unless `mode.no_share`.
    pub async fn console(
        &mut self,
        endpoint: &Endpoint,
        cfg: &SerialConfig,
        mode: ConsoleMode,
    ) -> Result<(), TerminalError> {
        let sock = share::socket_path(endpoint);
        let mut direct: Option<Box<dyn Transport>> = None;
        let mut attached = None;
        if sock.exists() {
            let name = share::client_name("lmx console");
            let role = if mode.watch { Role::Watch } else { Role::Write };
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
            direct = Some(endpoint.open(cfg).await?);
        }
        self.start()?;
        let help = self.help();
        self.status(&format!("{endpoint}; {help}"));
        match attached {
            Some((stream, role, holder)) => {
                match (&role, holder) {
                    (Role::Watch, Some(h)) => {
                        self.status(&format!("watching read-only: the console is driven by {h}"))
                    }
                    (Role::Watch, None) => self.status("watching read-only"),
                    (Role::Write, _) => self.status("attached through the holder's share socket"),
                }
                self.client(stream, role).await
            }
            None => {
                let port = direct.expect("opened above");
                let share = if mode.no_share {
                    None
                } else {
                    match ShareServer::bind(&sock, endpoint.to_string()).await {
                        Ok(s) => Some(s),
                        Err(e) => {
                            self.status(&format!("not sharing this port: {e}"));
                            None
                        }
                    }
                };
                let name = endpoint.to_string();
                let reconnect = mode.reconnect.then_some((endpoint, cfg));
                self.hold(port, &name, reconnect, share).await
            }
        }
    }

    /// Holds `port` (named `name` in status lines): board output to the
    /// screen (and to `share`'s clients), keys to the board. With
    /// `reconnect`, a port that goes away is reopened when it comes
    /// back; without, the session ends there with [`TerminalError::Gone`].
    /// Ends with `Ok` on the exit key, SIGTERM or SIGHUP.
    pub async fn hold(
        &mut self,
        port: Box<dyn Transport>,
        name: &str,
        reconnect: Option<(&Endpoint, &SerialConfig)>,
        mut share: Option<ShareServer>,
    ) -> Result<(), TerminalError> {
        use tokio::signal::unix::{signal, SignalKind};
        self.start()?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut kb = self.kb.take().unwrap_or_else(|| mpsc::channel(1).1);
        let (keys, screen) = (&mut self.keys, &mut self.screen);
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
                            return Err(TerminalError::Gone { name: name.into(), why });
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

    /// Attached through a holder's share socket as `role`: its output to
    /// the screen, keys to it when writing. Ends when the holder goes
    /// away, on the exit key or on SIGTERM.
    pub async fn client(
        &mut self,
        mut stream: UnixStream,
        role: Role,
    ) -> Result<(), TerminalError> {
        use tokio::signal::unix::{signal, SignalKind};
        self.start()?;
        let mut term = signal(SignalKind::terminate())?;
        let mut kb = self.kb.take().unwrap_or_else(|| mpsc::channel(1).1);
        let (keys, screen) = (&mut self.keys, &mut self.screen);
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
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.raw.take().is_some() {
            term::restore_terminal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A screen that records what it was shown.
    #[derive(Clone, Default)]
    struct Shown(Arc<Mutex<Vec<u8>>>);

    impl Write for Shown {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shown {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn terminal(opts: &TermOptions) -> (Terminal, Shown, mpsc::Sender<Vec<u8>>) {
        let shown = Shown::default();
        let (tx, rx) = mpsc::channel(8);
        let t = Terminal::with_io(opts, Box::new(shown.clone()), false, Some(rx)).unwrap();
        (t, shown, tx)
    }

    #[tokio::test]
    async fn hold_shows_the_board_sends_keys_and_quits_on_the_exit_key() {
        let (mut t, shown, tx) = terminal(&TermOptions::default());
        let (port, mut board) = tokio::io::duplex(256);
        board.write_all(b"U-Boot> ").await.unwrap();
        let held = tokio::spawn(async move {
            let r = t.hold(Box::new(port), "test port", None, None).await;
            (t, r)
        });
        tx.send(b"help\r".to_vec()).await.unwrap();
        let mut got = [0u8; 5];
        board.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"help\r");
        // Ctrl-T e toggles local echo; Ctrl-] quits.
        tx.send(vec![0x14, b'e']).await.unwrap();
        tx.send(vec![0x1d]).await.unwrap();
        let (_t, r) = held.await.unwrap();
        r.unwrap();
        let text = shown.text();
        assert!(text.starts_with("U-Boot> "), "{text:?}");
        assert!(text.contains("[lmx] local echo on\r\n"), "{text:?}");
        assert!(text.ends_with("[lmx] bye\r\n"), "{text:?}");
    }

    #[tokio::test]
    async fn a_port_that_goes_away_ends_the_session_without_reconnect() {
        let (mut t, shown, _tx) = terminal(&TermOptions::default());
        let (port, board) = tokio::io::duplex(64);
        drop(board);
        let e = t
            .hold(Box::new(port), "console of b", None, None)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "console of b went away (closed)");
        assert!(shown
            .text()
            .contains("[lmx] console of b went away (closed)"));
    }

    #[tokio::test]
    async fn the_log_toggle_writes_board_output_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let opts = TermOptions {
            log: Some(log.clone()),
            ..TermOptions::default()
        };
        let (mut t, _shown, tx) = terminal(&opts);
        let (port, mut board) = tokio::io::duplex(64);
        board.write_all(b"\x1b[0mhello\n").await.unwrap();
        let held = tokio::spawn(async move {
            let r = t.hold(Box::new(port), "p", None, None).await;
            (t, r)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(vec![0x1d]).await.unwrap();
        held.await.unwrap().1.unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("hello\n"), "{text:?}");
        assert!(!text.contains('\x1b'), "ANSI kept: {text:?}");
    }
}
