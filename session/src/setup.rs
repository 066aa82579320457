//! One session with a board: everything between "which board" and a
//! [`UBootShell`] at its console, owned by one value that shuts it all
//! down when it is dropped.
//!
//! `lmx tftpboot`, `lmx flash` and the live `lmx env` need the same
//! setup: the board's TFTP server (only the plan's files, only to the
//! board's address, uploads into a scratch directory), the console — a
//! serial port, `lmx console`'s share socket when another lmx holds the
//! port, or a virtual board started here with its flash fresh or kept —
//! and a shell speaking the board's U-Boot dialect. [`Session::open`]
//! does it in that order; the [`Host`] half of a [`Session`] owns the
//! async runtime, the server, the VM and the scratch directory, and its
//! `Drop` stops the server, waits for it, powers the VM off and removes
//! the directory. The `driver` half starts as the shell and becomes
//! whatever runs on it ([`Session::map`]: a `BootRunner`, a
//! `FlashExecutor`).
//!
//! A virtual board's private network must be entered before any thread
//! exists, so that part ([`crate::virt::Virtual::prepare`],
//! [`crate::virt::enter_network`]) is the caller's first step, before
//! the session is opened.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use lmx_boards::Board;
use lmx_console::share::{self, OpenError};
use lmx_console::UBootShell;
use lmx_console::{Endpoint, PortError, SerialConfig, SerialTransport, ShellError, Transport};
use lmx_testbed::{ConsoleEndpoint, Vm};
use lmx_tftpd::policy::PolicySpec;
use lmx_tftpd::{Event, Policy, PolicyError, Server, ServerConfig, ServerError, TransferSummary};
use tokio::sync::{mpsc, oneshot};

use crate::report::Reporter;
use crate::virt::{self, Flash, Virtual};

/// The shell a session opens: U-Boot over a boxed transport.
pub type Shell = UBootShell<Box<dyn Transport>>;

/// Why a session could not be set up. Nothing was sent to the board.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SetupError {
    /// A host package of the virtual board (QEMU, U-Boot) is missing or
    /// failed.
    #[error("{0}")]
    #[diagnostic(help("install the virtual board's packages with `scripts/deps.sh virtual`"))]
    Packages(lmx_testbed::Error),
    /// Any other test bed failure (kernel, rootfs, starting QEMU).
    #[error("{0}")]
    Testbed(lmx_testbed::Error),
    /// The board file names a U-Boot binary that is not there.
    #[error("board {board}: U-Boot {} is missing", path.display())]
    #[diagnostic(help("install the virtual board's packages with `scripts/deps.sh virtual`"))]
    MissingUBoot {
        /// The board.
        board: String,
        /// The binary it names.
        path: PathBuf,
    },
    /// The private network of a virtual board could not be entered.
    #[error("{0}")]
    #[diagnostic(help(
        "a virtual board needs root, or unprivileged user namespaces and a /dev/net/tun the user may open (testbed/README.md, \"Network without root\")"
    ))]
    Network(String),
    /// A virtual board's kept flash files could not be prepared.
    #[error("preparing the flash files in {}", dir.display())]
    FlashFiles {
        /// Their directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: lmx_testbed::Error,
    },
    /// A host file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The files to serve are not servable (missing, not regular files).
    #[error("serving the board's files: {0}")]
    Serve(#[source] PolicyError),
    /// The TFTP server could not listen.
    #[error(transparent)]
    Bind(ServerError),
    /// The board's console settings are unusable.
    #[error(transparent)]
    #[diagnostic(transparent)]
    ConsoleConfig(PortError),
    /// The console could not be opened (or another lmx is driving it).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Console(#[from] OpenError),
    /// The board's U-Boot facts do not make a shell.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Shell(#[from] ShellError),
}

impl SetupError {
    /// A test bed error, with the packages' help when QEMU or U-Boot is
    /// what failed.
    pub fn testbed(e: lmx_testbed::Error) -> SetupError {
        let text = e.to_string();
        if text.contains("qemu") || text.contains("QEMU") || text.contains("u-boot") {
            SetupError::Packages(e)
        } else {
            SetupError::Testbed(e)
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
        let what = what.into();
        move |source| SetupError::Io { what, source }
    }
}

/// How the session reaches the board's console.
#[derive(Debug, Clone)]
pub enum ConsoleSpec {
    /// A real board: a serial device, `unix:PATH` or `tcp:HOST:PORT`,
    /// through the share socket of an `lmx console` holding it when there
    /// is one, else opened directly.
    Port(String),
    /// A virtual board the session starts (prepared by
    /// [`Virtual::prepare`]), its console on a unix socket in the scratch
    /// directory or, with `pty`, on a pty opened as a serial port.
    Virtual {
        /// The prepared machine.
        virt: Virtual,
        /// Its flash.
        flash: Flash,
        /// Console on a pty instead of a unix socket.
        pty: bool,
        /// Give it the private network's tap (see [`virt::enter_network`]).
        network: bool,
    },
}

/// What the session serves over TFTP.
#[derive(Debug, Clone)]
pub struct Serve {
    /// Where the server listens.
    pub listen: SocketAddr,
    /// The only client allowed.
    pub board_ip: Ipv4Addr,
    /// TFTP name → file, the only files served.
    pub files: Vec<(String, PathBuf)>,
    /// Accept uploads (a `tftpput` backup) into [`Host::upload_dir`].
    pub uploads: bool,
}

/// Everything [`Session::open`] needs.
#[derive(Debug)]
pub struct SessionSpec {
    /// The board.
    pub board: Board,
    /// Its console.
    pub console: ConsoleSpec,
    /// This program as other lmx processes are told, e.g. `lmx flash`.
    pub client: String,
    /// The TFTP server, if the session needs one.
    pub serve: Option<Serve>,
    /// A directory the session owns and removes at the end (console
    /// socket, a fresh malta flash, uploads); the caller may keep files of
    /// its own in it (e.g. the artifacts being served).
    pub scratch: tempfile::TempDir,
}

/// The host side of a session: the async runtime, the TFTP server, the
/// virtual board and the scratch directory. Dropping it stops the server
/// (and waits for it), kills QEMU if it still runs, and removes the
/// scratch directory, in that order.
pub struct Host {
    board: Board,
    server: Option<(
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Vec<TransferSummary>>,
    )>,
    events: Option<mpsc::UnboundedReceiver<Event>>,
    vm: Option<Vm>,
    rt: tokio::runtime::Runtime,
    console_time: Duration,
    power_on: Instant,
    scratch: tempfile::TempDir,
}

/// A board at the end of an open console, and everything the host runs
/// for it. `driver` is what talks to the console (a [`Shell`] after
/// [`Session::open`]); `host` is the rest.
pub struct Session<D = Shell> {
    /// What drives the console.
    pub driver: D,
    /// What the host runs for the board.
    pub host: Host,
}

impl Session<Shell> {
    /// Sets the session up: the TFTP server (reported with the files and
    /// the one client), then the console (a virtual board is started
    /// here and kept on this thread, which QEMU's death signal follows),
    /// then a shell for the board's dialect. Nothing is sent to the board.
    pub fn open(spec: SessionSpec, report: &mut dyn Reporter) -> Result<Session, SetupError> {
        let SessionSpec {
            board,
            console,
            client,
            serve,
            scratch,
        } = spec;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(SetupError::io("starting the async runtime"))?;
        let upload_dir = scratch.path().join("upload");
        let mut host = Host {
            board,
            server: None,
            events: None,
            vm: None,
            rt,
            console_time: Duration::ZERO,
            power_on: Instant::now(),
            scratch,
        };
        if let Some(serve) = serve {
            host.serve(serve, upload_dir, report)?;
        }
        let t = Instant::now();
        let transport = match console {
            ConsoleSpec::Port(port) => host.block_on(open_port(&host.board, &port, &client))?,
            ConsoleSpec::Virtual {
                virt,
                flash,
                pty,
                network,
            } => host.start_virtual(&virt, &flash, pty, network, report)?,
        };
        host.console_time = t.elapsed();
        // With a unix socket QEMU starts the CPU only now.
        host.power_on = Instant::now();
        let shell = UBootShell::for_board(transport, &host.board)?;
        Ok(Session {
            driver: shell,
            host,
        })
    }

    /// Leaves the board: a real board stays where it is; a virtual board
    /// is powered off, cleanly after success (`poweroff` at the prompt,
    /// so QEMU closes its flash files), killed otherwise.
    pub fn close(mut self, clean: bool) {
        if let Some(mut vm) = self.host.vm.take() {
            if clean {
                let io = self.driver.transport_mut();
                let _ = self.host.rt.block_on(async {
                    use tokio::io::AsyncWriteExt;
                    io.write_all(b"poweroff\r").await?;
                    io.flush().await
                });
                let _ = vm.wait_exit(Duration::from_secs(10));
            }
            vm.kill();
        }
    }
}

impl<D> Session<D> {
    /// The same session with another driver built from this one (the
    /// shell handed to a runner, or taken back from it).
    pub fn map<E>(self, f: impl FnOnce(D) -> E) -> Session<E> {
        Session {
            driver: f(self.driver),
            host: self.host,
        }
    }
}

impl Host {
    /// The board.
    pub fn board(&self) -> &Board {
        &self.board
    }

    /// Runs a future on the session's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The TFTP server's transfer events (once; `None` without a server).
    pub fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<Event>> {
        self.events.take()
    }

    /// Whether the board was powered on by this session (a VM started
    /// just now), so nothing may be sent before U-Boot speaks.
    pub fn at_power_on(&self) -> bool {
        self.vm.is_some()
    }

    /// When the console was open (and a VM's CPU started).
    pub fn power_on(&self) -> Instant {
        self.power_on
    }

    /// How long starting the board and opening its console took.
    pub fn console_time(&self) -> Duration {
        self.console_time
    }

    /// Where uploads arrive (created when the session serves uploads).
    pub fn upload_dir(&self) -> PathBuf {
        self.scratch.path().join("upload")
    }

    /// The scratch directory.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Stops the TFTP server and waits for its transfers to end; returns
    /// their summaries (empty without a server, or the second time).
    pub fn stop_serving(&mut self) -> Vec<TransferSummary> {
        match self.server.take() {
            Some((stop, served)) => {
                let _ = stop.send(());
                self.rt.block_on(served).unwrap_or_default()
            }
            None => Vec::new(),
        }
    }

    fn serve(
        &mut self,
        serve: Serve,
        upload_dir: PathBuf,
        report: &mut dyn Reporter,
    ) -> Result<(), SetupError> {
        if serve.uploads {
            std::fs::create_dir_all(&upload_dir)
                .map_err(SetupError::io(format!("creating {}", upload_dir.display())))?;
        }
        let policy = Policy::new(PolicySpec {
            files: serve.files.clone(),
            allow: vec![IpNet::from(IpAddr::V4(serve.board_ip))],
            upload_dir: serve.uploads.then_some(upload_dir),
            ..PolicySpec::default()
        })
        .map_err(SetupError::Serve)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let server = self
            .rt
            .block_on(Server::bind(
                ServerConfig {
                    bind: vec![serve.listen],
                    ..ServerConfig::default()
                },
                policy,
            ))
            .map_err(SetupError::Bind)?
            .with_events(tx);
        let listen = server
            .local_addrs()
            .first()
            .copied()
            .unwrap_or(serve.listen);
        report.say(&format!(
            "==> TFTP server on {listen}, serving {} to {} only{}",
            serve
                .files
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            serve.board_ip,
            if serve.uploads {
                ", accepting the backup upload"
            } else {
                ""
            }
        ));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let served = self.rt.spawn(server.run(async {
            let _ = stop_rx.await;
        }));
        self.server = Some((stop_tx, served));
        self.events = Some(rx);
        Ok(())
    }

    fn start_virtual(
        &mut self,
        v: &Virtual,
        flash: &Flash,
        pty: bool,
        network: bool,
        report: &mut dyn Reporter,
    ) -> Result<Box<dyn Transport>, SetupError> {
        let dir = self.scratch.path().join("vm");
        std::fs::create_dir_all(&dir)
            .map_err(SetupError::io(format!("creating {}", dir.display())))?;
        let console = if pty {
            lmx_testbed::Console::Pty
        } else {
            lmx_testbed::Console::Unix(dir.join("console.sock"))
        };
        let cfg = virt::vm_config(&self.board, v, console, network, flash, &dir, report)?;
        report.say(&format!(
            "==> starting virtual board {} (QEMU)",
            self.board.name
        ));
        let vm = virt::start(&cfg)?;
        let endpoint = vm.console().clone();
        self.vm = Some(vm);
        let cfg = SerialConfig::from_board(&self.board).map_err(SetupError::ConsoleConfig)?;
        let opened = match endpoint {
            ConsoleEndpoint::Unix(p) => self.rt.block_on(Endpoint::Unix(p).open(&cfg)),
            ConsoleEndpoint::Pty(p) => {
                // The port registers with the runtime's reactor.
                let _in_runtime = self.rt.enter();
                SerialTransport::open(&p, &cfg).map(|t| Box::new(t) as Box<dyn Transport>)
            }
        };
        opened.map_err(|e| SetupError::Console(OpenError::Port(e)))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_serving();
        if let Some(mut vm) = self.vm.take() {
            vm.kill();
        }
    }
}

/// The console a command was asked for, checked against the board: a
/// real board's port (given, or not yet: [`ConsoleChoice::prepare`]
/// needs it), or the virtual board the session starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleChoice {
    /// A real board: a serial device, `unix:PATH` or `tcp:HOST:PORT`.
    Port(Option<String>),
    /// A virtual board, its console on a unix socket or, with `pty`, a
    /// pty opened as a serial port.
    Virtual {
        /// The console on a pty.
        pty: bool,
    },
}

/// Why the console asked for does not fit the board. Nothing was started.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConsoleChoiceError {
    /// A real board, and no console given.
    #[error("board {board}: which console?")]
    NoPort {
        /// The board.
        board: String,
    },
    /// A console given for a virtual board, whose console the session
    /// makes itself.
    #[error("virtual board {board}: its console is the one lmx starts it with, not {port}")]
    PortOnVirtual {
        /// The board.
        board: String,
        /// The console given.
        port: String,
        /// Whether `pty` would have been taken.
        pty_allowed: bool,
    },
    /// Preparing the virtual board failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Setup(#[from] SetupError),
}

impl ConsoleChoice {
    /// What `port` means for `board`. A real board takes it as it is
    /// (missing is an error only at [`ConsoleChoice::prepare`], so a dry
    /// run needs none); a virtual board takes none, or `pty` where
    /// `allow_pty`.
    pub fn of(
        board: &Board,
        port: Option<&str>,
        allow_pty: bool,
    ) -> Result<ConsoleChoice, ConsoleChoiceError> {
        if !board.is_virtual {
            return Ok(ConsoleChoice::Port(port.map(str::to_string)));
        }
        match port {
            None => Ok(ConsoleChoice::Virtual { pty: false }),
            Some("pty") if allow_pty => Ok(ConsoleChoice::Virtual { pty: true }),
            Some(other) => Err(ConsoleChoiceError::PortOnVirtual {
                board: board.name.clone(),
                port: other.to_string(),
                pty_allowed: allow_pty,
            }),
        }
    }

    /// The [`ConsoleSpec`] for [`Session::open`]. For a virtual board this
    /// is the process's first step, while it has one thread: the machine
    /// is prepared (a MIPS twin's U-Boot built and cached the first time,
    /// which needs the host's network) and the private network toward
    /// `server_ip` entered; `flash` is its flash. A real board needs its
    /// port now.
    pub fn prepare(
        self,
        board: &Board,
        server_ip: Ipv4Addr,
        flash: Flash,
        report: &mut dyn Reporter,
    ) -> Result<ConsoleSpec, ConsoleChoiceError> {
        match self {
            ConsoleChoice::Port(Some(port)) => Ok(ConsoleSpec::Port(port)),
            ConsoleChoice::Port(None) => Err(ConsoleChoiceError::NoPort {
                board: board.name.clone(),
            }),
            ConsoleChoice::Virtual { pty } => {
                let virt = Virtual::prepare(board, report)?;
                virt::enter_network(server_ip, board.network.prefix_len.unwrap_or(24))?;
                Ok(ConsoleSpec::Virtual {
                    virt,
                    flash,
                    pty,
                    network: true,
                })
            }
        }
    }
}

impl crate::NetSetup {
    /// The network settings for `board` at `board_ip`, fetching from
    /// `server_ip`, with the board's TFTP block and window sizes.
    pub fn for_board(board: &Board, board_ip: Ipv4Addr, server_ip: Ipv4Addr) -> crate::NetSetup {
        crate::NetSetup {
            board_ip,
            server_ip,
            blocksize: board.uboot.tftp_blocksize,
            windowsize: board.uboot.tftp_windowsize,
        }
    }
}

/// Opens a real board's console `port`: through the share socket of an
/// `lmx console` holding it when there is one, else directly. `client`
/// names this program to the holder, e.g. `lmx flash`.
pub async fn open_port(
    board: &Board,
    port: &str,
    client: &str,
) -> Result<Box<dyn Transport>, SetupError> {
    let cfg = SerialConfig::from_board(board).map_err(SetupError::ConsoleConfig)?;
    let name = share::client_name(client);
    Ok(share::open_console(&Endpoint::parse(port), &cfg, &name).await?)
}

/// The address U-Boot fetches from when the user gave none: for a virtual
/// board the board file's; for a real one this host's address on the
/// route toward `board_ip`, else the board file's.
pub fn default_server_ip(board: &Board, board_ip: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    if board.is_virtual {
        board.network.server_ip
    } else {
        board_ip.and_then(route_source).or(board.network.server_ip)
    }
}

/// The host's address on the route toward `board` (no packet is sent:
/// connecting a UDP socket only asks the routing table).
pub fn route_source(board: Ipv4Addr) -> Option<Ipv4Addr> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect((board, 69)).ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    }
}

/// What the crate's unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use lmx_boards::Board;

    /// A shipped board, resolved.
    pub fn board(name: &str) -> Board {
        lmx_boards::Catalog::standard(None)
            .resolve(name)
            .unwrap()
            .board
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recorder;

    use super::testing::board;

    fn scratch() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("lmx-session-test-")
            .tempdir()
            .unwrap()
    }

    /// A "real board" on a unix socket: the session serves a file, opens
    /// the console, and on drop stops the server and removes its scratch.
    #[test]
    fn a_session_serves_opens_the_console_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kernel");
        std::fs::write(&file, b"0123456789").unwrap();
        let sock = dir.path().join("board.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let spec = SessionSpec {
            board: board("qemu-aarch64"),
            console: ConsoleSpec::Port(format!("unix:{}", sock.display())),
            client: "lmx test".into(),
            serve: Some(Serve {
                listen: "127.0.0.1:0".parse().unwrap(),
                board_ip: Ipv4Addr::LOCALHOST,
                files: vec![("kernel".into(), file)],
                uploads: true,
            }),
            scratch: scratch(),
        };
        let mut r = Recorder::default();
        let mut s = Session::open(spec, &mut r).unwrap();
        let (_board_side, _) = listener.accept().unwrap();
        assert_eq!(r.lines.len(), 1, "{:?}", r.lines);
        assert!(
            r.lines[0].starts_with("==> TFTP server on 127.0.0.1:")
                && r.lines[0]
                    .ends_with("serving kernel to 127.0.0.1 only, accepting the backup upload"),
            "{:?}",
            r.lines
        );
        assert!(!s.host.at_power_on());
        assert!(s.host.upload_dir().is_dir());
        assert!(s.host.take_events().is_some());
        assert!(s.host.take_events().is_none());
        let scratch = s.host.scratch().to_path_buf();
        let s = s.map(|shell| shell.into_transport());
        assert_eq!(s.driver.describe(), format!("unix:{}", sock.display()));
        drop(s);
        assert!(!scratch.exists());
    }

    #[test]
    fn a_console_that_is_not_there_is_a_console_error() {
        let spec = SessionSpec {
            board: board("qemu-aarch64"),
            console: ConsoleSpec::Port("unix:/nonexistent/lmx.sock".into()),
            client: "lmx test".into(),
            serve: None,
            scratch: scratch(),
        };
        let e = Session::open(spec, &mut Recorder::default()).err().unwrap();
        assert!(matches!(e, SetupError::Console(_)), "{e:?}");
    }

    #[test]
    fn the_console_asked_for_is_checked_against_the_board() {
        let virt = board("qemu-aarch64");
        assert_eq!(
            ConsoleChoice::of(&virt, None, false).unwrap(),
            ConsoleChoice::Virtual { pty: false }
        );
        assert_eq!(
            ConsoleChoice::of(&virt, Some("pty"), true).unwrap(),
            ConsoleChoice::Virtual { pty: true }
        );
        for (port, allow_pty) in [("pty", false), ("/dev/ttyUSB0", true)] {
            let e = ConsoleChoice::of(&virt, Some(port), allow_pty).unwrap_err();
            assert!(
                matches!(&e, ConsoleChoiceError::PortOnVirtual { port: p, pty_allowed, .. }
                    if p == port && *pty_allowed == allow_pty),
                "{e:?}"
            );
        }

        let real = board("openwrt-one");
        assert!(!real.is_virtual);
        let ip = Ipv4Addr::LOCALHOST;
        let mut r = Recorder::default();
        let chosen = ConsoleChoice::of(&real, Some("pty"), true).unwrap();
        assert_eq!(chosen, ConsoleChoice::Port(Some("pty".into())));
        let spec = chosen.prepare(&real, ip, Flash::Fresh, &mut r).unwrap();
        assert!(matches!(spec, ConsoleSpec::Port(p) if p == "pty"));
        // No port: fine until the console is needed.
        let chosen = ConsoleChoice::of(&real, None, false).unwrap();
        let e = chosen.prepare(&real, ip, Flash::Fresh, &mut r).unwrap_err();
        assert!(matches!(&e, ConsoleChoiceError::NoPort { board } if board == "openwrt-one"));
        assert_eq!(e.to_string(), "board openwrt-one: which console?");
        assert!(r.lines.is_empty(), "{:?}", r.lines);
    }

    #[test]
    fn network_settings_take_the_boards_tftp_sizes() {
        let mut b = board("qemu-aarch64");
        b.uboot.tftp_blocksize = Some(1468);
        b.uboot.tftp_windowsize = None;
        let (ip, srv) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let net = crate::NetSetup::for_board(&b, ip, srv);
        assert_eq!(
            net.vars(),
            [
                ("ipaddr", "10.0.0.2".to_string()),
                ("serverip", "10.0.0.1".to_string()),
                ("tftpblocksize", "1468".to_string()),
            ]
        );
    }

    #[test]
    fn a_virtual_board_fetches_from_its_board_file_address() {
        let b = board("qemu-aarch64");
        assert_eq!(
            default_server_ip(&b, b.network.ip),
            b.network.server_ip,
            "not the route of this host"
        );
        assert_eq!(route_source(Ipv4Addr::LOCALHOST), Some(Ipv4Addr::LOCALHOST));
    }
}
