//! Busy polling: when to spin for a client's answer before sleeping.
//!
//! In lock-step a read transfer sends one block and waits for its ACK.
//! Sleeping in `poll(2)` until the ACK arrives costs a wake-up: the kernel
//! has to schedule the transfer thread again, and a CPU that went idle
//! meanwhile first has to leave its idle state (on a virtual machine the
//! host has to run the vCPU again). On a fast link the wake-up is a large
//! part of the round trip. A thread that keeps asking the socket for a
//! short while instead sees the ACK as soon as it is queued.
//!
//! Spinning costs CPU, so it is bounded three ways: each wait spins at
//! most [`BusyPoll`]'s limit; a wait whose answer did not come within
//! the limit (a slow client, such as a boot loader over a 100 Mbit/s
//! link) makes the next waits sleep at once, for a stretch that doubles
//! with every further miss (up to [`MAX_SKIP`] waits) and halves with every
//! catch; and the server lets only some threads spin at once
//! ([`SpinSlots`], one less than the CPUs available, so none on one
//! CPU), and none at all while more read transfers run than that: then
//! the CPUs have work (the transfers, and on the same host their
//! clients), and a spin would only take CPU time from it. This module
//! holds the policy only; the server does the spinning.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Longest stretch of waits that sleep at once after missed spins.
pub const MAX_SKIP: u32 = 256;

/// The spinning policy of one transfer.
#[derive(Debug, Clone)]
pub struct BusyPoll {
    limit: Duration,
    /// Waits left that sleep at once.
    skip: u32,
    /// Length of the next stretch of sleeping waits after a miss.
    penalty: u32,
    /// Spins that caught the answer, and spins that ran out.
    caught: u64,
    missed: u64,
}

impl BusyPoll {
    /// A policy spinning at most `limit` per wait (zero: never).
    pub fn new(limit: Duration) -> Self {
        BusyPoll {
            limit,
            skip: 0,
            penalty: 0,
            caught: 0,
            missed: 0,
        }
    }

    /// How long the next wait may spin before it sleeps (zero: sleep at
    /// once). A non-zero answer must be followed by [`BusyPoll::record`].
    pub fn budget(&mut self) -> Duration {
        if self.limit.is_zero() {
            return Duration::ZERO;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Duration::ZERO;
        }
        self.limit
    }

    /// Reports how a spinning wait ended: `caught` when the answer came
    /// while spinning, false when the spin ran out and the wait slept.
    pub fn record(&mut self, caught: bool) {
        if caught {
            self.caught += 1;
            self.penalty /= 2;
        } else {
            self.missed += 1;
            self.penalty = (self.penalty * 2).clamp(1, MAX_SKIP);
            self.skip = self.penalty;
        }
    }

    /// Spins so far: (caught the answer, ran out).
    pub fn spins(&self) -> (u64, u64) {
        (self.caught, self.missed)
    }
}

/// How many threads of a server may spin at once.
#[derive(Debug)]
pub struct SpinSlots {
    used: AtomicUsize,
    running: AtomicUsize,
    max: usize,
}

impl SpinSlots {
    /// At most `max` spinners at once, and none while more than `max`
    /// transfers are running.
    pub fn new(max: usize) -> Self {
        SpinSlots {
            used: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            max,
        }
    }

    /// Counts a transfer as running until the guard is dropped.
    pub fn running(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::AcqRel);
        Running(self)
    }

    /// One less than the CPUs this process may use: a spinner must never
    /// take the CPU the client (or the virtual machine running it) needs.
    pub fn for_this_machine() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        SpinSlots::new(cpus - 1)
    }

    /// A slot, when one is free and no more than `max` transfers run;
    /// it is given back when dropped.
    pub fn try_take(&self) -> Option<SpinSlot<'_>> {
        if self.running.load(Ordering::Acquire) > self.max {
            return None;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| SpinSlot(self))
    }
}

/// A running transfer, counted by [`SpinSlots::running`].
#[derive(Debug)]
pub struct Running<'a>(&'a SpinSlots);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The right to spin, held for one wait.
#[derive(Debug)]
pub struct SpinSlot<'a>(&'a SpinSlots);

impl Drop for SpinSlot<'_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Duration = Duration::from_micros(50);

    #[test]
    fn zero_limit_never_spins() {
        let mut b = BusyPoll::new(Duration::ZERO);
        for _ in 0..10 {
            assert_eq!(b.budget(), Duration::ZERO);
        }
    }

    #[test]
    fn a_client_answering_within_the_limit_is_always_spun_for() {
        let mut b = BusyPoll::new(L);
        for _ in 0..1000 {
            assert_eq!(b.budget(), L);
            b.record(true);
        }
    }

    /// Spins attempted over `waits` waits when every spin misses.
    fn spins_when_always_missing(waits: usize) -> usize {
        let mut b = BusyPoll::new(L);
        let mut spins = 0;
        for _ in 0..waits {
            if !b.budget().is_zero() {
                spins += 1;
                b.record(false);
            }
        }
        spins
    }

    #[test]
    fn a_slow_client_is_spun_for_ever_more_rarely() {
        // Stretches of 1, 2, 4 ... 256 sleeping waits after each miss.
        let mut b = BusyPoll::new(L);
        let mut pattern = Vec::new();
        for _ in 0..20 {
            pattern.push(!b.budget().is_zero());
            if *pattern.last().unwrap() {
                b.record(false);
            }
        }
        let spun: Vec<usize> = (0..20).filter(|&i| pattern[i]).collect();
        assert_eq!(spun, vec![0, 2, 5, 10, 19]);
        // In the long run one wait in MAX_SKIP + 1 spins.
        let waits = 100_000;
        let spins = spins_when_always_missing(waits);
        assert!(spins <= waits / MAX_SKIP as usize + 9, "{spins} spins");
        assert!(spins >= waits / (MAX_SKIP as usize + 1), "{spins} spins");
    }

    #[test]
    fn catches_win_back_spinning_gradually() {
        let mut b = BusyPoll::new(L);
        // Three misses: penalty 4.
        for _ in 0..3 {
            while b.budget().is_zero() {}
            b.record(false);
        }
        for _ in 0..4 {
            assert_eq!(b.budget(), Duration::ZERO);
        }
        assert_eq!(b.budget(), L);
        assert_eq!(b.spins(), (0, 3));
        b.record(true); // penalty 2
        assert_eq!(b.budget(), L);
        b.record(false); // penalty 4 again: a catch halved, a miss doubles
        for _ in 0..4 {
            assert_eq!(b.budget(), Duration::ZERO);
        }
        assert_eq!(b.budget(), L);
    }

    #[test]
    fn slots_bound_the_spinners_and_come_back() {
        let s = SpinSlots::new(2);
        let a = s.try_take().expect("first");
        let b = s.try_take().expect("second");
        assert!(s.try_take().is_none());
        drop(a);
        let c = s.try_take().expect("freed");
        assert!(s.try_take().is_none());
        drop(b);
        drop(c);
        assert_eq!(s.used.load(Ordering::Relaxed), 0);
        assert!(SpinSlots::new(0).try_take().is_none());
    }

    #[test]
    fn nobody_spins_while_more_transfers_run_than_slots() {
        let s = SpinSlots::new(1);
        let a = s.running();
        assert!(s.try_take().is_some(), "one transfer, one slot");
        let b = s.running();
        assert!(s.try_take().is_none(), "two transfers busy the CPUs");
        drop(a);
        assert!(s.try_take().is_some(), "back to one");
        drop(b);
        assert_eq!(s.running.load(Ordering::Relaxed), 0);
    }
}
