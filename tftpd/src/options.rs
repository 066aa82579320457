//! Option negotiation (RFC 2347 framework; `blksize` RFC 2348, `timeout` and
//! `tsize` RFC 2349, `windowsize` RFC 7440) against the server's caps.
//!
//! The rules that matter for boot loaders:
//! - `timeout` is never counter-proposed: RFC 2349 gives the server no say
//!   in the value, and U-Boot aborts the transfer when the OACK's value
//!   differs from what it sent. We either echo the client's string exactly or
//!   leave the option out of the OACK (when it is outside the server's
//!   accepted range); our own retransmission timer is independent of it.
//! - `blksize` and `windowsize` may be lowered to the server's cap, never
//!   raised (U-Boot rejects a larger `blksize`).
//! - Unknown options are ignored; an OACK is sent only when at least one
//!   option was accepted, otherwise the transfer starts RFC 1350-style.
//! - Malformed or out-of-range values end the request with ERROR 8.

use std::time::Duration;

use crate::packet::{ErrorCode, Mode};

/// Smallest `blksize` RFC 2348 allows.
pub const MIN_BLKSIZE: u16 = 8;
/// Largest `blksize` RFC 2348 allows.
pub const MAX_BLKSIZE: u16 = 65464;
/// Block size without negotiation (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = 512;

/// Server-side caps applied during negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest block size the server agrees to (8..=65464).
    pub max_blksize: u16,
    /// Largest window the server agrees to (1..=65535).
    pub max_windowsize: u16,
    /// Smallest client `timeout` (seconds) the server acknowledges.
    pub min_timeout: u8,
    /// Largest client `timeout` (seconds) the server acknowledges.
    pub max_timeout: u8,
    /// Largest upload accepted on a write request, in bytes.
    pub max_upload: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blksize: MAX_BLKSIZE,
            max_windowsize: 64,
            min_timeout: 1,
            max_timeout: 255,
            max_upload: 1 << 30,
        }
    }
}

/// Why [`Limits`] cannot be negotiated with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// The largest block size is outside what RFC 2348 allows.
    #[error("a largest block size of {0} is outside {MIN_BLKSIZE}..={MAX_BLKSIZE} (RFC 2348)")]
    Blksize(u16),
    /// A largest window of 0 blocks.
    #[error("a largest window of 0 blocks allows no transfer (RFC 7440: 1..=65535)")]
    Windowsize,
    /// A smallest timeout of 0 seconds.
    #[error("a smallest timeout of 0 s is not a TFTP timeout (RFC 2349: 1..=255)")]
    MinTimeout,
    /// The smallest acknowledged timeout is above the largest.
    #[error("the smallest acknowledged timeout ({min} s) is larger than the largest ({max} s)")]
    TimeoutRange {
        /// [`Limits::min_timeout`].
        min: u8,
        /// [`Limits::max_timeout`].
        max: u8,
    },
}

impl Limits {
    /// Checks that the caps make sense: a block size RFC 2348 allows, a
    /// window of at least one block, and a timeout range that is not
    /// empty. [`crate::Server::bind`] refuses limits that fail it.
    pub fn check(&self) -> Result<(), LimitsError> {
        if !(MIN_BLKSIZE..=MAX_BLKSIZE).contains(&self.max_blksize) {
            return Err(LimitsError::Blksize(self.max_blksize));
        }
        if self.max_windowsize == 0 {
            return Err(LimitsError::Windowsize);
        }
        if self.min_timeout == 0 {
            return Err(LimitsError::MinTimeout);
        }
        if self.min_timeout > self.max_timeout {
            return Err(LimitsError::TimeoutRange {
                min: self.min_timeout,
                max: self.max_timeout,
            });
        }
        Ok(())
    }
}

/// The result of negotiation: what the transfer runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Data bytes per block.
    pub blksize: u16,
    /// Blocks sent before waiting for an ACK.
    pub windowsize: u16,
    /// Client's `timeout`, when acknowledged.
    pub timeout: Option<Duration>,
    /// Transfer size: the file size on RRQ, the announced size on WRQ.
    pub tsize: Option<u64>,
    /// Options to put in the OACK, in request order; empty means no OACK.
    pub oack: Vec<(String, String)>,
}

impl Negotiated {
    /// The options an RFC 1350 transfer runs with (no OACK).
    pub fn plain() -> Self {
        Negotiated {
            blksize: DEFAULT_BLKSIZE,
            windowsize: 1,
            timeout: None,
            tsize: None,
            oack: Vec::new(),
        }
    }
}

impl Negotiated {
    /// Lowers the window to `window` (when smaller), in the OACK too: RFC
    /// 7440 lets the server answer with a smaller `windowsize`.
    pub fn lower_window(&mut self, window: u16) {
        let window = window.max(1);
        if window >= self.windowsize {
            return;
        }
        self.windowsize = window;
        for (name, value) in &mut self.oack {
            if name == "windowsize" {
                *value = window.to_string();
            }
        }
    }
}

/// A request whose options cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NegotiationError {
    /// The error code to send (8, or 3 for an oversized upload).
    pub code: ErrorCode,
    /// Human-readable reason, sent in the ERROR packet.
    pub message: String,
}

fn bad(option: &str, value: &str, rule: &str) -> NegotiationError {
    NegotiationError {
        code: ErrorCode::OptionNegotiation,
        message: format!("option {option}={value:?}: {rule}"),
    }
}

fn parse_num(option: &str, value: &str) -> Result<u64, NegotiationError> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(option, value, "not a decimal number"));
    }
    v.parse::<u64>()
        .map_err(|_| bad(option, value, "number too large"))
}

/// What the negotiator knows about the request.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Read request; `size` is the file size when it can be announced.
    Read {
        /// File size in bytes (None for netascii, whose wire size differs).
        size: Option<u64>,
    },
    /// Write request.
    Write,
}

/// Negotiates a request's options. `options` come from [`crate::packet::Request`]
/// (names already lower-cased).
pub fn negotiate(
    options: &[(String, String)],
    mode: Mode,
    direction: Direction,
    limits: &Limits,
) -> Result<Negotiated, NegotiationError> {
    let mut n = Negotiated::plain();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in options {
        // A repeated option is ignored: the first occurrence decides.
        if seen.contains(&name.as_str()) {
            tracing::debug!(option = %name, "duplicate option ignored");
            continue;
        }
        seen.push(name);
        match name.as_str() {
            "blksize" => {
                let v = parse_num(name, value)?;
                if v < MIN_BLKSIZE as u64 || v > MAX_BLKSIZE as u64 {
                    return Err(bad(name, value, "RFC 2348 allows 8 to 65464"));
                }
                let chosen = (v as u16).min(limits.max_blksize);
                tracing::debug!(requested = v, chosen, "blksize negotiated");
                n.blksize = chosen;
                n.oack.push((name.clone(), chosen.to_string()));
            }
            "windowsize" => {
                let v = parse_num(name, value)?;
                if !(1..=65535).contains(&v) {
                    return Err(bad(name, value, "RFC 7440 allows 1 to 65535"));
                }
                let chosen = (v as u16).min(limits.max_windowsize.max(1));
                tracing::debug!(requested = v, chosen, "windowsize negotiated");
                n.windowsize = chosen;
                n.oack.push((name.clone(), chosen.to_string()));
            }
            "timeout" => {
                let v = parse_num(name, value)?;
                if !(1..=255).contains(&v) {
                    return Err(bad(name, value, "RFC 2349 allows 1 to 255 seconds"));
                }
                if v < limits.min_timeout as u64 || v > limits.max_timeout as u64 {
                    // Not acknowledged: leaving it out is the only legal way
                    // to decline, since the value cannot be changed.
                    tracing::debug!(
                        requested = v,
                        "timeout outside server range, left out of OACK"
                    );
                    continue;
                }
                n.timeout = Some(Duration::from_secs(v));
                // Echo the client's own string: U-Boot compares numerically,
                // other clients may compare text.
                n.oack.push((name.clone(), value.clone()));
            }
            "tsize" => {
                let v = parse_num(name, value)?;
                match direction {
                    // curl (7.88) rejects an OACK carrying `tsize 0`
                    // ("invalid tsize") and gives up, so the size of an empty
                    // file is not offered; its empty first block says it.
                    Direction::Read { size: Some(0) } => {
                        n.tsize = Some(0);
                        tracing::debug!("tsize not offered for an empty file");
                    }
                    Direction::Read { size: Some(size) } => {
                        n.tsize = Some(size);
                        n.oack.push((name.clone(), size.to_string()));
                    }
                    Direction::Read { size: None } => {
                        tracing::debug!("tsize not offered: {mode} size is not known in advance");
                    }
                    Direction::Write => {
                        if v > limits.max_upload {
                            return Err(NegotiationError {
                                code: ErrorCode::DiskFull,
                                message: format!(
                                    "upload of {v} bytes exceeds the server limit of {} bytes",
                                    limits.max_upload
                                ),
                            });
                        }
                        n.tsize = Some(v);
                        n.oack.push((name.clone(), value.clone()));
                    }
                }
            }
            other => tracing::debug!(option = other, "unknown option ignored"),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn rrq(list: &[(&str, &str)], limits: &Limits) -> Result<Negotiated, NegotiationError> {
        negotiate(
            &opts(list),
            Mode::Octet,
            Direction::Read { size: Some(1000) },
            limits,
        )
    }

    #[test]
    fn uboot_request_is_echoed() {
        let n = rrq(
            &[("timeout", "5"), ("tsize", "0"), ("blksize", "1468")],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.timeout, Some(Duration::from_secs(5)));
        assert_eq!(n.tsize, Some(1000));
        assert_eq!(
            n.oack,
            opts(&[("timeout", "5"), ("tsize", "1000"), ("blksize", "1468")])
        );
    }

    #[test]
    fn timeout_echoed_verbatim_or_left_out() {
        let n = rrq(&[("timeout", "05")], &Limits::default()).unwrap();
        assert_eq!(n.oack, opts(&[("timeout", "05")]));
        let limits = Limits {
            min_timeout: 2,
            max_timeout: 10,
            ..Limits::default()
        };
        let n = rrq(&[("timeout", "1")], &limits).unwrap();
        assert!(n.oack.is_empty());
        assert_eq!(n.timeout, None);
        assert!(rrq(&[("timeout", "0")], &limits).is_err());
        assert!(rrq(&[("timeout", "256")], &limits).is_err());
    }

    #[test]
    fn blksize_bounds_and_cap() {
        let limits = Limits {
            max_blksize: 1024,
            ..Limits::default()
        };
        assert_eq!(rrq(&[("blksize", "8")], &limits).unwrap().blksize, 8);
        let n = rrq(&[("blksize", "65464")], &limits).unwrap();
        assert_eq!(n.blksize, 1024);
        assert_eq!(n.oack, opts(&[("blksize", "1024")]));
        for bad in [
            "7",
            "65465",
            "0",
            "abc",
            "",
            "-1",
            "1e3",
            "99999999999999999999999",
        ] {
            let e = rrq(&[("blksize", bad)], &limits).unwrap_err();
            assert_eq!(e.code, ErrorCode::OptionNegotiation, "{bad}");
        }
    }

    #[test]
    fn windowsize_bounds_and_cap() {
        let limits = Limits {
            max_windowsize: 16,
            ..Limits::default()
        };
        assert_eq!(rrq(&[("windowsize", "8")], &limits).unwrap().windowsize, 8);
        assert_eq!(
            rrq(&[("windowsize", "65535")], &limits).unwrap().windowsize,
            16
        );
        assert!(rrq(&[("windowsize", "0")], &limits).is_err());
        assert!(rrq(&[("windowsize", "65536")], &limits).is_err());
    }

    #[test]
    fn unknown_options_ignored_and_no_oack_without_accepted_option() {
        let n = rrq(&[("multicast", ""), ("rollover", "0")], &Limits::default()).unwrap();
        assert!(n.oack.is_empty());
        assert_eq!(n.blksize, 512);
        assert_eq!(n.windowsize, 1);
    }

    #[test]
    fn duplicate_option_first_wins() {
        let n = rrq(
            &[("blksize", "1024"), ("blksize", "2048")],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(n.blksize, 1024);
        assert_eq!(n.oack.len(), 1);
    }

    #[test]
    fn tsize_of_empty_file_not_offered() {
        let n = negotiate(
            &opts(&[("tsize", "0"), ("blksize", "512")]),
            Mode::Octet,
            Direction::Read { size: Some(0) },
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(n.oack, opts(&[("blksize", "512")]));
    }

    #[test]
    fn tsize_on_netascii_read_not_offered() {
        let n = negotiate(
            &opts(&[("tsize", "0")]),
            Mode::Netascii,
            Direction::Read { size: None },
            &Limits::default(),
        )
        .unwrap();
        assert!(n.oack.is_empty());
    }

    #[test]
    fn tsize_on_write_checked_against_cap() {
        let limits = Limits {
            max_upload: 100,
            ..Limits::default()
        };
        let n = negotiate(
            &opts(&[("tsize", "100")]),
            Mode::Octet,
            Direction::Write,
            &limits,
        )
        .unwrap();
        assert_eq!(n.tsize, Some(100));
        assert_eq!(n.oack, opts(&[("tsize", "100")]));
        let e = negotiate(
            &opts(&[("tsize", "101")]),
            Mode::Octet,
            Direction::Write,
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::DiskFull);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(Limits::default().check(), Ok(()));
        let with = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l.check()
        };
        assert_eq!(
            with(|l| {
                l.min_timeout = 5;
                l.max_timeout = 5
            }),
            Ok(())
        );
        let e = with(|l| {
            l.min_timeout = 10;
            l.max_timeout = 5
        })
        .unwrap_err();
        assert_eq!(e, LimitsError::TimeoutRange { min: 10, max: 5 });
        assert_eq!(
            e.to_string(),
            "the smallest acknowledged timeout (10 s) is larger than the largest (5 s)"
        );
        assert_eq!(with(|l| l.min_timeout = 0), Err(LimitsError::MinTimeout));
        assert_eq!(with(|l| l.max_windowsize = 0), Err(LimitsError::Windowsize));
        assert_eq!(with(|l| l.max_blksize = 7), Err(LimitsError::Blksize(7)));
        assert_eq!(
            with(|l| l.max_blksize = MAX_BLKSIZE + 1),
            Err(LimitsError::Blksize(MAX_BLKSIZE + 1))
        );
        assert_eq!(with(|l| l.max_blksize = MIN_BLKSIZE), Ok(()));
    }
}
