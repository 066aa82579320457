//! Retransmission timer: a TCP-style estimator (RFC 6298) applied to TFTP.
//!
//! A fixed multi-second timeout turns every lost packet into a visible stall
//! (U-Boot prints `T` and the developer waits). Instead each transfer
//! measures its own round-trip time — DATA sent to ACK received, skipping
//! retransmitted blocks (Karn's rule) — and retransmits after
//! `srtt + 4·rttvar`, clamped to a floor and a ceiling, doubling on each
//! consecutive timeout. On a clean link the timer never fires; on a lossy
//! one a loss costs a few milliseconds instead of seconds; on a merely slow
//! link the estimate grows with the measured delay so retransmissions stay
//! rare.

use std::time::Duration;

/// Timer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoConfig {
    /// Timeout before the first RTT sample.
    pub initial: Duration,
    /// Smallest timeout ever used.
    pub min: Duration,
    /// Largest timeout ever used (also the backoff ceiling).
    pub max: Duration,
}

impl Default for RtoConfig {
    fn default() -> Self {
        RtoConfig {
            initial: Duration::from_millis(1000),
            min: Duration::from_millis(2),
            max: Duration::from_millis(1000),
        }
    }
}

/// RTT estimator and current retransmission timeout.
#[derive(Debug, Clone)]
pub struct Rto {
    cfg: RtoConfig,
    srtt: Option<Duration>,
    rttvar: Duration,
    backoff: u32,
}

impl Rto {
    /// A new estimator with no samples.
    pub fn new(cfg: RtoConfig) -> Self {
        let cfg = RtoConfig {
            max: cfg.max.max(cfg.min),
            ..cfg
        };
        Rto {
            cfg,
            srtt: None,
            rttvar: Duration::ZERO,
            backoff: 0,
        }
    }

    /// Feeds one round-trip sample (from a block sent exactly once).
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        self.backoff = 0;
    }

    /// Doubles the timeout after a retransmission (until the ceiling).
    pub fn on_timeout(&mut self) {
        self.backoff = (self.backoff + 1).min(16);
    }

    /// Forgets the backoff after forward progress without a usable sample.
    pub fn on_progress(&mut self) {
        self.backoff = 0;
    }

    /// Smoothed RTT, if any sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The timeout to arm now.
    pub fn timeout(&self) -> Duration {
        let base = match self.srtt {
            None => self.cfg.initial,
            // The margin over srtt: 4·rttvar as in RFC 6298, but never
            // less than a quarter of srtt (a steady link drives rttvar to
            // zero, and scheduling jitter would then fire the timer
            // spuriously) nor 1 ms (timer granularity).
            Some(srtt) => {
                srtt + (self.rttvar * 4)
                    .max(srtt / 4)
                    .max(Duration::from_millis(1))
            }
        };
        let base = base.clamp(self.cfg.min, self.cfg.max);
        base.saturating_mul(1u32 << self.backoff.min(16))
            .min(self.cfg.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn initial_then_adapts_to_samples() {
        let mut r = Rto::new(RtoConfig::default());
        assert_eq!(r.timeout(), ms(1000));
        r.sample(ms(20));
        // srtt 20 + 4 * 10
        assert_eq!(r.timeout(), ms(60));
        for _ in 0..50 {
            r.sample(ms(20));
        }
        // A steady link: srtt plus a quarter of it.
        assert_eq!(r.timeout(), ms(25));
    }

    #[test]
    fn floor_and_ceiling() {
        let mut r = Rto::new(RtoConfig::default());
        for _ in 0..50 {
            r.sample(Duration::from_micros(30));
        }
        assert_eq!(r.timeout(), ms(2));
        r.sample(ms(5000));
        assert_eq!(r.timeout(), ms(1000));
    }

    #[test]
    fn backoff_doubles_until_ceiling_and_resets_on_sample() {
        let mut r = Rto::new(RtoConfig::default());
        for _ in 0..20 {
            r.sample(ms(10));
        }
        let base = r.timeout();
        r.on_timeout();
        assert_eq!(r.timeout(), base * 2);
        r.on_timeout();
        assert_eq!(r.timeout(), base * 4);
        for _ in 0..30 {
            r.on_timeout();
        }
        assert_eq!(r.timeout(), ms(1000));
        r.sample(ms(10));
        assert!(r.timeout() <= base * 2);
    }

    #[test]
    fn slow_link_raises_estimate_instead_of_retransmitting() {
        let mut r = Rto::new(RtoConfig::default());
        for _ in 0..20 {
            r.sample(ms(200));
        }
        assert!(r.timeout() > ms(200));
    }
}
