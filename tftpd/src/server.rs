//! The tokio adapter: sockets, files and tasks around the sans-I/O core.
//!
//! One listener task per bound address reads requests; each accepted
//! request becomes its own task with its own socket (a new transfer ID, as
//! RFC 1350 asks) or, in single-port mode, shares the listening socket and
//! receives its packets through a channel keyed by the client's address
//! (for firewalls and NAT that only pass port 69). A read (RRQ) exchanges
//! its packets from a thread of tokio's blocking pool with blocking
//! receives: one wake-up per ACK instead of a reactor round and a task
//! switch, which is most of a lock-step block's cost on a fast link
//! (`bench/reaction.sh` measures the server's share); before sleeping it
//! spins briefly for the ACK when [`crate::busy`] allows. A semaphore bounds
//! how many transfers (and so threads) run at once. Files are read in
//! chunks into the transfer's window buffer, so memory does not grow with
//! file size. Shutdown is a
//! watch channel: listeners stop reading, every transfer sends its client
//! an ERROR and ends, and `run` returns a summary of each transfer.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::busy::{BusyPoll, SpinSlots};
use crate::event::{Direction, Event, TransferInfo, TransferSummary};
use crate::netascii::{Decoder, Encoder};
use crate::options::{self, Limits, Negotiated};
use crate::packet::{self, ErrorCode, Mode, Packet, Request};
use crate::policy::{normalize_ip, Policy};
use crate::transfer::{ReadTransfer, Received, TransferConfig, WriteTransfer};

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on (port 0 picks a free port).
    pub bind: Vec<SocketAddr>,
    /// Negotiation caps.
    pub limits: Limits,
    /// Timer and retry policy for each transfer.
    pub transfer: TransferConfig,
    /// Most transfers running at once; further requests get ERROR 0.
    pub max_transfers: usize,
    /// Answer from the listening port instead of a new port per transfer.
    pub single_port: bool,
    /// Longest a read transfer spins for the client's answer before it
    /// sleeps (zero: always sleep); see [`crate::busy`].
    pub busy_poll: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 69)],
            limits: Limits::default(),
            transfer: TransferConfig::default(),
            max_transfers: 64,
            single_port: false,
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }
}

/// Default of [`ServerConfig::busy_poll`]: a client on the same host or a
/// fast LAN answers well within it; a boot loader behind a slow link
/// rarely does, and is soon no longer spun for.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding a port below 1024 without the capability.
    #[error("cannot listen on {addr}: port {port} is privileged. Use --port with a port above 1023 (e.g. --port 6969), run as root, or grant the capability once with `sudo setcap cap_net_bind_service=+ep $(command -v lmx)`")]
    Privileged {
        /// The address.
        addr: SocketAddr,
        /// The port.
        port: u16,
    },
    /// Port already in use.
    #[error("cannot listen on {addr}: the address is already in use (another TFTP server such as tftpd-hpa, dnsmasq or atftpd may be running; stop it or choose --port)")]
    InUse {
        /// The address.
        addr: SocketAddr,
    },
    /// Any other bind failure.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    config: ServerConfig,
    policy: Policy,
    sockets: Vec<Arc<UdpSocket>>,
    events: Option<mpsc::UnboundedSender<Event>>,
}

struct Shared {
    config: ServerConfig,
    policy: Policy,
    events: Option<mpsc::UnboundedSender<Event>>,
    next_id: AtomicU64,
    permits: Arc<Semaphore>,
    spinners: SpinSlots,
}

impl Shared {
    fn emit(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Dual-stack when bound to [::], so one socket serves both families.
        let _ = s.set_only_v6(false);
    }
    // Large windows arrive in bursts: leave room in the kernel queues.
    let _ = s.set_recv_buffer_size(1 << 20);
    let _ = s.set_send_buffer_size(1 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn bind_error(addr: SocketAddr, e: io::Error) -> ServerError {
    match e.kind() {
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => ServerError::Privileged {
            addr,
            port: addr.port(),
        },
        io::ErrorKind::AddrInUse => ServerError::InUse { addr },
        _ => ServerError::Bind { addr, source: e },
    }
}

impl Server {
    /// Binds every configured address. A lone `[::]` falls back to
    /// `0.0.0.0` on hosts without IPv6.
    pub async fn bind(config: ServerConfig, policy: Policy) -> Result<Server, ServerError> {
        let mut sockets = Vec::new();
        for &addr in &config.bind {
            let std_sock = match bind_udp(addr) {
                Ok(s) => s,
                Err(e)
                    if config.bind.len() == 1
                        && addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
                        ) =>
                {
                    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
                    tracing::info!("IPv6 unavailable ({e}); listening on {v4}");
                    bind_udp(v4).map_err(|e| bind_error(v4, e))?
                }
                Err(e) => return Err(bind_error(addr, e)),
            };
            let sock = UdpSocket::from_std(std_sock).map_err(|e| bind_error(addr, e))?;
            sockets.push(Arc::new(sock));
        }
        Ok(Server {
            config,
            policy,
            sockets,
            events: None,
        })
    }

    /// Sends transfer events to `tx`.
    pub fn with_events(mut self, tx: mpsc::UnboundedSender<Event>) -> Self {
        self.events = Some(tx);
        self
    }

    /// The addresses actually bound (with the real port when 0 was asked).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes, then ends every transfer and
    /// returns their summaries in start order.
    pub async fn run<F: Future<Output = ()>>(self, shutdown: F) -> Vec<TransferSummary> {
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(self.config.max_transfers.max(1))),
            config: self.config,
            policy: self.policy,
            events: self.events,
            next_id: AtomicU64::new(1),
            spinners: SpinSlots::for_this_machine(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut listeners = JoinSet::new();
        for sock in self.sockets {
            listeners.spawn(listen(sock, shared.clone(), stop_rx.clone()));
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        let mut all = Vec::new();
        while let Some(r) = listeners.join_next().await {
            if let Ok(mut v) = r {
                all.append(&mut v);
            }
        }
        all.sort_by_key(|s| s.info.id);
        all
    }
}

/// Largest datagram we accept: the biggest block plus header, with slack.
const MAX_DATAGRAM: usize = 65536 + 512;

async fn listen(
    sock: Arc<UdpSocket>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Vec<TransferSummary> {
    let mut tasks: JoinSet<(SocketAddr, TransferSummary)> = JoinSet::new();
    let mut routes: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut summaries = Vec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(r) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((peer, s)) = r {
                    routes.remove(&peer);
                    summaries.push(s);
                }
            }
            r = sock.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!("receive error on listening socket: {e}");
                        continue;
                    }
                };
                let datagram = &buf[..n];
                if shared.config.single_port {
                    if let Some(tx) = routes.get(&from) {
                        if tx.try_send(datagram.to_vec()).is_ok() || !tx.is_closed() {
                            continue;
                        }
                        routes.remove(&from);
                    }
                }
                handle_request(&sock, &shared, &stop, &mut tasks, &mut routes, datagram, from).await;
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok((_, s)) = r {
            summaries.push(s);
        }
    }
    summaries
}

async fn reply_error(sock: &UdpSocket, to: SocketAddr, code: ErrorCode, msg: &str) {
    let _ = sock.send_to(&packet::error_packet(code, msg), to).await;
}

#[allow(clippy::too_many_arguments)]
async fn handle_request(
    sock: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
    tasks: &mut JoinSet<(SocketAddr, TransferSummary)>,
    routes: &mut HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    datagram: &[u8],
    from: SocketAddr,
) {
    let shown = SocketAddr::new(normalize_ip(from.ip()), from.port());
    let (request, direction) = match Packet::parse(datagram) {
        Ok(Packet::Rrq(r)) => (r, Direction::Read),
        Ok(Packet::Wrq(r)) => (r, Direction::Write),
        // Never answer an ERROR (no error loops); other packets have no
        // transfer on this port.
        Ok(Packet::Error { .. }) => return,
        Ok(_) => {
            tracing::debug!(client = %shown, "non-request packet on the listening port");
            reply_error(
                sock,
                from,
                ErrorCode::UnknownTid,
                "no transfer on this port",
            )
            .await;
            return;
        }
        Err(e) => {
            tracing::debug!(client = %shown, "malformed request: {e}");
            reply_error(sock, from, e.error_code(), &e.to_string()).await;
            return;
        }
    };
    let file = request.filename_lossy();
    let refuse = |code: ErrorCode, reason: String| {
        tracing::info!(client = %shown, file = %file, "refused: {reason}");
        shared.emit(Event::Refused {
            client: shown,
            file: file.clone(),
            code,
            reason,
        });
    };
    if !shared.policy.allows(from.ip()) {
        let msg = format!("client {} is not allowed on this server", shown.ip());
        refuse(ErrorCode::AccessViolation, msg.clone());
        reply_error(sock, from, ErrorCode::AccessViolation, &msg).await;
        return;
    }
    if request.mode == Mode::Mail {
        let msg = "mail mode is not supported".to_string();
        refuse(ErrorCode::IllegalOperation, msg.clone());
        reply_error(sock, from, ErrorCode::IllegalOperation, &msg).await;
        return;
    }
    let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
        let msg = format!(
            "server busy ({} transfers running); try again",
            shared.config.max_transfers
        );
        refuse(ErrorCode::NotDefined, msg.clone());
        reply_error(sock, from, ErrorCode::NotDefined, &msg).await;
        return;
    };
    let link = if shared.config.single_port {
        let (tx, rx) = mpsc::channel(256);
        routes.insert(from, tx);
        Link::Shared {
            sock: sock.clone(),
            rx,
        }
    } else {
        let local = sock
            .local_addr()
            .map(|a| SocketAddr::new(a.ip(), 0))
            .unwrap_or_else(|_| SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0));
        match bind_udp(local).and_then(UdpSocket::from_std) {
            Ok(s) => Link::Own(s),
            Err(e) => {
                let msg = format!("cannot open a transfer socket: {e}");
                refuse(ErrorCode::NotDefined, msg.clone());
                reply_error(sock, from, ErrorCode::NotDefined, &msg).await;
                return;
            }
        }
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let ctx = TransferCtx {
        shared: shared.clone(),
        id,
        peer: from,
        shown,
        started: Instant::now(),
        stop: stop.clone(),
        _permit: permit,
    };
    tasks.spawn(async move {
        let summary = match direction {
            Direction::Read => serve_read(ctx, link, request).await,
            Direction::Write => serve_write(ctx, link, request).await,
        };
        (from, summary)
    });
}

/// How a transfer exchanges datagrams with its client.
enum Link {
    /// Its own socket (own transfer ID).
    Own(UdpSocket),
    /// The listening socket, packets routed through a channel.
    Shared {
        sock: Arc<UdpSocket>,
        rx: mpsc::Receiver<Vec<u8>>,
    },
}

impl Link {
    async fn send(&self, data: &[u8], to: SocketAddr) {
        let sock = match self {
            Link::Own(s) => s,
            Link::Shared { sock, .. } => sock,
        };
        // A failed send (e.g. EPERM from a firewall drop, ENOBUFS) is a lost
        // packet like any other: the timer recovers it.
        if let Err(e) = sock.send_to(data, to).await {
            tracing::trace!("send to {to} failed: {e}");
        }
    }

    /// Receives the next datagram from the peer into `buf`; answers packets
    /// from foreign TIDs with ERROR 5 on the way.
    async fn recv(&mut self, buf: &mut Vec<u8>, peer: SocketAddr) -> usize {
        match self {
            Link::Own(s) => loop {
                buf.resize(MAX_DATAGRAM, 0);
                match s.recv_from(buf).await {
                    Ok((n, from)) if from == peer => return n,
                    Ok((_, from)) => {
                        tracing::debug!("packet from foreign TID {from}: ERROR 5");
                        let _ = s
                            .send_to(
                                &packet::error_packet(ErrorCode::UnknownTid, "unknown transfer ID"),
                                from,
                            )
                            .await;
                    }
                    Err(e) => tracing::trace!("receive error: {e}"),
                }
            },
            Link::Shared { rx, .. } => match rx.recv().await {
                Some(d) => {
                    buf.clear();
                    buf.extend_from_slice(&d);
                    d.len()
                }
                None => std::future::pending().await,
            },
        }
    }
}

struct TransferCtx {
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    shown: SocketAddr,
    started: Instant,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl TransferCtx {
    fn info(
        &self,
        req: &Request,
        dir: Direction,
        n: &Negotiated,
        path: Option<std::path::PathBuf>,
        size: Option<u64>,
    ) -> TransferInfo {
        TransferInfo {
            id: self.id,
            client: self.shown,
            file: req.filename_lossy(),
            path,
            direction: dir,
            size,
            blksize: n.blksize,
            windowsize: n.windowsize,
            timeout: n.timeout.map(|t| t.as_secs() as u8),
            options: n.oack.clone(),
        }
    }

    async fn refuse(
        &self,
        link: &Link,
        req: &Request,
        dir: Direction,
        code: ErrorCode,
        reason: String,
    ) -> TransferSummary {
        tracing::info!(client = %self.shown, file = %req.filename_lossy(), "refused: {reason}");
        link.send(&packet::error_packet(code, &reason), self.peer)
            .await;
        self.shared.emit(Event::Refused {
            client: self.shown,
            file: req.filename_lossy(),
            code,
            reason: reason.clone(),
        });
        TransferSummary {
            info: self.info(req, dir, &Negotiated::plain(), None, None),
            bytes: 0,
            elapsed: self.started.elapsed(),
            retransmits: 0,
            srtt: None,
            timeouts: 0,
            drain_waits: 0,
            probes: 0,
            error: Some(reason),
        }
    }

    /// Whether the server is shutting down (from a blocking thread).
    fn stopped(&self) -> bool {
        self.stop.has_changed().is_err() || *self.stop.borrow()
    }

    /// Emits a progress event, at most every `PROGRESS_EVERY`.
    fn progress(
        &self,
        last: &mut Instant,
        stats: crate::transfer::TransferStats,
        size: Option<u64>,
    ) {
        if last.elapsed() < PROGRESS_EVERY {
            return;
        }
        *last = Instant::now();
        self.shared.emit(Event::Progress {
            id: self.id,
            bytes: stats.bytes,
            size,
            elapsed: self.started.elapsed(),
            retransmits: stats.retransmits,
        });
    }

    fn finish(
        &self,
        info: TransferInfo,
        stats: crate::transfer::TransferStats,
        error: Option<String>,
    ) -> TransferSummary {
        let s = TransferSummary {
            info,
            bytes: stats.bytes,
            elapsed: self.started.elapsed(),
            retransmits: stats.retransmits,
            srtt: stats.srtt,
            timeouts: stats.timeouts,
            drain_waits: stats.drain_waits,
            probes: stats.probes,
            error,
        };
        match &s.error {
            None => {
                tracing::info!("{s}");
                self.shared.emit(Event::Finished(s.clone()));
            }
            Some(_) => {
                tracing::warn!("{s}");
                self.shared.emit(Event::Failed(s.clone()));
            }
        }
        s
    }
}

/// Reads a file in chunks, converting to netascii when asked.
///
/// Reads are plain blocking reads on the transfer's own thread (see
/// `read_loop`), between one ACK and the next DATA, as in the classic
/// forking servers.
struct FileSource {
    file: std::fs::File,
    encoder: Option<Encoder>,
    raw: Vec<u8>,
    raw_pos: usize,
    raw_eof: bool,
}

impl FileSource {
    /// Appends up to `want` wire bytes to `out` (cleared first); returns
    /// true at end of file.
    fn fill(&mut self, want: usize, out: &mut Vec<u8>) -> io::Result<bool> {
        out.clear();
        match &mut self.encoder {
            None => {
                // `take` + `read_to_end` fills the vector's spare capacity
                // without zeroing it first (most of this path's work was a
                // memset of each 64 KiB chunk).
                use std::io::Read;
                // (read_to_end retries EINTR itself.)
                let n = (&mut self.file).take(want as u64).read_to_end(out)?;
                Ok(n < want)
            }
            Some(enc) => loop {
                if self.raw_pos == self.raw.len() && !self.raw_eof {
                    self.raw.resize(want.max(4096), 0);
                    let n = read_retrying(&mut self.file, &mut self.raw)?;
                    self.raw.truncate(n);
                    self.raw_pos = 0;
                    self.raw_eof = n == 0;
                }
                let room = want - out.len();
                let used = enc.encode(&self.raw[self.raw_pos..], out, room);
                self.raw_pos += used;
                if out.len() >= want {
                    return Ok(false);
                }
                if self.raw_eof && self.raw_pos == self.raw.len() && !enc.has_pending() {
                    return Ok(true);
                }
            },
        }
    }
}

fn read_retrying(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    loop {
        match f.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A retransmission timer that is re-armed lazily: moving a deadline later
/// (which happens on every ACK) leaves the armed timer alone, and an early
/// wake-up just re-arms it. Re-registering a timer per packet costs a
/// driver wake-up (an eventfd write) on many packets; this costs at most
/// one wake-up per retransmission interval.
struct LazyTimer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

impl LazyTimer {
    fn new() -> Self {
        LazyTimer {
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            armed: None,
        }
    }

    /// Makes sure the timer fires no later than `deadline`.
    fn arm(&mut self, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            if self.armed.is_none_or(|a| d < a) {
                self.sleep.as_mut().reset(d.into());
                self.armed = Some(d);
            }
        }
    }

    /// Completes when the armed deadline passes (never when unarmed).
    async fn fired(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        (&mut self.sleep).await;
        self.armed = None;
    }
}

async fn serve_read(ctx: TransferCtx, link: Link, req: Request) -> TransferSummary {
    let shared = ctx.shared.clone();
    let opened = match shared.policy.open_read(&req.filename) {
        Ok(f) => f,
        Err(r) => {
            return ctx
                .refuse(&link, &req, Direction::Read, r.code, r.message)
                .await
        }
    };
    let size = (req.mode == Mode::Octet).then_some(opened.size);
    // A window larger than the client's receive ring can hold would stall
    // at every window's end (see TransferConfig::rx_frames).
    let mut limits = shared.config.limits.clone();
    if let Some(w) = shared.config.transfer.max_window() {
        limits.max_windowsize = limits.max_windowsize.min(w);
    }
    let negotiated = match options::negotiate(
        &req.options,
        req.mode,
        options::Direction::Read { size },
        &limits,
    ) {
        Ok(n) => n,
        Err(e) => {
            return ctx
                .refuse(&link, &req, Direction::Read, e.code, e.message)
                .await
        }
    };
    let info = ctx.info(
        &req,
        Direction::Read,
        &negotiated,
        Some(opened.path.clone()),
        Some(opened.size),
    );
    tracing::info!(
        client = %ctx.shown, file = %info.file, size = opened.size,
        blksize = negotiated.blksize, windowsize = negotiated.windowsize,
        oack = ?negotiated.oack, "read started"
    );
    shared.emit(Event::Started(info.clone()));
    let source = FileSource {
        file: opened.file,
        encoder: (req.mode == Mode::Netascii).then(Encoder::new),
        raw: Vec::new(),
        raw_pos: 0,
        raw_eof: false,
    };
    let m = ReadTransfer::new(&negotiated, shared.config.transfer, Instant::now());
    let port = match link.into_port() {
        Ok(p) => p,
        Err(e) => {
            let error = format!("cannot take over the transfer socket: {e}");
            return ctx.finish(info, Default::default(), Some(error));
        }
    };
    let size = opened.size;
    // The exchange runs on a thread of its own: in lock-step every block
    // waits for the client's ACK, and a blocking receive hands it over with
    // one wake-up, where the async reactor adds an epoll round and a task
    // switch to each block's round trip.
    match tokio::task::spawn_blocking(move || read_loop(ctx, port, m, source, info, size)).await {
        Ok(summary) => summary,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Drives a read transfer to its end on a blocking thread.
fn read_loop(
    ctx: TransferCtx,
    mut port: Port,
    mut m: ReadTransfer,
    mut source: FileSource,
    info: TransferInfo,
    size: u64,
) -> TransferSummary {
    let mut out = Vec::with_capacity(MAX_DATAGRAM);
    let mut inbuf = Vec::with_capacity(MAX_DATAGRAM);
    let mut chunk = Vec::new();
    let mut eof = false;
    let mut last_progress = Instant::now();
    let mut stopping = false;
    let mut busy = BusyPoll::new(ctx.shared.config.busy_poll);
    let shared = ctx.shared.clone();
    let _running = shared.spinners.running();
    let mut waits = 0u64;
    loop {
        while !eof && m.wants() > 0 {
            match source.fill(m.wants(), &mut chunk) {
                Ok(e) => {
                    eof = e;
                    m.supply(&chunk, e);
                }
                Err(e) => {
                    m.abort(ErrorCode::NotDefined, &format!("read error: {e}"));
                    break;
                }
            }
        }
        m.set_now(Instant::now());
        while m.poll_transmit(&mut out) {
            port.send(&out, ctx.peer);
        }
        if m.is_finished() {
            break;
        }
        ctx.progress(&mut last_progress, m.stats(), Some(size));
        if !stopping && ctx.stopped() {
            stopping = true;
            m.abort(ErrorCode::NotDefined, "server shutting down");
            continue;
        }
        let now = Instant::now();
        let wait = m
            .poll_timeout()
            .map_or(STOP_POLL, |d| d.saturating_duration_since(now))
            .min(STOP_POLL);
        // Spin first when the policy wants to and a slot is free.
        let mut spin = port
            .can_spin()
            .then(|| busy.budget())
            .filter(|d| !d.is_zero())
            .and_then(|d| shared.spinners.try_take().map(|slot| (d, slot)));
        waits += 1;
        let got = port.recv(&mut inbuf, ctx.peer, wait, spin.as_ref().map(|s| s.0));
        if spin.take().is_some() {
            busy.record(got.caught_spinning);
        }
        match got.len {
            Some(n) => m.handle_packet(&inbuf[..n], Instant::now()),
            None => m.handle_timeout(Instant::now()),
        }
    }
    let (caught, missed) = busy.spins();
    tracing::debug!(
        client = %ctx.shown,
        "busy poll: {waits} waits, {caught} caught the answer spinning, {missed} spun in vain"
    );
    let error = match m.outcome() {
        Some(Ok(())) => None,
        Some(Err(e)) => Some(e.to_string()),
        None => Some("transfer ended early".into()),
    };
    ctx.finish(info, m.stats(), error)
}

/// How often a blocked transfer thread looks at the shutdown signal.
const STOP_POLL: Duration = Duration::from_millis(100);

/// A transfer's datagram path for a blocking thread.
enum Port {
    /// Its own socket, non-blocking: waits go through `poll(2)`, whose
    /// timeout has millisecond resolution. (A blocking receive with
    /// `SO_RCVTIMEO` sleeps in whole scheduler ticks: with the common
    /// `HZ=250` a 2 ms retransmission timeout became one or two 4 ms
    /// ticks, and every lost block cost that much.)
    Own(std::net::UdpSocket),
    /// The listening socket (single-port mode): sends and the routed
    /// receive channel go through the runtime.
    Shared {
        sock: Arc<UdpSocket>,
        rx: mpsc::Receiver<Vec<u8>>,
        rt: tokio::runtime::Handle,
    },
}

impl Link {
    /// The same path, for a blocking thread.
    fn into_port(self) -> io::Result<Port> {
        Ok(match self {
            Link::Own(s) => {
                let sock = s.into_std()?;
                sock.set_nonblocking(true)?;
                Port::Own(sock)
            }
            Link::Shared { sock, rx } => Port::Shared {
                sock,
                rx,
                rt: tokio::runtime::Handle::current(),
            },
        })
    }
}

impl Port {
    /// Whether [`Port::recv`] can spin (its own socket, not the routed
    /// channel of single-port mode).
    fn can_spin(&self) -> bool {
        matches!(self, Port::Own(_))
    }

    fn send(&mut self, data: &[u8], to: SocketAddr) {
        // A failed send (e.g. EPERM from a firewall drop, ENOBUFS) is a lost
        // packet like any other: the timer recovers it.
        let r = match self {
            Port::Own(sock) => sock.send_to(data, to).map(|_| ()),
            Port::Shared { sock, rt, .. } => rt.block_on(sock.send_to(data, to)).map(|_| ()),
        };
        if let Err(e) = r {
            tracing::trace!("send to {to} failed: {e}");
        }
    }

    /// The next datagram from the peer, waiting at most `wait`; packets
    /// from foreign TIDs get ERROR 5 on the way. With `spin`, it first
    /// keeps asking the socket for up to that long before it sleeps
    /// (own socket only; see [`crate::busy`]).
    fn recv(
        &mut self,
        buf: &mut Vec<u8>,
        peer: SocketAddr,
        wait: Duration,
        spin: Option<Duration>,
    ) -> Receive {
        let start = Instant::now();
        let deadline = start + wait;
        let nothing = Receive {
            len: None,
            caught_spinning: false,
        };
        match self {
            Port::Own(sock) => {
                let mut spin_until = spin.map(|s| start + s.min(wait));
                loop {
                    match spin_until {
                        Some(until) if Instant::now() >= until => spin_until = None,
                        Some(_) => {}
                        None => {
                            let left = deadline.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                return nothing;
                            }
                            // Sleeping, poll first: the answer to what was
                            // just sent is rarely there yet, and a receive
                            // that finds nothing is a system call for
                            // nothing.
                            if !wait_readable(sock, left) {
                                continue;
                            }
                        }
                    }
                    buf.resize(MAX_DATAGRAM, 0);
                    match sock.recv_from(buf) {
                        Ok((n, from)) if from == peer => {
                            return Receive {
                                len: Some(n),
                                caught_spinning: spin_until.is_some(),
                            }
                        }
                        Ok((_, from)) => {
                            tracing::debug!("packet from foreign TID {from}: ERROR 5");
                            let _ = sock.send_to(
                                &packet::error_packet(ErrorCode::UnknownTid, "unknown transfer ID"),
                                from,
                            );
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                            ) =>
                        {
                            if spin_until.is_some() {
                                std::hint::spin_loop();
                            }
                        }
                        Err(e) => {
                            tracing::trace!("receive error: {e}");
                            return nothing;
                        }
                    }
                }
            }
            Port::Shared { rx, rt, .. } => {
                match rt.block_on(tokio::time::timeout(wait, rx.recv())) {
                    Ok(Some(d)) => {
                        buf.clear();
                        buf.extend_from_slice(&d);
                        Receive {
                            len: Some(d.len()),
                            caught_spinning: false,
                        }
                    }
                    // The router is gone (server stopping): wait it out.
                    Ok(None) => {
                        std::thread::sleep(wait);
                        nothing
                    }
                    Err(_) => nothing,
                }
            }
        }
    }
}

/// What [`Port::recv`] got.
struct Receive {
    /// The datagram's length; `None` when the wait passed.
    len: Option<usize>,
    /// Whether it came while spinning.
    caught_spinning: bool,
}

/// Waits up to `timeout` (rounded up to whole milliseconds) for `sock` to
/// become readable: false when the time passed; true when it is readable,
/// or when `poll` failed (a signal, an error), so that the receive that
/// follows reports what is wrong.
fn wait_readable(sock: &std::net::UdpSocket, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd on the stack, for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) != 0 }
}

async fn serve_write(mut ctx: TransferCtx, mut link: Link, req: Request) -> TransferSummary {
    let shared = ctx.shared.clone();
    let upload = match shared.policy.prepare_upload(&req.filename) {
        Ok(u) => u,
        Err(r) => {
            return ctx
                .refuse(&link, &req, Direction::Write, r.code, r.message)
                .await
        }
    };
    let negotiated = match options::negotiate(
        &req.options,
        req.mode,
        options::Direction::Write,
        &shared.config.limits,
    ) {
        Ok(n) => n,
        Err(e) => {
            return ctx
                .refuse(&link, &req, Direction::Write, e.code, e.message)
                .await
        }
    };
    let dest = upload.dest().to_path_buf();
    let info = ctx.info(
        &req,
        Direction::Write,
        &negotiated,
        Some(dest),
        negotiated.tsize,
    );
    tracing::info!(client = %ctx.shown, file = %info.file, oack = ?negotiated.oack, "write started");
    shared.emit(Event::Started(info.clone()));
    let mut m = WriteTransfer::new(
        &negotiated,
        shared.config.limits.max_upload,
        shared.config.transfer,
        Instant::now(),
    );
    let mut decoder = (req.mode == Mode::Netascii).then(Decoder::new);
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut inbuf = Vec::with_capacity(MAX_DATAGRAM);
    // Dropping an uncommitted upload deletes its temporary file.
    let mut upload = Some(upload);
    let mut committed = false;
    let mut timer = LazyTimer::new();
    let mut last_progress = Instant::now();
    let mut write_error: Option<String> = None;
    loop {
        while m.poll_transmit(&mut out) {
            link.send(&out, ctx.peer).await;
        }
        if m.is_finished() {
            break;
        }
        ctx.progress(&mut last_progress, m.stats(), negotiated.tsize);
        timer.arm(m.poll_timeout());
        tokio::select! {
            // Packets first: an ACK already waiting must be seen before a
            // timer that expired while this task was not scheduled.
            biased;
            n = link.recv(&mut inbuf, ctx.peer) => {
                if let Received::Store(range) = m.handle_packet(&inbuf[..n], Instant::now()) {
                    let data = &inbuf[range];
                    match &mut decoder {
                        Some(d) => d.decode(data, &mut pending),
                        None => pending.extend_from_slice(data),
                    }
                    let complete = m.is_complete();
                    if complete {
                        if let Some(d) = &mut decoder {
                            d.finish(&mut pending);
                        }
                    }
                    if pending.len() >= 256 * 1024 || complete {
                        if let Some(u) = upload.as_mut() {
                            if let Err(e) = u.file().write_all(&pending) {
                                write_error = Some(format!("write error: {e}"));
                                m.abort(ErrorCode::DiskFull, &format!("cannot store the file: {e}"));
                            }
                        }
                        pending.clear();
                    }
                    if complete && write_error.is_none() && !committed {
                        committed = true;
                        // The final ACK goes out only after the file is in place.
                        if let Some(u) = upload.take() {
                            match tokio::task::spawn_blocking(move || u.commit()).await {
                                Ok(Ok(path)) => tracing::info!("upload stored as {}", path.display()),
                                Ok(Err(r)) => {
                                    write_error = Some(r.message.clone());
                                    m.abort(r.code, &r.message);
                                }
                                Err(e) => {
                                    write_error = Some(e.to_string());
                                    m.abort(ErrorCode::NotDefined, "internal error storing the file");
                                }
                            }
                        }
                    }
                }
            }
            _ = timer.fired() => m.handle_timeout(Instant::now()),
            _ = ctx.stop.changed() => {
                if !m.is_complete() {
                    m.abort(ErrorCode::NotDefined, "server shutting down");
                } else {
                    break;
                }
            }
        }
    }
    let error = match (m.outcome(), write_error) {
        (_, Some(e)) => Some(e),
        (Some(Ok(())), None) if committed => None,
        (Some(Ok(())), None) => Some("upload not stored".into()),
        (Some(Err(e)), None) => Some(e.to_string()),
        (None, None) => Some("transfer ended early".into()),
    };
    ctx.finish(info, m.stats(), error)
}
