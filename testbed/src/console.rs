//! A console stream with a transcript and a small `expect`.
//!
//! The test bed needs to read a board's console until some text shows up,
//! with a deadline, and to type into it. That is all this is: the real
//! U-Boot driver (pacing, echo checks, exit codes) belongs to
//! `lmx-console`. Every byte received is kept in a transcript so that a
//! failure can show the last lines, and can be copied live to a writer
//! (stdout, a log file) with [`ConsoleStream::tee`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The transport under a [`ConsoleStream`].
#[derive(Debug)]
enum Transport {
    Unix(UnixStream),
    Tty(File),
}

impl Transport {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Transport::Unix(s) => s.as_fd(),
            Transport::Tty(f) => f.as_fd(),
        }
    }
}

/// A board console: a unix socket or a tty, read with deadlines.
pub struct ConsoleStream {
    transport: Transport,
    transcript: Vec<u8>,
    /// Start of the text not yet consumed by an `expect`.
    cursor: usize,
    tee: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for ConsoleStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleStream")
            .field("transport", &self.transport)
            .field("received", &self.transcript.len())
            .finish()
    }
}

/// How long to retry connecting while QEMU finishes setting up its socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl ConsoleStream {
    /// Connects to a unix-socket console (QEMU `-serial unix:…,server=on`),
    /// retrying while the socket is not yet accepting.
    pub fn connect_unix(path: &Path) -> Result<ConsoleStream> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e)
                    if Instant::now() < deadline
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                        ) =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(Error::io(format!(
                        "connecting to the console socket {}",
                        path.display()
                    ))(e))
                }
            }
        };
        Ok(Self::new(Transport::Unix(stream)))
    }

    /// Opens a tty (e.g. the `/dev/pts/N` of QEMU's `-serial pty`, or a USB
    /// serial adapter) in raw mode at 115200 baud, 8N1, no flow control.
    pub fn open_tty(path: &Path) -> Result<ConsoleStream> {
        let ctx = || format!("opening the console tty {}", path.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .map_err(Error::io(ctx()))?;
        // SAFETY: termios is plain data; the fd is open for the whole block.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(file.as_raw_fd(), &mut t) != 0 {
                return Err(Error::io(ctx())(std::io::Error::last_os_error()));
            }
            libc::cfmakeraw(&mut t);
            t.c_cflag &= !(libc::CRTSCTS | libc::CSTOPB | libc::PARENB);
            t.c_cflag |= libc::CLOCAL | libc::CREAD | libc::CS8;
            libc::cfsetispeed(&mut t, libc::B115200);
            libc::cfsetospeed(&mut t, libc::B115200);
            if libc::tcsetattr(file.as_raw_fd(), libc::TCSANOW, &t) != 0 {
                return Err(Error::io(ctx())(std::io::Error::last_os_error()));
            }
        }
        Ok(Self::new(Transport::Tty(file)))
    }

    fn new(transport: Transport) -> ConsoleStream {
        ConsoleStream {
            transport,
            transcript: Vec::new(),
            cursor: 0,
            tee: None,
        }
    }

    /// Copies every byte received from now on to `w` as it arrives.
    pub fn tee(&mut self, w: impl Write + Send + 'static) {
        self.tee = Some(Box::new(w));
    }

    /// Everything received so far.
    pub fn transcript(&self) -> &[u8] {
        &self.transcript
    }

    /// The last `lines` lines of the transcript, for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = String::from_utf8_lossy(&self.transcript);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends `text` as is.
    pub fn send(&mut self, text: &str) -> Result<()> {
        let r = match &mut self.transport {
            Transport::Unix(s) => s.write_all(text.as_bytes()),
            Transport::Tty(f) => f.write_all(text.as_bytes()),
        };
        r.map_err(Error::io("writing to the console"))
    }

    /// Sends `line` followed by a carriage return, as a terminal does.
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        self.send(&format!("{line}\r"))
    }

    /// Reads until `needle` appears after the last match, or `timeout`.
    /// Returns the text from the previous match up to the start of
    /// `needle`, and moves past `needle`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        self.expect_any(&[needle], timeout).map(|(_, text)| text)
    }

    /// Like [`ConsoleStream::expect`] for the first of several needles to
    /// appear; returns its index and the text before it.
    pub fn expect_any(&mut self, needles: &[&str], timeout: Duration) -> Result<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let what = || {
            needles
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        loop {
            if let Some((i, at)) = self.find(needles) {
                let text = String::from_utf8_lossy(&self.transcript[self.cursor..at]).into_owned();
                self.cursor = at + needles[i].len();
                return Ok((i, text));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    what: what(),
                    secs: timeout.as_secs_f64(),
                    tail: self.tail(15),
                });
            }
            match self.read_some(deadline - now)? {
                Some(0) => {
                    return Err(Error::ConsoleClosed {
                        what: what(),
                        tail: self.tail(15),
                    })
                }
                _ => continue,
            }
        }
    }

    /// Earliest match of any needle at or after the cursor.
    fn find(&self, needles: &[&str]) -> Option<(usize, usize)> {
        let hay = &self.transcript[self.cursor..];
        needles
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let n = n.as_bytes();
                (!n.is_empty() && hay.len() >= n.len())
                    .then(|| hay.windows(n.len()).position(|w| w == n))
                    .flatten()
                    .map(|p| (i, self.cursor + p))
            })
            .min_by_key(|&(_, at)| at)
    }

    /// Waits up to `wait` for input and appends it to the transcript.
    /// `Some(0)` is end of stream, `None` a timeout.
    fn read_some(&mut self, wait: Duration) -> Result<Option<usize>> {
        let mut pfd = libc::pollfd {
            fd: self.transport.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(Error::io("waiting for console input")(e));
        }
        if n == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; 4096];
        let r = match &mut self.transport {
            Transport::Unix(s) => s.read(&mut buf),
            Transport::Tty(f) => f.read(&mut buf),
        };
        let got = match r {
            Ok(k) => k,
            // A pty whose other side is gone reports EIO, not EOF.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(None),
            Err(e) => return Err(Error::io("reading the console")(e)),
        };
        self.transcript.extend_from_slice(&buf[..got]);
        if let Some(t) = &mut self.tee {
            let _ = t.write_all(&buf[..got]);
            let _ = t.flush();
        }
        Ok(Some(got))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_consumes_in_order_and_times_out_with_tail() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut c = ConsoleStream::new(Transport::Unix(a));
        b.write_all(b"U-Boot 2023.01\r\nHit any key to stop autoboot:  2 \r\n=> ")
            .unwrap();
        let before = c
            .expect("Hit any key to stop autoboot", Duration::from_secs(2))
            .unwrap();
        assert_eq!(before, "U-Boot 2023.01\r\n");
        let (i, _) = c
            .expect_any(&["nope", "\n=> "], Duration::from_secs(2))
            .unwrap();
        assert_eq!(i, 1);
        match c.expect("=> ", Duration::from_millis(50)) {
            Err(Error::Timeout { tail, .. }) => assert!(tail.contains("U-Boot 2023.01")),
            other => panic!("expected a timeout, got {other:?}"),
        }
        c.send_line("version").unwrap();
        let mut got = [0u8; 8];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"version\r");
        drop(b);
        assert!(matches!(
            c.expect("x", Duration::from_secs(2)),
            Err(Error::ConsoleClosed { .. })
        ));
    }
}
