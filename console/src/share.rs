//! Sharing one console between several lmx processes.
//!
//! A serial port can be open in one process only (lmx opens it
//! exclusively), yet a person watching `lmx console` should not have to
//! close it for `lmx tftpboot` to drive U-Boot. The process holding a
//! port therefore listens on a per-port unix socket
//! ([`socket_path`]: `$XDG_RUNTIME_DIR/lmx/console-<port>.sock`). Other
//! processes connect and say whether they want to write or to watch:
//!
//! ```text
//! client: LMX-CONSOLE 1 WRITE pid 4242 (lmx tftpboot)\n
//! server: OK /dev/ttyUSB0\n          (or: BUSY pid 4100 (lmx tftpboot)\n)
//! ... then raw console bytes both ways
//! ```
//!
//! Everyone sees everything the board prints; exactly one client may
//! write at a time, and while one does, the holder's own keyboard is
//! refused too. A second writer gets `BUSY` naming the one that writes.
//! After the handshake the socket is a plain byte stream, so a writer
//! hands it straight to [`UBootShell`](crate::UBootShell) as a
//! [`Transport`].

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::serial::{PortError, SerialConfig};
use crate::transport::{Endpoint, Transport};

const HELLO: &str = "LMX-CONSOLE 1";

/// What a client wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Send bytes to the board (one writer at a time).
    Write,
    /// Only see what the board prints.
    Watch,
}

/// A refused or failed attach.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ShareError {
    /// Another client is writing.
    #[error("the console is being driven by {holder}")]
    #[diagnostic(
        code(lmx_console::share_busy),
        help("wait for it to finish, or watch read-only with `lmx console` (it attaches as a watcher)")
    )]
    Busy {
        /// Who writes.
        holder: String,
    },
    /// The socket could not be used.
    #[error("console share socket {path}: {source}")]
    #[diagnostic(code(lmx_console::share_io))]
    Io {
        /// The socket.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The directory for share sockets: `$XDG_RUNTIME_DIR/lmx`, else `/tmp/lmx-UID`.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("lmx"),
        // SAFETY: getuid cannot fail.
        _ => PathBuf::from(format!("/tmp/lmx-{}", unsafe { libc::getuid() })),
    }
}

/// The share socket of `endpoint`: one name per physical port, whatever
/// path (by-id link or `/dev/ttyUSB0`) each process used.
pub fn socket_path(endpoint: &Endpoint) -> PathBuf {
    let id = match endpoint {
        Endpoint::Serial(p) => std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
        Endpoint::Unix(p) => format!("unix{}", p.display()),
        Endpoint::Tcp(a) => format!("tcp-{a}"),
        Endpoint::Rfc2217(a) => format!("rfc2217-{a}"),
    };
    let id: String = id
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    socket_dir().join(format!("console-{id}.sock"))
}

/// This process, as other processes are told: `pid 4242 (lmx)`.
pub fn client_name(what: &str) -> String {
    format!("pid {} ({what})", std::process::id())
}

#[derive(Debug, Default)]
struct Hub {
    next: u64,
    clients: HashMap<u64, (Role, String, mpsc::Sender<Vec<u8>>)>,
    writer: Option<u64>,
}

/// The holder's side: accepts clients, fans board output out to them,
/// and collects what the writing client sends. The socket file is
/// removed on drop.
#[derive(Debug)]
pub struct ShareServer {
    hub: Arc<Mutex<Hub>>,
    to_port: mpsc::Receiver<Vec<u8>>,
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ShareServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ShareServer {
    /// Listens on `path` (a stale socket left by a dead holder is replaced).
    pub async fn bind(path: &Path, port: String) -> Result<ShareServer, ShareError> {
        let io_err = |source| ShareError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(ShareError::Busy {
                    holder: format!("another lmx that shares this port at {}", path.display()),
                });
            }
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        let hub = Arc::new(Mutex::new(Hub::default()));
        let (tx, to_port) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(listener, hub.clone(), tx, port));
        Ok(ShareServer {
            hub,
            to_port,
            path: path.to_path_buf(),
            task,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends board output to every client (a client too slow to keep up is dropped).
    pub fn broadcast(&self, bytes: &[u8]) {
        if let Ok(mut hub) = self.hub.lock() {
            let mut gone = Vec::new();
            for (id, (_, _, tx)) in hub.clients.iter() {
                if tx.try_send(bytes.to_vec()).is_err() {
                    gone.push(*id);
                }
            }
            for id in gone {
                hub.clients.remove(&id);
                if hub.writer == Some(id) {
                    hub.writer = None;
                }
            }
        }
    }

    /// Sends one of lmx's status lines to the watchers only (writers get
    /// pure board output, which their U-Boot driver parses).
    pub fn status(&self, line: &str) {
        if let Ok(hub) = self.hub.lock() {
            for (role, _, tx) in hub.clients.values() {
                if *role == Role::Watch {
                    let _ = tx.try_send(format!("\r\n[lmx] {line}\r\n").into_bytes());
                }
            }
        }
    }

    /// The client writing now, if any.
    pub fn writer(&self) -> Option<String> {
        let hub = self.hub.lock().ok()?;
        let id = hub.writer?;
        hub.clients.get(&id).map(|(_, n, _)| n.clone())
    }

    /// Bytes the writing client sent for the board.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.to_port.recv().await
    }
}

async fn accept_loop(
    listener: UnixListener,
    hub: Arc<Mutex<Hub>>,
    to_port: mpsc::Sender<Vec<u8>>,
    port: String,
) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_client(
            stream,
            hub.clone(),
            to_port.clone(),
            port.clone(),
        ));
    }
}

async fn serve_client(
    stream: UnixStream,
    hub: Arc<Mutex<Hub>>,
    to_port: mpsc::Sender<Vec<u8>>,
    port: String,
) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut hello = String::new();
    rd.read_line(&mut hello).await?;
    let Some(rest) = hello.trim_end().strip_prefix(HELLO) else {
        wr.write_all(b"ERR expected LMX-CONSOLE 1\n").await?;
        return Ok(());
    };
    let rest = rest.trim_start();
    let (role, name) = if let Some(n) = rest.strip_prefix("WRITE") {
        (Role::Write, n.trim().to_string())
    } else if let Some(n) = rest.strip_prefix("WATCH") {
        (Role::Watch, n.trim().to_string())
    } else {
        wr.write_all(b"ERR expected WRITE or WATCH\n").await?;
        return Ok(());
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
    let admitted: Result<u64, String> = {
        let mut h = hub.lock().map_err(|_| io::Error::other("hub poisoned"))?;
        let busy = match (role, h.writer.and_then(|w| h.clients.get(&w))) {
            (Role::Write, Some(w)) => Some(w.1.clone()),
            _ => None,
        };
        match busy {
            Some(holder) => Err(holder),
            None => {
                h.next += 1;
                let id = h.next;
                h.clients.insert(id, (role, name, tx));
                if role == Role::Write {
                    h.writer = Some(id);
                }
                Ok(id)
            }
        }
    };
    let id = match admitted {
        Ok(id) => id,
        Err(holder) => {
            wr.write_all(format!("BUSY {holder}\n").as_bytes()).await?;
            return Ok(());
        }
    };
    let result = async {
        wr.write_all(format!("OK {port}\n").as_bytes()).await?;
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(bytes) => wr.write_all(&bytes).await?,
                    None => return Ok::<(), io::Error>(()),
                },
                n = rd.read(&mut buf) => {
                    let n = n?;
                    if n == 0 {
                        return Ok(());
                    }
                    // Watchers' keys go nowhere.
                    if role == Role::Write && to_port.send(buf[..n].to_vec()).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
    .await;
    if let Ok(mut h) = hub.lock() {
        h.clients.remove(&id);
        if h.writer == Some(id) {
            h.writer = None;
        }
    }
    result
}

/// Attaches to the holder of a port through its share socket.
pub async fn connect(path: &Path, role: Role, name: &str) -> Result<UnixStream, ShareError> {
    let io_err = |source| ShareError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut s = UnixStream::connect(path).await.map_err(io_err)?;
    let verb = match role {
        Role::Write => "WRITE",
        Role::Watch => "WATCH",
    };
    s.write_all(format!("{HELLO} {verb} {name}\n").as_bytes())
        .await
        .map_err(io_err)?;
    // Read the answer byte by byte: nothing after the newline may be lost.
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.map_err(io_err)? == 0 {
            return Err(io_err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the holder closed the connection",
            )));
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    if line.starts_with("OK") {
        Ok(s)
    } else if let Some(holder) = line.strip_prefix("BUSY ") {
        Err(ShareError::Busy {
            holder: holder.to_string(),
        })
    } else {
        Err(io_err(io::Error::other(line)))
    }
}

/// Why [`open_console`] failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OpenError {
    /// Opening the port itself failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Port(#[from] PortError),
    /// Another lmx holds the port and someone else is writing.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Share(#[from] ShareError),
}

/// Opens a console for driving U-Boot: through the holder's share socket
/// when another lmx holds the port (as writer `name`), else directly.
pub async fn open_console(
    endpoint: &Endpoint,
    cfg: &SerialConfig,
    name: &str,
) -> Result<Box<dyn Transport>, OpenError> {
    let sock = socket_path(endpoint);
    if sock.exists() {
        match connect(&sock, Role::Write, name).await {
            Ok(s) => return Ok(Box::new(s)),
            Err(e @ ShareError::Busy { .. }) => return Err(e.into()),
            // A stale socket: the holder is gone; open the port ourselves.
            Err(ShareError::Io { .. }) => {}
        }
    }
    Ok(endpoint.open(cfg).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_writer_many_watchers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let mut server = ShareServer::bind(&path, "/dev/ttyTEST".into())
            .await
            .unwrap();
        let mut w = connect(&path, Role::Write, "pid 1 (lmx tftpboot)")
            .await
            .unwrap();
        let mut watch = connect(&path, Role::Watch, "pid 2 (lmx console)")
            .await
            .unwrap();
        let busy = connect(&path, Role::Write, "pid 3 (lmx flash)")
            .await
            .unwrap_err();
        assert!(busy.to_string().contains("pid 1 (lmx tftpboot)"), "{busy}");
        assert_eq!(server.writer().as_deref(), Some("pid 1 (lmx tftpboot)"));
        w.write_all(b"version\r").await.unwrap();
        assert_eq!(server.recv().await.unwrap(), b"version\r");
        watch.write_all(b"ignored").await.unwrap();
        server.broadcast(b"U-Boot 2023.01\r\n");
        let mut buf = [0u8; 64];
        let n = w.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"U-Boot 2023.01\r\n");
        let n = watch.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"U-Boot 2023.01\r\n");
        // The writer leaves: the next one gets in.
        drop(w);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(server.writer().is_none());
        connect(&path, Role::Write, "pid 3 (lmx flash)")
            .await
            .unwrap();
        drop(server);
        assert!(!path.exists());
    }
}
