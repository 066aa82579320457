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
//! how many transfers (and so threads) run at once, and [`crate::admission`]
//! how many of them one client address may hold, how much memory their
//! buffers may reserve (a transfer's window is lowered to what the budget
//! holds), and which transfer whose client never answered makes room for a
//! new request. Files are read in chunks into the transfer's window buffer,
//! and only once the client has answered, so memory does not grow with
//! file size or with requests from silent clients. Shutdown is a
//! watch channel: listeners stop reading, every transfer sends its client
//! an ERROR and ends, and `run` returns a summary of each transfer.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::admission::{
    ClientSlot, ClientTable, Counters, Eviction, Grant, HalfOpenSet, MemoryBudget, EVICT_AGE,
};
use crate::busy::{BusyPoll, SpinSlots};
use crate::event::{human_bytes, Direction, Event, RefusalKind, TransferInfo, TransferSummary};
use crate::netascii::{Decoder, Encoder};
use crate::options::{self, Limits, Negotiated};
use crate::packet::{self, ErrorCode, Mode, Packet, Request};
use crate::policy::{normalize_ip, Policy};
use crate::transfer::{
    window_buffer, ReadTransfer, Received, TransferConfig, TransferError, WriteTransfer,
    DEFAULT_HALF_OPEN, READ_CHUNK,
};

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on (port 0 picks a free port).
    pub bind: Vec<SocketAddr>,
    /// Negotiation caps.
    pub limits: Limits,
    /// Timer and retry policy for each transfer.
    pub transfer: TransferConfig,
    /// Most transfers running at once; further requests get ERROR 0
    /// (after the oldest transfer whose client has not answered for
    /// [`EVICT_AGE`], if any, was ended to make room).
    pub max_transfers: usize,
    /// Most transfers one client address may run at once (0: no limit);
    /// further requests from it get ERROR 0 naming the limit. Keeps one
    /// host (a flood of requests from many ports) from taking the slots
    /// other clients need.
    pub per_client: usize,
    /// Bytes all transfers' buffers may reserve together: a read reserves
    /// [`read_cost`], a write [`write_cost`], before it starts. A read
    /// gets a window beyond lock-step only from what the budget holds
    /// beyond a floor kept for every free slot (a lock-step read at
    /// `limits.max_blksize`, or a write: 450 KiB by default), so its window
    /// may be lowered (down to 1). A transfer that cannot get even lock-step
    /// (only possible with a budget below `max_transfers` floors) waits up
    /// to a second for memory to come back (ending the oldest silent
    /// transfer that holds some), then is refused with ERROR 0.
    pub memory_budget: usize,
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
            transfer: TransferConfig {
                half_open: Some(DEFAULT_HALF_OPEN),
                ..TransferConfig::default()
            },
            max_transfers: 64,
            per_client: DEFAULT_PER_CLIENT,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            single_port: false,
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }
}

/// Default of [`ServerConfig::per_client`]: a boot loader loads one file
/// at a time, and a PC seldom fetches more than a few at once (the
/// benchmark's four parallel curls fit).
pub const DEFAULT_PER_CLIENT: usize = 4;

/// Default of [`ServerConfig::memory_budget`]: 32 MiB. Enough for every
/// one of the default 64 transfers at its floor (a lock-step read at the
/// largest block size or a write, 450 KiB each, 28.1 MiB), so under the
/// defaults the budget never turns a request away, only lowers windows;
/// the 3.9 MiB above the floors, and the floors of slots not in use, go to
/// windows first come first served: the largest window under the default
/// caps (15 blocks of 65464 bytes, 1.3 MiB with the fixed buffers) is
/// granted to several transfers at once, the largest possible one (64
/// blocks, 4.4 MiB, with `--client-rx-frames 0`) to one while all slots
/// could still fill. With the process's own few MiB the server stays
/// below 64 MiB whatever clients ask for.
pub const DEFAULT_MEMORY_BUDGET: usize = 32 << 20;

/// Fixed buffers of a read transfer besides its window: the receive
/// buffer and the file read chunk. (Its send buffer, one block, is in
/// [`read_cost`].)
const READ_FIXED: usize = MAX_DATAGRAM + READ_CHUNK;

/// Bytes of the memory budget a read transfer reserves: its window buffer
/// ([`window_buffer`]), send and receive buffers, the read chunk (twice
/// for netascii, which reads raw bytes before converting them) and, in
/// single-port mode, its routed receive queue.
pub fn read_cost(blksize: u16, window: u16, netascii: bool, single_port: bool) -> usize {
    window_buffer(blksize, window)
        + READ_FIXED
        + 4
        + usize::from(blksize)
        + if netascii { READ_CHUNK } else { 0 }
        + if single_port { ROUTE_QUEUE_BYTES } else { 0 }
}

/// Bytes a write transfer reserves: the data waiting to be written (up to
/// [`WRITE_FLUSH`] and one datagram), its receive buffer, its send buffer
/// and, in single-port mode, its routed receive queue.
pub fn write_cost(single_port: bool) -> usize {
    WRITE_FLUSH + 3 * MAX_DATAGRAM + if single_port { ROUTE_QUEUE_BYTES } else { 0 }
}

/// A write transfer writes its data to the file once this much is waiting.
const WRITE_FLUSH: usize = 256 * 1024;

/// Single-port mode: most bytes of datagrams queued for one transfer
/// (further ones are dropped like lost packets).
const ROUTE_QUEUE_BYTES: usize = 128 * 1024;

/// How long a transfer waits for the memory budget before it is refused.
const BUDGET_WAIT: Duration = Duration::from_secs(1);

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
    /// The configured limits cannot be negotiated with (see
    /// [`Limits::check`]); nothing was bound.
    #[error(transparent)]
    Limits(#[from] options::LimitsError),
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    config: ServerConfig,
    policy: Policy,
    sockets: Vec<Arc<UdpSocket>>,
    events: Option<mpsc::UnboundedSender<Event>>,
    counters: Arc<Counters>,
}

struct Shared {
    config: ServerConfig,
    policy: Policy,
    events: Option<mpsc::UnboundedSender<Event>>,
    next_id: AtomicU64,
    permits: Arc<Semaphore>,
    spinners: SpinSlots,
    clients: Arc<ClientTable>,
    half_open: HalfOpenSet,
    counters: Arc<Counters>,
}

impl Shared {
    fn emit(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    /// Counts, logs (within the rate limit) and reports a refusal; the
    /// caller sends the ERROR.
    fn refused(
        &self,
        client: SocketAddr,
        file: String,
        code: ErrorCode,
        kind: RefusalKind,
        reason: String,
    ) {
        if self.counters.refused(kind) {
            tracing::info!(client = %client, file = %file, "refused ({kind}): {reason}");
        } else {
            tracing::trace!(client = %client, file = %file, "refused ({kind}): {reason}");
        }
        self.emit(Event::Refused {
            client,
            file,
            code,
            kind,
            reason,
        });
    }

    /// Ends the oldest transfer that has been half-open for [`EVICT_AGE`]
    /// (other than `except`; with `for_memory`, one holding memory),
    /// returning its slot.
    fn evict_half_open(&self, except: u64, for_memory: bool) -> Option<OwnedSemaphorePermit> {
        let p = self
            .half_open
            .evict_oldest(EVICT_AGE, Instant::now(), except, for_memory)?;
        self.counters.evicted();
        Some(p)
    }

    /// Memory kept free for each transfer slot without a reservation
    /// (free, or taken by a request not through negotiation yet): the
    /// most a transfer may need at least (a read in lock-step at the
    /// largest block size the server grants, or a write). A window beyond
    /// lock-step is granted only from what exceeds these floors, so that
    /// greedy requests cannot starve later ones; with a budget of at least
    /// `max_transfers` floors (28.1 MiB for the defaults) nobody waits for
    /// memory.
    fn memory_floor(&self) -> usize {
        let single = self.config.single_port;
        read_cost(self.config.limits.max_blksize, 1, false, single).max(write_cost(single))
    }

    /// What a new reservation must leave free: a floor for every other
    /// slot without one.
    fn keep_free(&self) -> usize {
        let budget = self.counters.budget();
        let others = self
            .config
            .max_transfers
            .max(1)
            .saturating_sub(budget.grants() + 1);
        others * self.memory_floor()
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
        config.limits.check()?;
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
        let counters = Counters::new(MemoryBudget::new(config.memory_budget));
        Ok(Server {
            config,
            policy,
            sockets,
            events: None,
            counters,
        })
    }

    /// The server's refusal counts and memory budget, readable while it
    /// runs and after [`Server::run`] returned.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
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
            clients: ClientTable::new(self.config.per_client),
            config: self.config,
            policy: self.policy,
            events: self.events,
            next_id: AtomicU64::new(1),
            spinners: SpinSlots::for_this_machine(),
            half_open: HalfOpenSet::default(),
            counters: self.counters,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut listeners = JoinSet::new();
        for sock in self.sockets {
            listeners.spawn(listen(sock, shared.clone(), stop_rx.clone()));
        }
        tokio::select! {
            _ = shutdown => {}
            _ = report(shared.counters.clone()) => {}
        }
        let _ = stop_tx.send(true);
        let mut all = Vec::new();
        while let Some(r) = listeners.join_next().await {
            if let Ok(mut v) = r {
                all.append(&mut v);
            }
        }
        all.sort_by_key(|s| s.info.id);
        let tally = shared.counters.tally();
        if !tally.is_quiet() {
            tracing::info!("in total: {tally}");
        }
        all
    }
}

/// Logs, once a second, what was refused or cut short in that second (so
/// that a flood shows in `-v` output as a few lines, not thousands).
async fn report(counters: Arc<Counters>) {
    let mut last = counters.tally();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = counters.tally();
        let delta = now.since(&last);
        if !delta.is_quiet() {
            tracing::info!("last second: {delta}");
        }
        last = now;
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
    let mut routes: HashMap<SocketAddr, Route> = HashMap::new();
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
                    if let Some(route) = routes.get(&from) {
                        if route.forward(datagram) {
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

/// Single-port mode: the way to a transfer's receive queue.
struct Route {
    tx: mpsc::Sender<Vec<u8>>,
    /// Bytes queued (the transfer subtracts what it takes).
    queued: Arc<AtomicUsize>,
}

impl Route {
    /// Queues a datagram for the transfer, or drops it when its queue holds
    /// [`ROUTE_QUEUE_BYTES`] already (a lost packet). False once the
    /// transfer has ended.
    fn forward(&self, datagram: &[u8]) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        let n = datagram.len().max(1);
        if self.queued.fetch_add(n, Ordering::AcqRel) + n > ROUTE_QUEUE_BYTES {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return true;
        }
        if self.tx.try_send(datagram.to_vec()).is_err() {
            self.queued.fetch_sub(n, Ordering::AcqRel);
        }
        true
    }
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
    routes: &mut HashMap<SocketAddr, Route>,
    datagram: &[u8],
    from: SocketAddr,
) {
    let shown = SocketAddr::new(normalize_ip(from.ip()), from.port());
    let (request, direction) = match Packet::parse(datagram) {
        Ok(Packet::Rrq(r)) => (r, Direction::Read),
        Ok(Packet::Wrq(r)) => (r, Direction::Write),
        // Never answer an ERROR (no error loops); other packets have no
        // transfer on this port.
        Ok(Packet::Error { .. }) => {
            shared.counters.garbage();
            return;
        }
        Ok(_) => {
            shared.counters.garbage();
            tracing::trace!(client = %shown, "non-request packet on the listening port");
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
            shared.counters.garbage();
            tracing::trace!(client = %shown, "malformed request: {e}");
            reply_error(sock, from, e.error_code(), &e.to_string()).await;
            return;
        }
    };
    let file = request.filename_lossy();
    let refuse = |code: ErrorCode, kind: RefusalKind, reason: String| {
        shared.refused(shown, file.clone(), code, kind, reason);
    };
    if !shared.policy.allows(from.ip()) {
        let msg = format!("client {} is not allowed on this server", shown.ip());
        refuse(
            ErrorCode::AccessViolation,
            RefusalKind::NotAllowed,
            msg.clone(),
        );
        reply_error(sock, from, ErrorCode::AccessViolation, &msg).await;
        return;
    }
    if request.mode == Mode::Mail {
        let msg = "mail mode is not supported".to_string();
        refuse(
            ErrorCode::IllegalOperation,
            RefusalKind::BadRequest,
            msg.clone(),
        );
        reply_error(sock, from, ErrorCode::IllegalOperation, &msg).await;
        return;
    }
    // The per-client limit first: a flooding host is told about its own
    // limit, and never reaches (or evicts from) the shared slots.
    let Some(client_slot) = shared.clients.try_admit(shown.ip()) else {
        let msg = format!(
            "too many transfers from {} (per-client limit {}); try again when one has ended",
            shown.ip(),
            shared.clients.limit()
        );
        refuse(ErrorCode::NotDefined, RefusalKind::PerClient, msg.clone());
        reply_error(sock, from, ErrorCode::NotDefined, &msg).await;
        return;
    };
    let permit = match shared.permits.clone().try_acquire_owned() {
        Ok(p) => p,
        // Every slot is taken: a transfer whose client has stayed silent
        // since its first packet makes room, if there is one.
        Err(_) => match shared.evict_half_open(0, false) {
            Some(p) => {
                tracing::debug!(client = %shown, "all slots taken: ended the oldest half-open transfer to make room");
                p
            }
            None => {
                let msg = format!(
                    "server busy ({} transfers running); try again",
                    shared.config.max_transfers
                );
                refuse(ErrorCode::NotDefined, RefusalKind::Busy, msg.clone());
                reply_error(sock, from, ErrorCode::NotDefined, &msg).await;
                return;
            }
        },
    };
    let link = if shared.config.single_port {
        let (tx, rx) = mpsc::channel(256);
        let queued = Arc::new(AtomicUsize::new(0));
        routes.insert(
            from,
            Route {
                tx,
                queued: queued.clone(),
            },
        );
        Link::Shared {
            sock: sock.clone(),
            rx,
            queued,
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
                refuse(ErrorCode::NotDefined, RefusalKind::Internal, msg.clone());
                reply_error(sock, from, ErrorCode::NotDefined, &msg).await;
                return;
            }
        }
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    // Half-open until its client answers: the slot waits in the set, where
    // a request that finds every slot taken may claim it.
    let eviction = shared.half_open.insert(id, permit, started);
    let ctx = TransferCtx {
        shared: shared.clone(),
        id,
        peer: from,
        shown,
        started,
        stop: stop.clone(),
        _client: client_slot,
        permit: None,
        eviction,
        grant: None,
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
        /// Bytes queued in `rx` (see [`Route`]).
        queued: Arc<AtomicUsize>,
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
            Link::Shared { rx, queued, .. } => match rx.recv().await {
                Some(d) => {
                    queued.fetch_sub(d.len().max(1), Ordering::AcqRel);
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
    /// The client's place under the per-client limit.
    _client: ClientSlot,
    /// The transfer's slot once its client answered (until then it waits
    /// in `shared.half_open`).
    permit: Option<OwnedSemaphorePermit>,
    /// Set when the transfer, still half-open, was ended to make room.
    eviction: Arc<Eviction>,
    /// The memory the transfer's buffers reserved.
    grant: Option<Grant>,
}

impl Drop for TransferCtx {
    fn drop(&mut self) {
        self.shared.half_open.remove(self.id);
    }
}

impl TransferCtx {
    /// The client answered: the transfer takes its slot out of the
    /// half-open set. False when it was evicted meanwhile.
    fn establish(&mut self) -> bool {
        if self.permit.is_none() {
            self.permit = self.shared.half_open.establish(self.id);
        }
        self.permit.is_some()
    }

    /// Whether the transfer was ended, still half-open, to make room.
    fn evicted(&self) -> bool {
        self.eviction.is_evicted()
    }

    /// Reserves `min`..`want` bytes of the memory budget, waiting up to
    /// [`BUDGET_WAIT`] (and ending the oldest silent transfer) when even
    /// `min` is not free.
    async fn reserve(&mut self, min: usize, want: usize) -> Option<usize> {
        let shared = self.shared.clone();
        let id = self.id;
        let budget = shared.counters.budget().clone();
        let eviction = self.eviction.clone();
        let grant = tokio::select! {
            g = budget.grant(
                min,
                want,
                || shared.keep_free(),
                BUDGET_WAIT,
                || {
                    // The evicted transfer's slot goes back to the pool.
                    drop(shared.evict_half_open(id, true));
                },
            ) => g?,
            // Evicted itself while waiting (its slot was given away).
            _ = eviction.wait() => return None,
        };
        shared.half_open.holds_memory(id);
        let bytes = grant.bytes();
        self.grant = Some(grant);
        Some(bytes)
    }

    /// Returns what the transfer reserved beyond `bytes`.
    fn keep_reserved(&mut self, bytes: usize) {
        if let Some(g) = &mut self.grant {
            g.shrink_to(bytes);
        }
    }

    /// The refusal for a transfer that cannot get its minimal buffers (or
    /// was evicted while waiting for them).
    fn memory_refusal(&self) -> (RefusalKind, String) {
        if self.evicted() {
            return (RefusalKind::Busy, EVICTED.to_string());
        }
        let b = self.shared.counters.budget();
        let msg = format!(
            "server busy: its memory budget ({}) is in use; try again",
            human_bytes(b.total() as u64)
        );
        (RefusalKind::Memory, msg)
    }

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

    #[allow(clippy::too_many_arguments)]
    async fn refuse(
        &self,
        link: &Link,
        req: &Request,
        dir: Direction,
        code: ErrorCode,
        kind: RefusalKind,
        reason: String,
    ) -> TransferSummary {
        link.send(&packet::error_packet(code, &reason), self.peer)
            .await;
        self.shared
            .refused(self.shown, req.filename_lossy(), code, kind, reason.clone());
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
                // Exactly `want`, so that the buffer does not double past it.
                out.reserve_exact(want);
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

async fn serve_read(mut ctx: TransferCtx, link: Link, req: Request) -> TransferSummary {
    let shared = ctx.shared.clone();
    let opened = match shared.policy.open_read(&req.filename) {
        Ok(f) => f,
        Err(r) => {
            return ctx
                .refuse(
                    &link,
                    &req,
                    Direction::Read,
                    r.code,
                    RefusalKind::File,
                    r.message,
                )
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
    let mut negotiated = match options::negotiate(
        &req.options,
        req.mode,
        options::Direction::Read { size },
        &limits,
    ) {
        Ok(n) => n,
        Err(e) => {
            return ctx
                .refuse(
                    &link,
                    &req,
                    Direction::Read,
                    e.code,
                    RefusalKind::BadRequest,
                    e.message,
                )
                .await
        }
    };
    // Memory: the transfer's buffers must fit in the budget, with the
    // window lowered (in the OACK, before the client sees it) when the
    // negotiated one does not.
    let blksize = negotiated.blksize;
    let (netascii, single) = (req.mode == Mode::Netascii, shared.config.single_port);
    let cost = |w: u16| read_cost(blksize, w, netascii, single);
    let Some(got) = ctx.reserve(cost(1), cost(negotiated.windowsize)).await else {
        let (kind, msg) = ctx.memory_refusal();
        return ctx
            .refuse(
                &link,
                &req,
                Direction::Read,
                ErrorCode::NotDefined,
                kind,
                msg,
            )
            .await;
    };
    let affordable = (got.saturating_sub(cost(1)) / usize::from(blksize) + 1)
        .min(usize::from(negotiated.windowsize)) as u16;
    if affordable < negotiated.windowsize {
        tracing::info!(
            client = %ctx.shown,
            "windowsize lowered from {} to {affordable}: the memory budget ({}) is nearly used",
            negotiated.windowsize,
            human_bytes(shared.counters.budget().total() as u64)
        );
        shared.counters.window_lowered();
        negotiated.lower_window(affordable);
    }
    ctx.keep_reserved(cost(negotiated.windowsize));
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
    mut ctx: TransferCtx,
    mut port: Port,
    mut m: ReadTransfer,
    mut source: FileSource,
    info: TransferInfo,
    size: u64,
) -> TransferSummary {
    let mut out = Vec::with_capacity(4 + usize::from(info.blksize));
    let mut inbuf = Vec::with_capacity(MAX_DATAGRAM);
    let mut chunk = Vec::new();
    let mut eof = false;
    let mut last_progress = Instant::now();
    let mut stopping = false;
    let mut established = false;
    let mut busy = BusyPoll::new(ctx.shared.config.busy_poll);
    let shared = ctx.shared.clone();
    // Counted as running (for the busy-poll policy) once its client
    // answers: silent transfers keep no CPU busy, and a flood of them must
    // not stop the answering ones from spinning.
    let mut _running = None;
    let mut waits = 0u64;
    loop {
        if !established && !m.is_finished() {
            if ctx.evicted() || (m.answered() && !ctx.establish()) {
                m.abort(ErrorCode::NotDefined, EVICTED);
            } else if m.answered() {
                established = true;
                _running = Some(shared.spinners.running());
            }
        }
        while !eof && m.wants() > 0 {
            // At most a chunk per read: the chunk buffer stays small, and
            // the window buffer is the only one that grows with it.
            match source.fill(m.wants().min(READ_CHUNK), &mut chunk) {
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
        // A half-open transfer looks for an eviction often, so that the
        // request it made room for does not wait on it.
        let poll = if established {
            STOP_POLL
        } else {
            HALF_OPEN_POLL
        };
        let wait = m
            .poll_timeout()
            .map_or(poll, |d| d.saturating_duration_since(now))
            .min(poll);
        // Spin first when the policy wants to and a slot is free (never for
        // a client that has not answered yet).
        let mut spin = (established && port.can_spin())
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
        Some(Err(e)) => {
            if matches!(e, TransferError::HalfOpen { .. }) {
                shared.counters.half_open_dropped();
            }
            Some(e.to_string())
        }
        None => Some("transfer ended early".into()),
    };
    ctx.finish(info, m.stats(), error)
}

/// How often a blocked transfer thread looks at the shutdown signal.
const STOP_POLL: Duration = Duration::from_millis(100);

/// How often a half-open transfer's thread looks whether it was evicted.
const HALF_OPEN_POLL: Duration = Duration::from_millis(10);

/// Why an evicted transfer ended (sent to its client, and its summary).
const EVICTED: &str =
    "server busy: no answer to the first packet, transfer ended to make room for another";

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
        queued: Arc<AtomicUsize>,
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
            Link::Shared { sock, rx, queued } => Port::Shared {
                sock,
                rx,
                queued,
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
            Port::Shared { rx, rt, queued, .. } => {
                match rt.block_on(tokio::time::timeout(wait, rx.recv())) {
                    Ok(Some(d)) => {
                        queued.fetch_sub(d.len().max(1), Ordering::AcqRel);
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
    let cost = write_cost(shared.config.single_port);
    if ctx.reserve(cost, cost).await.is_none() {
        let (kind, msg) = ctx.memory_refusal();
        return ctx
            .refuse(
                &link,
                &req,
                Direction::Write,
                ErrorCode::NotDefined,
                kind,
                msg,
            )
            .await;
    }
    let upload = match shared.policy.prepare_upload(&req.filename) {
        Ok(u) => u,
        Err(r) => {
            return ctx
                .refuse(
                    &link,
                    &req,
                    Direction::Write,
                    r.code,
                    RefusalKind::File,
                    r.message,
                )
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
                .refuse(
                    &link,
                    &req,
                    Direction::Write,
                    e.code,
                    RefusalKind::BadRequest,
                    e.message,
                )
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
    let mut established = false;
    let eviction = ctx.eviction.clone();
    loop {
        if !established && !m.is_finished() {
            if ctx.evicted() || (m.answered() && !ctx.establish()) {
                m.abort(ErrorCode::NotDefined, EVICTED);
            } else if m.answered() {
                established = true;
            }
        }
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
                    if pending.capacity() == 0 {
                        // Once, what `write_cost` counts: no doubling past it.
                        pending.reserve_exact(WRITE_FLUSH + MAX_DATAGRAM);
                    }
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
                    if pending.len() >= WRITE_FLUSH || complete {
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
            _ = eviction.wait(), if !established => {}
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
        (Some(Err(e)), None) => {
            if matches!(e, TransferError::HalfOpen { .. }) {
                shared.counters.half_open_dropped();
            }
            Some(e.to_string())
        }
        (None, None) => Some("transfer ended early".into()),
    };
    ctx.finish(info, m.stats(), error)
}
