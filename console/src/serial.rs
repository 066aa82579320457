//! Serial ports: configured through `serialport`, driven through tokio.
//!
//! `serialport` (built without libudev: `docs/design/architecture.md`,
//! "Build and dependencies") knows how to
//! put a tty into raw mode with the right baud, framing and flow
//! control, and opens it exclusively (`TIOCEXCL` plus an exclusive
//! `flock`, so a second lmx, picocom or tio is refused). Its reads and
//! writes block, though, and the shell must read and time out at once;
//! so after configuring, the descriptor is switched to non-blocking and
//! registered with tokio ([`SerialTransport`]).
//!
//! Opening checks the common mistakes first and says how to fix them:
//! a missing device, a device owned by the `dialout` group, a port held
//! by another program (named from `/proc`), and an optional UUCP lock
//! file (`/var/lock/LCK..ttyUSB0`) for tools that still honour them.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use lmx_boards::Board;
pub use serialport::{DataBits, FlowControl, Parity, StopBits};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::transport::Transport;

/// How to configure a serial port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// Baud rate.
    pub baud: u32,
    /// Data bits.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Flow control.
    pub flow_control: FlowControl,
    /// Also take a UUCP lock file in `/var/lock` (or `/run/lock`).
    pub uucp_lock: bool,
}

impl Default for SerialConfig {
    /// 115200 8N1, no flow control: what every board lmx ships uses
    /// (`docs/design/uboot-and-tftp.md`, "Serial console").
    fn default() -> Self {
        SerialConfig {
            baud: 115_200,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow_control: FlowControl::None,
            uucp_lock: false,
        }
    }
}

impl SerialConfig {
    /// The board's `[console]`: baud, framing (`8N1`) and flow control.
    pub fn from_board(board: &Board) -> Result<SerialConfig, PortError> {
        let mut cfg = SerialConfig::default().with_framing(&board.console.framing)?;
        cfg.baud = board.console.baud;
        cfg.flow_control = match board.console.flow_control {
            lmx_boards::FlowControl::None => FlowControl::None,
            lmx_boards::FlowControl::Rtscts => FlowControl::Hardware,
            lmx_boards::FlowControl::Xonxoff => FlowControl::Software,
        };
        Ok(cfg)
    }

    /// Applies a framing string such as `8N1`, `7E1` or `8N2`.
    pub fn with_framing(mut self, framing: &str) -> Result<SerialConfig, PortError> {
        let bad = || PortError::Framing(framing.to_string());
        let b = framing.trim().as_bytes();
        if b.len() != 3 {
            return Err(bad());
        }
        self.data_bits = match b[0] {
            b'5' => DataBits::Five,
            b'6' => DataBits::Six,
            b'7' => DataBits::Seven,
            b'8' => DataBits::Eight,
            _ => return Err(bad()),
        };
        self.parity = match b[1].to_ascii_uppercase() {
            b'N' => Parity::None,
            b'E' => Parity::Even,
            b'O' => Parity::Odd,
            _ => return Err(bad()),
        };
        self.stop_bits = match b[2] {
            b'1' => StopBits::One,
            b'2' => StopBits::Two,
            _ => return Err(bad()),
        };
        Ok(self)
    }
}

/// Why a port could not be opened.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PortError {
    /// The device does not exist.
    #[error("serial port {path} does not exist{}", list_suffix(available))]
    #[diagnostic(
        code(lmx_console::port_missing),
        help("plug the adapter in, or pick one of the ports listed (`lmx console --list`)")
    )]
    NotFound {
        /// The path asked for.
        path: PathBuf,
        /// Ports that do exist.
        available: Vec<String>,
    },
    /// No permission to open it.
    #[error("no permission to open {path}")]
    #[diagnostic(
        code(lmx_console::port_permission),
        help("add yourself to the group that owns it (usually `dialout`): `sudo usermod -aG dialout $USER`, then log in again")
    )]
    Permission {
        /// The device.
        path: PathBuf,
    },
    /// Another program holds it.
    #[error("{path} is in use{}", holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    #[diagnostic(
        code(lmx_console::port_busy),
        help("close the other program (picocom, minicom, tio, screen, another lmx); an `lmx console` shares its port: run lmx on the same --port and it attaches through the share socket")
    )]
    Busy {
        /// The device.
        path: PathBuf,
        /// Who holds it, when that can be found out.
        holder: Option<String>,
    },
    /// A framing string that is not like `8N1`.
    #[error("framing `{0}` is not like 8N1 (data bits 5-8, parity N/E/O, stop bits 1-2)")]
    #[diagnostic(code(lmx_console::bad_framing))]
    Framing(String),
    /// The port exists but could not be configured.
    #[error("cannot configure {path}: {message}")]
    #[diagnostic(
        code(lmx_console::port_config),
        help("is this really a serial device? Some adapters do not support every baud rate")
    )]
    Config {
        /// The device.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A socket endpoint could not be reached.
    #[error("cannot connect to {what}: {source}")]
    #[diagnostic(
        code(lmx_console::connect),
        help("is the emulator or serial server running and listening there?")
    )]
    Connect {
        /// The endpoint.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A network serial server did not agree to RFC 2217's line settings.
    #[error("{what}: {problem}")]
    #[diagnostic(
        code(lmx_console::rfc2217),
        help("ser2net publishes a port for RFC 2217 with the accepter `telnet(rfc2217),tcp,PORT`; labgrid's exporter does so for every serial port")
    )]
    Negotiation {
        /// The endpoint.
        what: String,
        /// What the server did.
        problem: String,
    },
    /// Any other I/O error.
    #[error("{path}: {source}")]
    #[diagnostic(code(lmx_console::port_io))]
    Io {
        /// The device.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// No port was given and none could be chosen.
    #[error("{0}")]
    #[diagnostic(
        code(lmx_console::no_port),
        help("name the port with --port (a /dev/serial/by-id/... path stays stable across replugging)")
    )]
    NoChoice(String),
}

fn list_suffix(v: &[String]) -> String {
    if v.is_empty() {
        "; no serial ports were found".to_string()
    } else {
        format!("; available: {}", v.join(", "))
    }
}

/// Processes that have `path` open, as `pid 123 (picocom)`.
pub fn holders(path: &Path) -> Vec<String> {
    let Ok(target) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target))
        {
            let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            out.push(format!("pid {pid} ({})", comm.trim()));
        }
    }
    out
}

/// A UUCP lock file, removed on drop.
#[derive(Debug)]
struct UucpLock(PathBuf);

impl UucpLock {
    fn take(device: &Path) -> Result<UucpLock, PortError> {
        let name = device
            .canonicalize()
            .unwrap_or_else(|_| device.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = ["/var/lock", "/run/lock"]
            .into_iter()
            .map(Path::new)
            .find(|d| d.is_dir())
            .unwrap_or(Path::new("/var/lock"));
        let lock = dir.join(format!("LCK..{name}"));
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    // The classic format: the PID as 10 characters and a newline.
                    let _ = writeln!(f, "{:>10}", std::process::id());
                    return Ok(UucpLock(lock));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&lock)
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok());
                    // SAFETY: kill with signal 0 only checks the PID exists.
                    let alive = pid.is_some_and(|p| p > 0 && unsafe { libc::kill(p, 0) } == 0);
                    if alive {
                        return Err(PortError::Busy {
                            path: device.to_path_buf(),
                            holder: pid.map(|p| format!("pid {p} (UUCP lock {})", lock.display())),
                        });
                    }
                    // Stale: its owner is gone.
                    let _ = std::fs::remove_file(&lock);
                }
                Err(source) => return Err(PortError::Io { path: lock, source }),
            }
        }
        Err(PortError::Busy {
            path: device.to_path_buf(),
            holder: Some(format!("UUCP lock {}", lock.display())),
        })
    }
}

impl Drop for UucpLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An open, configured, exclusively held serial port, readable and
/// writable from tokio.
#[derive(Debug)]
pub struct SerialTransport {
    fd: AsyncFd<OwnedFd>,
    path: PathBuf,
    _uucp: Option<UucpLock>,
}

/// Checks the device before `serialport` opens it, for precise errors.
fn precheck(path: &Path) -> Result<(), PortError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| PortError::NotFound {
        path: path.to_path_buf(),
        available: vec![],
    })?;
    // SAFETY: a valid C string; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => PortError::NotFound {
                path: path.to_path_buf(),
                available: crate::discover::list_ports()
                    .into_iter()
                    .map(|p| p.display_name())
                    .collect(),
            },
            Some(libc::EACCES) | Some(libc::EPERM) => PortError::Permission {
                path: path.to_path_buf(),
            },
            Some(libc::EBUSY) => PortError::Busy {
                path: path.to_path_buf(),
                holder: holders(path).into_iter().next(),
            },
            _ => PortError::Io {
                path: path.to_path_buf(),
                source: err,
            },
        });
    }
    // SAFETY: fd is ours.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: flock on our descriptor; released when it closes.
    if unsafe { libc::flock(owned.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(PortError::Busy {
            path: path.to_path_buf(),
            holder: holders(path).into_iter().next(),
        });
    }
    Ok(())
}

impl SerialTransport {
    /// Opens and configures `path` exclusively.
    pub fn open(path: &Path, cfg: &SerialConfig) -> Result<SerialTransport, PortError> {
        precheck(path)?;
        let uucp = if cfg.uucp_lock {
            Some(UucpLock::take(path)?)
        } else {
            None
        };
        let port = serialport::new(path.to_string_lossy(), cfg.baud)
            .data_bits(cfg.data_bits)
            .parity(cfg.parity)
            .stop_bits(cfg.stop_bits)
            .flow_control(cfg.flow_control)
            .exclusive(true)
            .open_native()
            .map_err(|e| match e.kind() {
                serialport::ErrorKind::NoDevice => PortError::Busy {
                    path: path.to_path_buf(),
                    holder: holders(path).into_iter().next(),
                },
                _ => PortError::Config {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                },
            })?;
        let raw = port.into_raw_fd();
        // SAFETY: `into_raw_fd` hands us ownership of the descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_nonblocking(&fd).map_err(|source| PortError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: an OwnedFd keeps its descriptor open and unchanged for
        // as long as the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| PortError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(SerialTransport {
            fd,
            path: path.to_path_buf(),
            _uucp: uucp,
        })
    }

    /// The device path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens `path` as soon as it is back: for reconnecting after a USB
/// adapter was unplugged (or an emulator restarted its pty). Retries
/// while the device is missing or busy; other errors end the wait.
pub async fn wait_for_port(
    path: &Path,
    cfg: &SerialConfig,
    timeout: std::time::Duration,
) -> Result<SerialTransport, PortError> {
    let end = std::time::Instant::now() + timeout;
    loop {
        match SerialTransport::open(path, cfg) {
            Ok(t) => return Ok(t),
            Err(e @ (PortError::NotFound { .. } | PortError::Busy { .. })) => {
                if std::time::Instant::now() >= end {
                    return Err(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl AsyncRead for SerialTransport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let res = guard.try_io(|inner| {
                // SAFETY: reading into an initialized buffer of that length.
                let n = unsafe {
                    libc::read(
                        inner.as_raw_fd(),
                        unfilled.as_mut_ptr().cast(),
                        unfilled.len(),
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // A vanished adapter or a closed pty master reads EIO: the
                // same as the end of the stream for the caller.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for SerialTransport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            let res = guard.try_io(|inner| {
                // SAFETY: writing from a valid slice.
                let n = unsafe { libc::write(inner.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Transport for SerialTransport {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn send_break(&mut self) -> io::Result<()> {
        // SAFETY: tcsendbreak on our descriptor; 0 = 0.25-0.5 s.
        if unsafe { libc::tcsendbreak(self.fd.get_ref().as_raw_fd(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_strings() {
        let c = SerialConfig::default().with_framing("7E2").unwrap();
        assert_eq!(
            (c.data_bits, c.parity, c.stop_bits),
            (DataBits::Seven, Parity::Even, StopBits::Two)
        );
        assert!(SerialConfig::default().with_framing("8X1").is_err());
        assert!(SerialConfig::default().with_framing("8N").is_err());
    }

    #[test]
    fn missing_port_lists_what_exists() {
        let err =
            SerialTransport::open(Path::new("/dev/ttyUSB-lmx-none"), &SerialConfig::default())
                .unwrap_err();
        assert!(matches!(err, PortError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("/dev/ttyUSB-lmx-none"));
    }
}
