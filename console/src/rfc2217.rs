//! A serial port on a network serial server, over RFC 2217.
//!
//! Board labs publish each board's UART with ser2net (or a console
//! server) as a telnet connection with the COM-PORT-OPTION extension of
//! RFC 2217: the client sets baud rate, framing and flow control and
//! sends BREAK through telnet subnegotiations, and every data byte 0xFF
//! is doubled on the wire. A raw TCP connection (`tcp:`) gets none of
//! that: the server keeps whatever line settings it was started with,
//! and the telnet commands of a telnet-mode port arrive as garbage.
//!
//! [`Codec`] is the protocol, sans I/O: feed it the bytes the server
//! sent, get the board's bytes and the replies to send; give it the
//! bytes for the board, get them escaped. [`Rfc2217Transport`] runs it on
//! a TCP stream in a task of its own, so the rest of lmx sees the same
//! byte pipe as a local port ([`Transport`]), BREAK included.
//!
//! Written here rather than taken from a crate: the one Rust RFC 2217
//! crate (`rfc2217-rs` 0.1, one release in 2022) is a server and a
//! byte-at-a-time parser without the client's option negotiation or
//! confirmation tracking, which are most of what a client needs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serialport::{DataBits, FlowControl, Parity, StopBits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::serial::{PortError, SerialConfig};
use crate::transport::Transport;

/// Telnet "interpret as command".
pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

/// Telnet BINARY option (RFC 856).
pub const BINARY: u8 = 0;
/// Telnet ECHO option (RFC 857).
pub const ECHO: u8 = 1;
/// Telnet SUPPRESS-GO-AHEAD option (RFC 858).
pub const SGA: u8 = 3;
/// RFC 2217's COM-PORT-OPTION.
pub const COM_PORT: u8 = 44;

/// COM-PORT-OPTION commands, client to server (the server answers with
/// the same command plus 100).
pub mod cmd {
    /// Set (or, with 0, ask) the baud rate: 4 bytes, network order.
    pub const SET_BAUDRATE: u8 = 1;
    /// Data bits, 5 to 8.
    pub const SET_DATASIZE: u8 = 2;
    /// 1 none, 2 odd, 3 even, 4 mark, 5 space.
    pub const SET_PARITY: u8 = 3;
    /// 1 one, 2 two, 3 one and a half.
    pub const SET_STOPSIZE: u8 = 4;
    /// Flow control, BREAK, DTR, RTS.
    pub const SET_CONTROL: u8 = 5;
    /// The offset of a server's answer.
    pub const SERVER: u8 = 100;
}

/// `SET-CONTROL` values.
pub mod control {
    /// No flow control.
    pub const FLOW_NONE: u8 = 1;
    /// XON/XOFF.
    pub const FLOW_XONXOFF: u8 = 2;
    /// RTS/CTS.
    pub const FLOW_HARDWARE: u8 = 3;
    /// BREAK on.
    pub const BREAK_ON: u8 = 5;
    /// BREAK off.
    pub const BREAK_OFF: u8 = 6;
}

/// The line settings lmx asks the server for, as RFC 2217 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    /// Baud rate.
    pub baud: u32,
    /// `SET-DATASIZE` value.
    pub data_size: u8,
    /// `SET-PARITY` value.
    pub parity: u8,
    /// `SET-STOPSIZE` value.
    pub stop_size: u8,
    /// `SET-CONTROL` flow-control value.
    pub flow: u8,
}

impl LineSettings {
    /// The settings of a local port's configuration.
    pub fn of(cfg: &SerialConfig) -> LineSettings {
        LineSettings {
            baud: cfg.baud,
            data_size: match cfg.data_bits {
                DataBits::Five => 5,
                DataBits::Six => 6,
                DataBits::Seven => 7,
                DataBits::Eight => 8,
            },
            parity: match cfg.parity {
                Parity::None => 1,
                Parity::Odd => 2,
                Parity::Even => 3,
            },
            stop_size: match cfg.stop_bits {
                StopBits::One => 1,
                StopBits::Two => 2,
            },
            flow: match cfg.flow_control {
                FlowControl::None => control::FLOW_NONE,
                FlowControl::Software => control::FLOW_XONXOFF,
                FlowControl::Hardware => control::FLOW_HARDWARE,
            },
        }
    }

    /// The subnegotiations that request these settings, in order, each
    /// as (command, value bytes).
    fn requests(&self) -> Vec<(u8, Vec<u8>)> {
        vec![
            (cmd::SET_BAUDRATE, self.baud.to_be_bytes().to_vec()),
            (cmd::SET_DATASIZE, vec![self.data_size]),
            (cmd::SET_PARITY, vec![self.parity]),
            (cmd::SET_STOPSIZE, vec![self.stop_size]),
            (cmd::SET_CONTROL, vec![self.flow]),
        ]
    }
}

/// Where the server stands on one of our settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Not answered yet.
    Pending,
    /// The server answered with this value.
    Answered(Vec<u8>),
}

/// What the server said that is not data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The server refused the COM-PORT-OPTION (`DONT 44`): a plain telnet
    /// port whose line settings cannot be changed from here.
    ComPortRefused,
    /// A COM-PORT answer: command (without the +100) and value.
    Answer(u8, Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    Verb(u8),
    Sub,
    SubIac,
}

/// Telnet with the COM-PORT-OPTION, client side, sans I/O.
#[derive(Debug)]
pub struct Codec {
    state: State,
    sub: Vec<u8>,
    /// Options we announced WILL for and the server confirmed with DO.
    local: [bool; 256],
    /// Options we asked DO for and the server confirmed with WILL.
    remote: [bool; 256],
    /// Requests in flight, to avoid answering our own confirmations.
    asked_will: [bool; 256],
    asked_do: [bool; 256],
    /// A CR was the last data byte (non-binary mode: CR NUL is CR).
    after_cr: bool,
    notices: Vec<Notice>,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new()
    }
}

/// Appends `bytes` with every 0xFF doubled.
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
}

impl Codec {
    /// A fresh connection.
    pub fn new() -> Codec {
        Codec {
            state: State::Data,
            sub: Vec::new(),
            local: [false; 256],
            remote: [false; 256],
            asked_will: [false; 256],
            asked_do: [false; 256],
            after_cr: false,
            notices: Vec::new(),
        }
    }

    /// What the client sends first: binary both ways, no go-ahead, and
    /// the COM-PORT-OPTION.
    pub fn hello(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for opt in [BINARY, SGA, COM_PORT] {
            if !self.asked_will[opt as usize] {
                self.asked_will[opt as usize] = true;
                out.extend_from_slice(&[IAC, WILL, opt]);
            }
        }
        for opt in [BINARY, SGA] {
            self.asked_do[opt as usize] = true;
            out.extend_from_slice(&[IAC, DO, opt]);
        }
        out
    }

    /// One COM-PORT subnegotiation, escaped.
    pub fn subnegotiation(command: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![IAC, SB, COM_PORT, command];
        escape_into(&mut out, value);
        out.extend_from_slice(&[IAC, SE]);
        out
    }

    /// The requests for `settings`.
    pub fn configure(settings: &LineSettings) -> Vec<u8> {
        settings
            .requests()
            .iter()
            .flat_map(|(c, v)| Codec::subnegotiation(*c, v))
            .collect()
    }

    /// Whether the server agreed to the COM-PORT-OPTION.
    pub fn com_port(&self) -> bool {
        self.local[COM_PORT as usize]
    }

    /// Whether we send binary (no CR NUL stuffing).
    fn binary_out(&self) -> bool {
        self.local[BINARY as usize]
    }

    /// Escapes `data` for the wire (0xFF doubled; CR followed by NUL
    /// unless the server agreed to binary).
    pub fn encode(&self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            out.push(b);
            if b == IAC {
                out.push(IAC);
            } else if b == b'\r' && !self.binary_out() {
                out.push(0);
            }
        }
    }

    /// Takes the notices collected by [`Codec::decode`].
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Decodes bytes from the server: the board's bytes go to `data`, the
    /// replies the protocol requires to `reply`.
    pub fn decode(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        for &b in input {
            self.state = match self.state {
                State::Data => {
                    if b == IAC {
                        State::Iac
                    } else {
                        // Non-binary: CR NUL stands for CR.
                        let skip = b == 0 && self.after_cr && !self.remote[BINARY as usize];
                        if !skip {
                            data.push(b);
                        }
                        self.after_cr = b == b'\r';
                        State::Data
                    }
                }
                State::Iac => self.after_iac(b, data),
                State::Verb(verb) => {
                    self.option(verb, b, reply);
                    State::Data
                }
                State::Sub => {
                    if b == IAC {
                        State::SubIac
                    } else {
                        self.push_sub(b);
                        State::Sub
                    }
                }
                State::SubIac => match b {
                    IAC => {
                        self.push_sub(IAC);
                        State::Sub
                    }
                    SE => {
                        self.end_sub();
                        State::Data
                    }
                    // A malformed subnegotiation: drop it, keep the command.
                    _ => {
                        self.sub.clear();
                        self.after_iac(b, data)
                    }
                },
            };
        }
    }

    /// The state after `IAC b`.
    fn after_iac(&mut self, b: u8, data: &mut Vec<u8>) -> State {
        match b {
            IAC => {
                data.push(IAC);
                self.after_cr = false;
                State::Data
            }
            WILL | WONT | DO | DONT => State::Verb(b),
            SB => {
                self.sub.clear();
                State::Sub
            }
            // NOP, GA, data mark and the rest carry nothing for us.
            _ => State::Data,
        }
    }

    fn push_sub(&mut self, b: u8) {
        // A subnegotiation longer than any COM-PORT answer is noise.
        if self.sub.len() < 64 {
            self.sub.push(b);
        }
    }

    fn end_sub(&mut self) {
        let sub = std::mem::take(&mut self.sub);
        if let [COM_PORT, code, value @ ..] = sub.as_slice() {
            if *code > cmd::SERVER {
                self.notices
                    .push(Notice::Answer(code - cmd::SERVER, value.to_vec()));
            }
        }
    }

    fn option(&mut self, verb: u8, opt: u8, reply: &mut Vec<u8>) {
        let o = opt as usize;
        let wanted_local = matches!(opt, BINARY | SGA | COM_PORT);
        let wanted_remote = matches!(opt, BINARY | SGA | ECHO);
        match verb {
            DO => {
                if wanted_local {
                    if !self.asked_will[o] {
                        reply.extend_from_slice(&[IAC, WILL, opt]);
                        self.asked_will[o] = true;
                    }
                    self.local[o] = true;
                } else {
                    reply.extend_from_slice(&[IAC, WONT, opt]);
                }
            }
            DONT => {
                if self.local[o] || self.asked_will[o] {
                    if !self.asked_will[o] {
                        reply.extend_from_slice(&[IAC, WONT, opt]);
                    }
                    self.local[o] = false;
                    self.asked_will[o] = false;
                }
                if opt == COM_PORT {
                    self.notices.push(Notice::ComPortRefused);
                }
            }
            WILL => {
                if wanted_remote {
                    if !self.asked_do[o] {
                        reply.extend_from_slice(&[IAC, DO, opt]);
                        self.asked_do[o] = true;
                    }
                    self.remote[o] = true;
                } else {
                    reply.extend_from_slice(&[IAC, DONT, opt]);
                }
            }
            WONT => {
                if self.remote[o] && !self.asked_do[o] {
                    reply.extend_from_slice(&[IAC, DONT, opt]);
                }
                self.remote[o] = false;
                self.asked_do[o] = false;
            }
            _ => {}
        }
    }
}

/// What the connection task is asked to do besides moving bytes.
#[derive(Debug)]
enum Control {
    Break(Duration),
}

/// A console on a network serial server, spoken to over RFC 2217.
#[derive(Debug)]
pub struct Rfc2217Transport {
    io: DuplexStream,
    control: mpsc::UnboundedSender<Control>,
    peer: String,
}

/// How long lmx waits for a server's first telnet bytes, before and after
/// its one probe.
pub const FIRST_WORD: Duration = Duration::from_secs(2);

/// How long lmx waits for the server to answer the line settings.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(5);

impl Rfc2217Transport {
    /// Connects to `addr` (`HOST:PORT`), negotiates the COM-PORT-OPTION
    /// and `cfg`'s line settings, and waits until the server confirmed
    /// each of them. A server that refuses the option, never answers, or
    /// sets another baud rate than asked is an error naming what it did.
    pub async fn connect(addr: &str, cfg: &SerialConfig) -> Result<Rfc2217Transport, PortError> {
        let what = format!("rfc2217://{addr}");
        let mut tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| PortError::Connect {
                what: what.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let mut codec = Codec::new();
        let settings = LineSettings::of(cfg);
        let io_err = |source: io::Error| PortError::Connect {
            what: what.clone(),
            source,
        };
        let mut buf = vec![0u8; 4096];
        let mut early = Vec::new();

        // Nothing goes out before the server has shown it speaks telnet:
        // on a raw TCP port every negotiation byte would reach the board's
        // UART, where a boot menu may take it as a key. ser2net opens with
        // its own options; a server that waits for the client gets only
        // `IAC WILL COM-PORT` (0xff 0xfb ','), then must answer.
        let mut first = Vec::new();
        for probe in [false, true] {
            if probe {
                codec.asked_will[COM_PORT as usize] = true;
                tcp.write_all(&[IAC, WILL, COM_PORT])
                    .await
                    .map_err(io_err)?;
            }
            match tokio::time::timeout(FIRST_WORD, tcp.read(&mut buf)).await {
                Err(_) => continue,
                Ok(Err(e)) => return Err(io_err(e)),
                Ok(Ok(0)) => {
                    return Err(PortError::Negotiation {
                        what,
                        problem: "the server closed the connection at once (another client may hold the port)".into(),
                    })
                }
                Ok(Ok(n)) => {
                    first.extend_from_slice(&buf[..n]);
                    break;
                }
            }
        }
        match first.first() {
            Some(&IAC) => {}
            Some(_) => {
                return Err(PortError::Negotiation {
                    what,
                    problem: format!(
                        "the server sent data, not telnet negotiation ({:?}…): this is a raw TCP port; lmx sent nothing to it. Use tcp:HOST:PORT (the line settings are then the server's own)",
                        String::from_utf8_lossy(&first[..first.len().min(24)])
                    ),
                })
            }
            None => {
                return Err(PortError::Negotiation {
                    what,
                    problem: format!(
                        "no telnet negotiation from the server within {} s, even after `IAC WILL COM-PORT` (3 bytes, the only ones sent): not an RFC 2217 port; a raw TCP port is tcp:HOST:PORT",
                        2 * FIRST_WORD.as_secs()
                    ),
                })
            }
        }
        let mut reply = codec.hello();
        codec.decode(&first, &mut early, &mut reply);
        reply.extend(Codec::configure(&settings));
        tcp.write_all(&reply).await.map_err(io_err)?;

        // Wait for an answer to every request; keep board bytes that
        // arrive meanwhile.
        let wanted = settings.requests();
        let mut answers: Vec<Confirmation> = vec![Confirmation::Pending; wanted.len()];
        for notice in codec.take_notices() {
            if let Notice::Answer(code, value) = notice {
                if let Some(i) = wanted.iter().position(|(c, _)| *c == code) {
                    answers[i] = Confirmation::Answered(value);
                }
            }
        }
        let deadline = tokio::time::Instant::now() + NEGOTIATION_TIMEOUT;
        while answers.contains(&Confirmation::Pending) {
            let n = tokio::select! {
                r = tcp.read(&mut buf) => r.map_err(io_err)?,
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(PortError::Negotiation {
                        what,
                        problem: format!(
                            "the server answered {} of {} line settings within {} s (is it a telnet port with RFC 2217, e.g. ser2net's `telnet(rfc2217)` accepter? a raw TCP port is `tcp:HOST:PORT`)",
                            answers.iter().filter(|a| **a != Confirmation::Pending).count(),
                            wanted.len(),
                            NEGOTIATION_TIMEOUT.as_secs()
                        ),
                    });
                }
            };
            if n == 0 {
                return Err(PortError::Negotiation {
                    what,
                    problem: "the server closed the connection during the RFC 2217 negotiation (another client may hold the port)".into(),
                });
            }
            let mut reply = Vec::new();
            codec.decode(&buf[..n], &mut early, &mut reply);
            if !reply.is_empty() {
                tcp.write_all(&reply).await.map_err(io_err)?;
            }
            for notice in codec.take_notices() {
                match notice {
                    Notice::ComPortRefused => {
                        return Err(PortError::Negotiation {
                            what,
                            problem: "the server refused the COM-PORT-OPTION (a plain telnet port): its baud rate and framing cannot be set from here; use tcp:HOST:PORT if the server's own settings are right".into(),
                        })
                    }
                    Notice::Answer(code, value) => {
                        if let Some(i) = wanted.iter().position(|(c, _)| *c == code) {
                            answers[i] = Confirmation::Answered(value);
                        }
                    }
                }
            }
        }
        // The server answers with the value it set; only the baud rate is
        // checked strictly (some servers answer framing requests with 0).
        if let Confirmation::Answered(v) = &answers[0] {
            let got = <[u8; 4]>::try_from(v.as_slice())
                .ok()
                .map(u32::from_be_bytes);
            if got != Some(settings.baud) {
                return Err(PortError::Negotiation {
                    what,
                    problem: format!(
                        "asked for {} baud, the server set {}",
                        settings.baud,
                        got.map(|b| b.to_string())
                            .unwrap_or_else(|| format!("{v:02x?}"))
                    ),
                });
            }
        }

        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (control, rx) = mpsc::unbounded_channel();
        tokio::spawn(pump(tcp, theirs, codec, rx, early));
        Ok(Rfc2217Transport {
            io: ours,
            control,
            peer: what,
        })
    }
}

/// Moves bytes between the TCP stream and lmx's end of the pipe until
/// either side closes; answers the server's telnet commands; sends BREAKs.
async fn pump(
    tcp: TcpStream,
    mut pipe: DuplexStream,
    mut codec: Codec,
    mut control: mpsc::UnboundedReceiver<Control>,
    early: Vec<u8>,
) {
    let (mut rd, mut wr) = tcp.into_split();
    if !early.is_empty() && pipe.write_all(&early).await.is_err() {
        return;
    }
    let mut from_net = vec![0u8; 8192];
    let mut from_lmx = vec![0u8; 8192];
    loop {
        tokio::select! {
            r = rd.read(&mut from_net) => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                let (mut data, mut reply) = (Vec::new(), Vec::new());
                codec.decode(&from_net[..n], &mut data, &mut reply);
                codec.take_notices();
                if !reply.is_empty() && wr.write_all(&reply).await.is_err() {
                    return;
                }
                if !data.is_empty() && pipe.write_all(&data).await.is_err() {
                    return;
                }
            }
            r = pipe.read(&mut from_lmx) => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                let mut out = Vec::with_capacity(n + 8);
                codec.encode(&from_lmx[..n], &mut out);
                if wr.write_all(&out).await.is_err() {
                    return;
                }
            }
            c = control.recv() => match c {
                None => return,
                Some(Control::Break(d)) => {
                    let on = Codec::subnegotiation(cmd::SET_CONTROL, &[control::BREAK_ON]);
                    if wr.write_all(&on).await.is_err() { return; }
                    tokio::time::sleep(d).await;
                    let off = Codec::subnegotiation(cmd::SET_CONTROL, &[control::BREAK_OFF]);
                    if wr.write_all(&off).await.is_err() { return; }
                }
            },
        }
    }
}

impl AsyncRead for Rfc2217Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rfc2217Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Transport for Rfc2217Transport {
    fn describe(&self) -> String {
        self.peer.clone()
    }

    /// BREAK through `SET-CONTROL` (on, 250 ms, off), as a local UART's
    /// `tcsendbreak` gives.
    fn send_break(&mut self) -> io::Result<()> {
        self.control
            .send(Control::Break(Duration::from_millis(250)))
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!("{}: the connection is closed", self.peer),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(c: &mut Codec, bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut d, mut r) = (Vec::new(), Vec::new());
        c.decode(bytes, &mut d, &mut r);
        (d, r)
    }

    #[test]
    fn data_is_unescaped_whatever_the_split() {
        let wire = [b'a', IAC, IAC, b'b', IAC, IAC, IAC, IAC, b'c'];
        for cut in 0..=wire.len() {
            let mut c = Codec::new();
            c.remote[BINARY as usize] = true;
            let (mut d1, _) = decode(&mut c, &wire[..cut]);
            let (d2, _) = decode(&mut c, &wire[cut..]);
            d1.extend(d2);
            assert_eq!(d1, [b'a', IAC, b'b', IAC, IAC, b'c'], "cut at {cut}");
        }
    }

    #[test]
    fn outgoing_ff_is_doubled_and_cr_stuffed_until_binary() {
        let mut c = Codec::new();
        let mut out = Vec::new();
        c.encode(&[1, IAC, b'\r', 2], &mut out);
        assert_eq!(out, [1, IAC, IAC, b'\r', 0, 2]);
        c.hello();
        decode(&mut c, &[IAC, DO, BINARY]);
        let mut out = Vec::new();
        c.encode(&[b'\r', IAC], &mut out);
        assert_eq!(out, [b'\r', IAC, IAC]);
    }

    #[test]
    fn negotiation_answers_once_and_refuses_the_unknown() {
        let mut c = Codec::new();
        let hello = c.hello();
        assert!(hello.windows(3).any(|w| w == [IAC, WILL, COM_PORT]));
        // Confirmations of what we asked need no reply.
        let (_, r) = decode(
            &mut c,
            &[IAC, DO, COM_PORT, IAC, WILL, BINARY, IAC, DO, BINARY],
        );
        assert!(r.is_empty(), "{r:?}");
        assert!(c.com_port());
        // The server offers echo (accepted) and asks for terminal type
        // (24, refused), and asks us to echo (refused).
        let (_, r) = decode(&mut c, &[IAC, WILL, ECHO, IAC, DO, 24, IAC, DO, ECHO]);
        assert_eq!(r, [IAC, DO, ECHO, IAC, WONT, 24, IAC, WONT, ECHO]);
        // Repeated offers are not answered again (no loops).
        let (_, r) = decode(&mut c, &[IAC, WILL, ECHO]);
        assert!(r.is_empty());
    }

    #[test]
    fn com_port_answers_and_refusal_become_notices() {
        let mut c = Codec::new();
        c.hello();
        let mut wire = vec![IAC, SB, COM_PORT, 101];
        escape_into(&mut wire, &115_200u32.to_be_bytes());
        wire.extend_from_slice(&[IAC, SE, b'x']);
        // A baud rate whose bytes contain 0xFF travels escaped.
        wire.extend_from_slice(&[IAC, SB, COM_PORT, 101, 0, 0, IAC, IAC, 0, IAC, SE]);
        wire.extend_from_slice(&[IAC, DONT, COM_PORT]);
        let (d, _) = decode(&mut c, &wire);
        assert_eq!(d, b"x");
        assert_eq!(
            c.take_notices(),
            [
                Notice::Answer(1, 115_200u32.to_be_bytes().to_vec()),
                Notice::Answer(1, vec![0, 0, 0xff, 0]),
                Notice::ComPortRefused
            ]
        );
        assert!(!c.com_port());
    }

    #[test]
    fn requests_carry_the_configured_line() {
        let cfg = SerialConfig::default().with_framing("7E2").unwrap();
        let s = LineSettings::of(&SerialConfig {
            baud: 57_600,
            ..cfg
        });
        let wire = Codec::configure(&s);
        let expect: Vec<u8> = [
            Codec::subnegotiation(1, &57_600u32.to_be_bytes()),
            Codec::subnegotiation(2, &[7]),
            Codec::subnegotiation(3, &[3]),
            Codec::subnegotiation(4, &[2]),
            Codec::subnegotiation(5, &[1]),
        ]
        .concat();
        assert_eq!(wire, expect);
        // 0xFF in a value is escaped inside the subnegotiation.
        assert_eq!(
            Codec::subnegotiation(1, &[0, 0, 0xff, 0]),
            [IAC, SB, COM_PORT, 1, 0, 0, IAC, IAC, 0, IAC, SE]
        );
    }

    #[test]
    fn a_broken_subnegotiation_is_dropped_and_the_command_kept() {
        let mut c = Codec::new();
        c.hello();
        // IAC inside SB followed by WILL: the SB is abandoned, WILL ECHO read.
        let (d, r) = decode(&mut c, &[IAC, SB, COM_PORT, 101, 1, IAC, WILL, ECHO, b'z']);
        assert_eq!(d, b"z");
        assert_eq!(r, [IAC, DO, ECHO]);
        assert!(c.take_notices().is_empty());
    }
}
