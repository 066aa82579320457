//! One byte pipe to a console, whatever carries it.
//!
//! A board's console reaches the host through a USB serial adapter, a
//! QEMU unix socket or pty, or a network serial server (ser2net). The
//! shell and the terminal only need "bytes in, bytes out" plus, on a
//! real UART, a BREAK; [`Transport`] is that, implemented for tokio's
//! [`UnixStream`] and [`TcpStream`] and for [`SerialTransport`]
//! (see [`crate::serial`]). [`Endpoint`] names any of them from one
//! command-line string.

use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::rfc2217::Rfc2217Transport;
use crate::serial::{PortError, SerialConfig, SerialTransport};

/// A byte stream to a console.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// What this is connected to, for messages (`/dev/ttyUSB0`, `unix:/tmp/s`).
    fn describe(&self) -> String;

    /// Sends a BREAK condition (a real UART only).
    fn send_break(&mut self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{} cannot send a BREAK", self.describe()),
        ))
    }
}

impl std::fmt::Debug for dyn Transport + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transport({})", self.describe())
    }
}

impl Transport for UnixStream {
    fn describe(&self) -> String {
        match self
            .peer_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()))
        {
            Some(p) => format!("unix:{}", p.display()),
            None => "unix socket".to_string(),
        }
    }
}

impl Transport for TcpStream {
    fn describe(&self) -> String {
        match self.peer_addr() {
            Ok(a) => format!("tcp:{a}"),
            Err(_) => "tcp".to_string(),
        }
    }
}

impl Transport for tokio::io::DuplexStream {
    fn describe(&self) -> String {
        "in-memory pipe".to_string()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }

    fn send_break(&mut self) -> io::Result<()> {
        (**self).send_break()
    }
}

/// Where a console is, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A serial device (`/dev/ttyUSB0`, `/dev/serial/by-id/...`, a pty).
    Serial(PathBuf),
    /// A unix stream socket (`unix:PATH`), e.g. QEMU `-serial unix:`.
    Unix(PathBuf),
    /// A TCP address (`tcp:HOST:PORT`), e.g. ser2net in raw mode.
    Tcp(String),
    /// A network serial server speaking RFC 2217 (`rfc2217://HOST:PORT`),
    /// e.g. ser2net's `telnet(rfc2217)` accepter or a labgrid exporter.
    Rfc2217(String),
}

impl Endpoint {
    /// Parses `unix:PATH`, `tcp:HOST:PORT`, `rfc2217://HOST:PORT` (also
    /// `rfc2217:HOST:PORT`), or a device path.
    pub fn parse(s: &str) -> Endpoint {
        if let Some(a) = s
            .strip_prefix("rfc2217://")
            .or_else(|| s.strip_prefix("rfc2217:"))
        {
            Endpoint::Rfc2217(a.trim_end_matches('/').to_string())
        } else if let Some(p) = s.strip_prefix("unix:") {
            Endpoint::Unix(PathBuf::from(p))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            Endpoint::Tcp(a.to_string())
        } else {
            Endpoint::Serial(PathBuf::from(s))
        }
    }

    /// Opens the endpoint (serial ports with `cfg`, exclusively).
    pub async fn open(&self, cfg: &SerialConfig) -> Result<Box<dyn Transport>, PortError> {
        match self {
            Endpoint::Serial(p) => Ok(Box::new(SerialTransport::open(p, cfg)?)),
            Endpoint::Unix(p) => UnixStream::connect(p)
                .await
                .map(|s| Box::new(s) as Box<dyn Transport>)
                .map_err(|source| PortError::Connect {
                    what: format!("unix:{}", p.display()),
                    source,
                }),
            Endpoint::Tcp(a) => TcpStream::connect(a.as_str())
                .await
                .map(|s| {
                    let _ = s.set_nodelay(true);
                    Box::new(s) as Box<dyn Transport>
                })
                .map_err(|source| PortError::Connect {
                    what: format!("tcp:{a}"),
                    source,
                }),
            Endpoint::Rfc2217(a) => Rfc2217Transport::connect(a, cfg)
                .await
                .map(|t| Box::new(t) as Box<dyn Transport>),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Serial(p) => write!(f, "{}", p.display()),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
            Endpoint::Rfc2217(a) => write!(f, "rfc2217://{a}"),
        }
    }
}
