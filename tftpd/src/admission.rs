//! Admission control: which requests get a transfer, and how much memory
//! a transfer may hold.
//!
//! TFTP has no handshake before the server commits resources: a request
//! from a client that never answers (a crashed board, a scanner, a forged
//! source address) looks like any other until its first packet goes
//! unanswered. Three mechanisms keep such requests from locking out
//! everybody else:
//! - [`ClientTable`]: at most `per_client` transfers per source address,
//!   so one host cannot take the slots other clients need;
//! - [`MemoryBudget`]: every transfer reserves the memory its buffers can
//!   ever need before it starts (the window is lowered to fit), so the
//!   server's memory is bounded by the budget whatever clients ask for.
//!   A window beyond the smallest comes only from what exceeds a floor
//!   kept for each free transfer slot, so greedy requests cannot starve
//!   later ones of their minimum;
//! - [`HalfOpenSet`]: transfers whose client has not answered yet. When the
//!   slots or the budget run out, the oldest of them that has waited at
//!   least [`EVICT_AGE`] is ended to make room (a live client answers its
//!   first packet within milliseconds).
//!
//! [`Counters`] count refusals by reason and the rest of what an operator
//! needs to recognise a flood.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::event::RefusalKind;

/// Transfers a half-open transfer must have waited for its client's first
/// answer before it can be ended to make room for a new request: the first
/// packet's retransmission timer (a live client that answers at all has
/// answered by then, unless its answer was lost).
pub const EVICT_AGE: Duration = crate::transfer::FIRST_PACKET_RTO;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Per-client limit
// ---------------------------------------------------------------------------

/// Running transfers per client address.
#[derive(Debug)]
pub struct ClientTable {
    limit: usize,
    running: Mutex<HashMap<IpAddr, usize>>,
}

/// One running transfer of a client; dropping it frees the place.
#[derive(Debug)]
pub struct ClientSlot {
    table: Arc<ClientTable>,
    ip: IpAddr,
}

impl ClientTable {
    /// A table allowing `limit` transfers per address (0: no limit).
    pub fn new(limit: usize) -> Arc<ClientTable> {
        Arc::new(ClientTable {
            limit,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// The limit (0: none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A place for one more transfer of `ip`, or `None` at the limit.
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut running = lock(&self.running);
        let n = running.entry(ip).or_insert(0);
        if self.limit > 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Transfers `ip` runs now.
    pub fn running(&self, ip: IpAddr) -> usize {
        lock(&self.running).get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut running = lock(&self.table.running);
        if let Some(n) = running.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.ip);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Memory budget
// ---------------------------------------------------------------------------

/// Bytes reserved for transfer buffers, out of a fixed total.
#[derive(Debug)]
pub struct MemoryBudget {
    total: usize,
    used: Mutex<usize>,
    /// Live grants.
    grants: AtomicUsize,
    peak: AtomicUsize,
    freed: Notify,
}

/// How often a transfer waiting for memory tries to reclaim some.
pub const RECLAIM_EVERY: Duration = Duration::from_millis(50);

/// Memory reserved by one transfer; dropping it returns it.
#[derive(Debug)]
pub struct Grant {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl MemoryBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            total,
            used: Mutex::new(0),
            grants: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    /// The total.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        *lock(&self.used)
    }

    /// Reservations held now.
    pub fn grants(&self) -> usize {
        self.grants.load(Ordering::Relaxed)
    }

    /// Most bytes ever reserved at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Reserves up to `want` bytes, if at least `min` are free: as much as
    /// is free beyond `keep_free` (what the free slots may need), and at
    /// least `min`.
    pub fn try_grant(self: &Arc<Self>, min: usize, want: usize, keep_free: usize) -> Option<Grant> {
        let mut used = lock(&self.used);
        let free = self.total.saturating_sub(*used);
        let min = min.min(want);
        if free < min {
            return None;
        }
        let bytes = free.saturating_sub(keep_free).clamp(min, want);
        *used += bytes;
        self.grants.fetch_add(1, Ordering::Relaxed);
        self.peak.fetch_max(*used, Ordering::Relaxed);
        Some(Grant {
            budget: self.clone(),
            bytes,
        })
    }

    /// Like [`MemoryBudget::try_grant`] (`keep_free` asked anew each
    /// time), waiting up to `wait` for memory to be returned; while it
    /// falls short, `on_short` is called every [`RECLAIM_EVERY`] (to
    /// reclaim memory from elsewhere, which may become possible only
    /// later), first after one such wait, so that memory already on its
    /// way back (an evicted transfer ending) is not reclaimed twice.
    pub async fn grant(
        self: &Arc<Self>,
        min: usize,
        want: usize,
        keep_free: impl Fn() -> usize,
        wait: Duration,
        mut on_short: impl FnMut(),
    ) -> Option<Grant> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut waited = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(g) = self.try_grant(min, want, keep_free()) {
                return Some(g);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            if waited {
                on_short();
            }
            waited = true;
            let _ = tokio::time::timeout_at(deadline.min(now + RECLAIM_EVERY), freed).await;
        }
    }
}

impl Grant {
    /// Bytes reserved.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns what exceeds `bytes`.
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            let give = self.bytes - bytes;
            self.bytes = bytes;
            self.budget.release(give);
        }
    }
}

impl MemoryBudget {
    fn release(&self, bytes: usize) {
        let mut used = lock(&self.used);
        *used = used.saturating_sub(bytes);
        drop(used);
        self.freed.notify_waiters();
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.budget.grants.fetch_sub(1, Ordering::Relaxed);
        self.budget.release(self.bytes);
    }
}

// ---------------------------------------------------------------------------
// Half-open transfers
// ---------------------------------------------------------------------------

/// How a half-open transfer learns that it was ended to make room.
#[derive(Debug, Default)]
pub struct Eviction {
    evicted: AtomicBool,
    wake: Notify,
}

impl Eviction {
    /// Whether the transfer was evicted.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Completes once the transfer is evicted.
    pub async fn wait(&self) {
        loop {
            let n = self.wake.notified();
            if self.is_evicted() {
                return;
            }
            n.await;
        }
    }
}

#[derive(Debug)]
struct HalfOpenEntry {
    id: u64,
    since: Instant,
    /// Whether it holds a memory reservation (ending it frees memory).
    holds_memory: bool,
    /// The transfer's slot, held here while it is half-open so that an
    /// eviction can hand it to the request that needs it at once.
    permit: Option<OwnedSemaphorePermit>,
    eviction: Arc<Eviction>,
}

/// The transfers whose client has not answered yet, oldest first.
#[derive(Debug, Default)]
pub struct HalfOpenSet {
    entries: Mutex<VecDeque<HalfOpenEntry>>,
}

impl HalfOpenSet {
    /// Registers transfer `id`, started at `now`, holding `permit`.
    pub fn insert(&self, id: u64, permit: OwnedSemaphorePermit, now: Instant) -> Arc<Eviction> {
        let eviction = Arc::new(Eviction::default());
        lock(&self.entries).push_back(HalfOpenEntry {
            id,
            since: now,
            holds_memory: false,
            permit: Some(permit),
            eviction: eviction.clone(),
        });
        eviction
    }

    /// Transfer `id`'s client answered: it leaves the set and gets its
    /// slot back (`None` if it was evicted meanwhile).
    pub fn establish(&self, id: u64) -> Option<OwnedSemaphorePermit> {
        let mut entries = lock(&self.entries);
        let i = entries.iter().position(|e| e.id == id)?;
        entries.remove(i).and_then(|e| e.permit)
    }

    /// Transfer `id` holds a memory reservation now.
    pub fn holds_memory(&self, id: u64) {
        if let Some(e) = lock(&self.entries).iter_mut().find(|e| e.id == id) {
            e.holds_memory = true;
        }
    }

    /// Transfer `id` ended: it leaves the set (its slot is freed).
    pub fn remove(&self, id: u64) {
        let mut entries = lock(&self.entries);
        if let Some(i) = entries.iter().position(|e| e.id == id) {
            entries.remove(i);
        }
    }

    /// Ends the oldest transfer other than `except` that has been
    /// half-open for at least `min_age` (and, with `for_memory`, holds a
    /// memory reservation: one still waiting for memory frees none), and
    /// returns its slot.
    pub fn evict_oldest(
        &self,
        min_age: Duration,
        now: Instant,
        except: u64,
        for_memory: bool,
    ) -> Option<OwnedSemaphorePermit> {
        let mut entries = lock(&self.entries);
        let i = entries
            .iter()
            .position(|e| e.id != except && (e.holds_memory || !for_memory))?;
        if now.saturating_duration_since(entries[i].since) < min_age {
            return None;
        }
        let e = entries.remove(i)?;
        e.eviction.evicted.store(true, Ordering::Release);
        e.eviction.wake.notify_one();
        e.permit
    }

    /// Transfers half-open now.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether none is half-open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------

/// What the server turned away or cut short, for `-v` reports and the
/// summary on exit (see [`crate::Server::counters`]).
#[derive(Debug)]
pub struct Counters {
    refused: [AtomicU64; RefusalKind::ALL.len()],
    garbage: AtomicU64,
    half_open_dropped: AtomicU64,
    evicted: AtomicU64,
    windows_lowered: AtomicU64,
    budget: Arc<MemoryBudget>,
    /// Individual refusal log lines left in the current second.
    log_window: Mutex<(Instant, u32)>,
}

/// Individual refusals logged per second; the rest are only counted (the
/// server's once-a-second report names them).
const REFUSAL_LOGS_PER_SECOND: u32 = 10;

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Refused requests by reason, in [`RefusalKind::ALL`] order.
    pub refused: [u64; RefusalKind::ALL.len()],
    /// Datagrams on the listening port that were no request (malformed, or
    /// a packet with no transfer there).
    pub garbage: u64,
    /// Transfers dropped because their client never answered.
    pub half_open_dropped: u64,
    /// Half-open transfers ended early to make room for a new request.
    pub evicted: u64,
    /// Transfers granted a smaller window than negotiated, for memory.
    pub windows_lowered: u64,
    /// Memory budget: total, reserved now, most reserved at once (bytes).
    pub budget_total: usize,
    /// Bytes reserved now.
    pub budget_used: usize,
    /// Most bytes reserved at once.
    pub budget_peak: usize,
}

impl Counters {
    /// Counters over `budget`.
    pub fn new(budget: Arc<MemoryBudget>) -> Arc<Counters> {
        Arc::new(Counters {
            refused: Default::default(),
            garbage: AtomicU64::new(0),
            half_open_dropped: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            windows_lowered: AtomicU64::new(0),
            budget,
            log_window: Mutex::new((Instant::now(), 0)),
        })
    }

    /// The memory budget.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// Counts a refusal; true when it may also be logged on its own line
    /// (at most [`REFUSAL_LOGS_PER_SECOND`] a second).
    pub fn refused(&self, kind: RefusalKind) -> bool {
        self.refused[kind as usize].fetch_add(1, Ordering::Relaxed);
        let mut w = lock(&self.log_window);
        let now = Instant::now();
        if now.saturating_duration_since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        w.1 += 1;
        w.1 <= REFUSAL_LOGS_PER_SECOND
    }

    /// Counts a datagram that was no request.
    pub fn garbage(&self) {
        self.garbage.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a transfer dropped as half-open.
    pub fn half_open_dropped(&self) {
        self.half_open_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an eviction.
    pub fn evicted(&self) {
        self.evicted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a window lowered for memory.
    pub fn window_lowered(&self) {
        self.windows_lowered.fetch_add(1, Ordering::Relaxed);
    }

    /// The numbers now.
    pub fn tally(&self) -> Tally {
        let mut refused = [0; RefusalKind::ALL.len()];
        for (r, c) in refused.iter_mut().zip(&self.refused) {
            *r = c.load(Ordering::Relaxed);
        }
        Tally {
            refused,
            garbage: self.garbage.load(Ordering::Relaxed),
            half_open_dropped: self.half_open_dropped.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            windows_lowered: self.windows_lowered.load(Ordering::Relaxed),
            budget_total: self.budget.total(),
            budget_used: self.budget.used(),
            budget_peak: self.budget.peak(),
        }
    }
}

impl Tally {
    /// Refusals of one kind.
    pub fn refused(&self, kind: RefusalKind) -> u64 {
        self.refused[kind as usize]
    }

    /// All refusals.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// What happened since `earlier` (budget figures stay current).
    pub fn since(&self, earlier: &Tally) -> Tally {
        let mut refused = self.refused;
        for (r, e) in refused.iter_mut().zip(&earlier.refused) {
            *r = r.saturating_sub(*e);
        }
        Tally {
            refused,
            garbage: self.garbage.saturating_sub(earlier.garbage),
            half_open_dropped: self
                .half_open_dropped
                .saturating_sub(earlier.half_open_dropped),
            evicted: self.evicted.saturating_sub(earlier.evicted),
            windows_lowered: self.windows_lowered.saturating_sub(earlier.windows_lowered),
            ..self.clone()
        }
    }

    /// Whether anything was counted (budget figures aside).
    pub fn is_quiet(&self) -> bool {
        self.refused_total() == 0
            && self.garbage == 0
            && self.half_open_dropped == 0
            && self.evicted == 0
            && self.windows_lowered == 0
    }
}

/// One line: `refused 1996 (1996 per-client limit), 2000 malformed
/// datagrams, 4 half-open dropped, …`; the parts that are zero are left
/// out.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let total = self.refused_total();
        if total > 0 {
            let by: Vec<String> = RefusalKind::ALL
                .iter()
                .filter(|k| self.refused(**k) > 0)
                .map(|k| format!("{} {k}", self.refused(*k)))
                .collect();
            parts.push(format!("refused {total} requests ({})", by.join(", ")));
        }
        if self.garbage > 0 {
            parts.push(format!("{} malformed or stray datagrams", self.garbage));
        }
        if self.half_open_dropped > 0 {
            parts.push(format!(
                "{} half-open transfers dropped (no answer)",
                self.half_open_dropped
            ));
        }
        if self.evicted > 0 {
            parts.push(format!(
                "{} half-open transfers ended to make room",
                self.evicted
            ));
        }
        if self.windows_lowered > 0 {
            parts.push(format!(
                "{} windows lowered for memory",
                self.windows_lowered
            ));
        }
        if parts.is_empty() {
            parts.push("nothing refused".into());
        }
        write!(
            f,
            "{}; memory budget {} of {} in use, peak {}",
            parts.join(", "),
            crate::event::human_bytes(self.budget_used as u64),
            crate::event::human_bytes(self.budget_total as u64),
            crate::event::human_bytes(self.budget_peak as u64)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    #[test]
    fn per_client_limit_counts_and_frees() {
        let t = ClientTable::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = t.try_admit(a).expect("first");
        let s2 = t.try_admit(a).expect("second");
        assert!(t.try_admit(a).is_none(), "third from the same address");
        let s3 = t.try_admit(b).expect("another address is not affected");
        assert_eq!(t.running(a), 2);
        drop(s1);
        let s4 = t.try_admit(a).expect("freed");
        drop((s2, s3, s4));
        assert!(lock(&t.running).is_empty(), "no entries left behind");
        let unlimited = ClientTable::new(0);
        let many: Vec<_> = (0..100).map(|_| unlimited.try_admit(a).unwrap()).collect();
        assert_eq!(unlimited.running(a), 100);
        drop(many);
    }

    #[test]
    fn budget_grants_what_is_free_down_to_the_minimum() {
        let b = MemoryBudget::new(1000);
        let g1 = b.try_grant(100, 600, 0).unwrap();
        assert_eq!(g1.bytes(), 600);
        let mut g2 = b.try_grant(100, 600, 0).unwrap();
        assert_eq!(g2.bytes(), 400, "what is left");
        assert!(b.try_grant(1, 10, 0).is_none(), "nothing left");
        g2.shrink_to(150);
        assert_eq!(b.used(), 750);
        assert!(b.try_grant(300, 300, 0).is_none(), "below the minimum");
        let g3 = b.try_grant(250, 300, 0).unwrap();
        assert_eq!(g3.bytes(), 250);
        assert_eq!(b.peak(), 1000);
        assert_eq!(b.grants(), 3);
        drop((g1, g2, g3));
        assert_eq!(b.used(), 0);
        assert_eq!(b.grants(), 0);
        // What is kept free for others limits what goes beyond the
        // minimum, never the minimum itself.
        let g1 = b.try_grant(100, 900, 600).unwrap();
        assert_eq!(g1.bytes(), 400);
        let g2 = b.try_grant(100, 900, 550).unwrap();
        assert_eq!(
            g2.bytes(),
            100,
            "the minimum, though it cuts into the floor"
        );
        assert!(b.try_grant(600, 900, 0).is_none());
        drop((g1, g2));
    }

    #[tokio::test]
    async fn budget_waits_for_memory_to_come_back() {
        let b = MemoryBudget::new(100);
        let g = b.try_grant(100, 100, 0).unwrap();
        let b2 = b.clone();
        let waiter = tokio::spawn(async move {
            b2.grant(50, 80, || 0, Duration::from_secs(10), || {})
                .await
                .map(|g| g.bytes())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(g);
        assert_eq!(waiter.await.unwrap(), Some(80));
        let g = b.try_grant(100, 100, 0).unwrap();
        let mut shorts = 0;
        let got = b
            .grant(10, 10, || 0, Duration::from_millis(200), || shorts += 1)
            .await;
        assert!(got.is_none(), "gives up after the wait");
        assert!(shorts >= 2, "reclaims again while waiting: {shorts}");
        drop(g);
    }

    #[test]
    fn eviction_takes_the_oldest_old_enough_half_open_transfer() {
        let sem = Arc::new(Semaphore::new(3));
        let set = HalfOpenSet::default();
        let t0 = Instant::now();
        let p = || sem.clone().try_acquire_owned().unwrap();
        let e1 = set.insert(1, p(), t0);
        let e2 = set.insert(2, p(), t0 + Duration::from_millis(10));
        let _e3a = set.insert(3, p(), t0 + Duration::from_millis(20));
        assert_eq!(sem.available_permits(), 0);
        assert!(
            set.evict_oldest(
                EVICT_AGE,
                t0 + EVICT_AGE - Duration::from_millis(1),
                0,
                false
            )
            .is_none(),
            "too young"
        );
        // Transfer 1's client answers: it is no longer evictable.
        let kept = set.establish(1).expect("its permit back");
        assert!(!e1.is_evicted());
        assert!(
            set.evict_oldest(EVICT_AGE, t0 + Duration::from_secs(1), 2, true)
                .is_none(),
            "none holds memory"
        );
        set.holds_memory(3);
        assert!(
            set.evict_oldest(EVICT_AGE, t0 + Duration::from_secs(1), 2, true)
                .is_some_and(|p| {
                    drop(p);
                    true
                }),
            "transfer 3, when 2 is excepted"
        );
        let e3 = set.insert(
            3,
            sem.clone().try_acquire_owned().unwrap(),
            t0 + Duration::from_millis(20),
        );
        let taken = set
            .evict_oldest(EVICT_AGE, t0 + Duration::from_secs(1), 0, false)
            .expect("transfer 2 is the oldest half-open one");
        assert!(e2.is_evicted());
        assert!(
            set.establish(2).is_none(),
            "an evicted transfer has no slot"
        );
        assert!(!e3.is_evicted());
        set.remove(3);
        assert!(set.is_empty());
        assert_eq!(sem.available_permits(), 1, "transfer 3's slot came back");
        drop((kept, taken));
        assert_eq!(sem.available_permits(), 3);
    }

    #[test]
    fn tally_names_each_reason_and_the_budget() {
        let c = Counters::new(MemoryBudget::new(32 << 20));
        for _ in 0..3 {
            c.refused(RefusalKind::PerClient);
        }
        c.refused(RefusalKind::Busy);
        c.garbage();
        c.half_open_dropped();
        let t = c.tally();
        assert_eq!(t.refused(RefusalKind::PerClient), 3);
        assert_eq!(
            t.to_string(),
            "refused 4 requests (3 per-client limit, 1 server busy), 1 malformed or stray datagrams, \
             1 half-open transfers dropped (no answer); memory budget 0 B of 32.0 MiB in use, peak 0 B"
        );
        let later = c.tally().since(&t);
        assert!(later.is_quiet());
    }

    #[test]
    fn refusal_log_lines_are_rate_limited() {
        let c = Counters::new(MemoryBudget::new(1));
        let logged = (0..100)
            .filter(|_| c.refused(RefusalKind::PerClient))
            .count();
        assert_eq!(logged, REFUSAL_LOGS_PER_SECOND as usize);
        assert_eq!(c.tally().refused(RefusalKind::PerClient), 100);
    }
}
