//! TFTP wire format: parsing and emitting every packet of RFC 1350 and the
//! option extension of RFC 2347 (OACK).
//!
//! Parsing is strict about structure (lengths, NUL terminators, opcodes) and
//! liberal about content (option names are matched case-insensitively later,
//! unknown options are carried through so the negotiator can ignore them).
//! Every parse failure maps to the TFTP error a server should answer with, so
//! a malformed packet always gets a well-defined reply instead of a panic.

use std::fmt;

/// Opcode of a TFTP packet (RFC 1350 §5, RFC 2347 for OACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Opcode {
    /// Read request.
    Rrq = 1,
    /// Write request.
    Wrq = 2,
    /// Data block.
    Data = 3,
    /// Acknowledgement.
    Ack = 4,
    /// Error.
    Error = 5,
    /// Option acknowledgement (RFC 2347).
    Oack = 6,
}

impl Opcode {
    /// Maps a wire value to an opcode.
    pub fn from_u16(v: u16) -> Option<Opcode> {
        Some(match v {
            1 => Opcode::Rrq,
            2 => Opcode::Wrq,
            3 => Opcode::Data,
            4 => Opcode::Ack,
            5 => Opcode::Error,
            6 => Opcode::Oack,
            _ => return None,
        })
    }
}

/// TFTP error codes (RFC 1350 appendix, RFC 2347 for code 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// Not defined, see error message.
    NotDefined = 0,
    /// File not found.
    FileNotFound = 1,
    /// Access violation.
    AccessViolation = 2,
    /// Disk full or allocation exceeded.
    DiskFull = 3,
    /// Illegal TFTP operation.
    IllegalOperation = 4,
    /// Unknown transfer ID.
    UnknownTid = 5,
    /// File already exists.
    FileExists = 6,
    /// No such user.
    NoSuchUser = 7,
    /// Terminate transfer due to option negotiation (RFC 2347).
    OptionNegotiation = 8,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

/// Transfer mode of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Raw bytes.
    Octet,
    /// NVT ASCII with CR LF line ends and CR NUL for a bare CR.
    Netascii,
    /// Obsolete `mail` mode: parsed so it can be refused with a clear error.
    Mail,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Octet => "octet",
            Mode::Netascii => "netascii",
            Mode::Mail => "mail",
        })
    }
}

/// A read or write request with its raw options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The requested file name, as bytes (not necessarily UTF-8).
    pub filename: Vec<u8>,
    /// Transfer mode.
    pub mode: Mode,
    /// Options in the order received; names lower-cased, values verbatim.
    pub options: Vec<(String, String)>,
}

impl Request {
    /// The file name for display (lossy UTF-8).
    pub fn filename_lossy(&self) -> String {
        String::from_utf8_lossy(&self.filename).into_owned()
    }
}

/// A parsed TFTP packet borrowing its payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request.
    Rrq(Request),
    /// Write request.
    Wrq(Request),
    /// Data block `block` with up to blksize bytes.
    Data {
        /// Block number (wraps from 65535 to 0).
        block: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// Acknowledgement of `block`.
    Ack {
        /// Block number acknowledged.
        block: u16,
    },
    /// Error with code and message.
    Error {
        /// Raw error code (may be outside the defined range).
        code: u16,
        /// Message (lossy UTF-8).
        message: String,
    },
    /// Option acknowledgement.
    Oack {
        /// Accepted options.
        options: Vec<(String, String)>,
    },
}

/// Why a datagram could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer bytes than the fixed part of the packet.
    #[error("packet too short: {len} bytes, {opcode} needs at least {need}")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Minimum for that packet type.
        need: usize,
        /// Packet kind being parsed.
        opcode: &'static str,
    },
    /// Opcode not defined by RFC 1350/2347.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    /// A string field lacks its NUL terminator.
    #[error("{0} is not NUL-terminated")]
    MissingNul(&'static str),
    /// The mode is not octet, netascii or mail.
    #[error("unknown transfer mode {0:?}")]
    UnknownMode(String),
    /// An option name without a value, or an empty option name.
    #[error("malformed option list: {0}")]
    MalformedOptions(String),
    /// An empty file name.
    #[error("empty file name")]
    EmptyFilename,
}

impl ParseError {
    /// The error code a server answers this parse failure with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ParseError::MalformedOptions(_) => ErrorCode::OptionNegotiation,
            _ => ErrorCode::IllegalOperation,
        }
    }
}

impl<'a> Packet<'a> {
    /// Parses one datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, ParseError> {
        if buf.len() < 2 {
            return Err(ParseError::TooShort {
                len: buf.len(),
                need: 2,
                opcode: "any packet",
            });
        }
        let raw = u16::from_be_bytes([buf[0], buf[1]]);
        let op = Opcode::from_u16(raw).ok_or(ParseError::UnknownOpcode(raw))?;
        let body = &buf[2..];
        match op {
            Opcode::Rrq => Ok(Packet::Rrq(parse_request(body)?)),
            Opcode::Wrq => Ok(Packet::Wrq(parse_request(body)?)),
            Opcode::Data => {
                if body.len() < 2 {
                    return Err(ParseError::TooShort {
                        len: buf.len(),
                        need: 4,
                        opcode: "DATA",
                    });
                }
                Ok(Packet::Data {
                    block: u16::from_be_bytes([body[0], body[1]]),
                    data: &body[2..],
                })
            }
            Opcode::Ack => {
                // RFC 1350 ACKs are exactly 4 bytes; trailing bytes are tolerated
                // (some clients pad), only a short ACK is an error.
                if body.len() < 2 {
                    return Err(ParseError::TooShort {
                        len: buf.len(),
                        need: 4,
                        opcode: "ACK",
                    });
                }
                Ok(Packet::Ack {
                    block: u16::from_be_bytes([body[0], body[1]]),
                })
            }
            Opcode::Error => {
                if body.len() < 2 {
                    return Err(ParseError::TooShort {
                        len: buf.len(),
                        need: 4,
                        opcode: "ERROR",
                    });
                }
                let code = u16::from_be_bytes([body[0], body[1]]);
                // A missing terminator on an ERROR is tolerated: the peer is
                // going away anyway and the message is informational.
                let msg = &body[2..];
                let msg = match msg.iter().position(|&b| b == 0) {
                    Some(i) => &msg[..i],
                    None => msg,
                };
                Ok(Packet::Error {
                    code,
                    message: String::from_utf8_lossy(msg).into_owned(),
                })
            }
            Opcode::Oack => Ok(Packet::Oack {
                options: parse_options(body)?,
            }),
        }
    }

    /// Appends the wire form of this packet to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Rrq(r) | Packet::Wrq(r) => {
                let op = if matches!(self, Packet::Rrq(_)) {
                    Opcode::Rrq
                } else {
                    Opcode::Wrq
                };
                out.extend_from_slice(&(op as u16).to_be_bytes());
                out.extend_from_slice(&r.filename);
                out.push(0);
                out.extend_from_slice(r.mode.to_string().as_bytes());
                out.push(0);
                emit_options(&r.options, out);
            }
            Packet::Data { block, data } => emit_data_header(*block, out, data),
            Packet::Ack { block } => {
                out.extend_from_slice(&(Opcode::Ack as u16).to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&(Opcode::Error as u16).to_be_bytes());
                out.extend_from_slice(&code.to_be_bytes());
                // The message must not contain NUL: it would truncate it.
                out.extend(message.bytes().filter(|&b| b != 0));
                out.push(0);
            }
            Packet::Oack { options } => {
                out.extend_from_slice(&(Opcode::Oack as u16).to_be_bytes());
                emit_options(options, out);
            }
        }
    }

    /// The wire form of this packet as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v);
        v
    }
}

fn emit_data_header(block: u16, out: &mut Vec<u8>, data: &[u8]) {
    out.reserve(4 + data.len());
    out.extend_from_slice(&(Opcode::Data as u16).to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(data);
}

/// Builds an ERROR packet.
pub fn error_packet(code: ErrorCode, message: &str) -> Vec<u8> {
    Packet::Error {
        code: code.as_u16(),
        message: message.to_string(),
    }
    .to_bytes()
}

/// Builds an ACK packet.
pub fn ack_packet(block: u16) -> Vec<u8> {
    Packet::Ack { block }.to_bytes()
}

fn emit_options(options: &[(String, String)], out: &mut Vec<u8>) {
    for (k, v) in options {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
}

fn take_cstr<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], ParseError> {
    let i = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or(ParseError::MissingNul(what))?;
    let s = &buf[..i];
    *buf = &buf[i + 1..];
    Ok(s)
}

fn parse_request(mut body: &[u8]) -> Result<Request, ParseError> {
    let filename = take_cstr(&mut body, "file name")?;
    if filename.is_empty() {
        return Err(ParseError::EmptyFilename);
    }
    let mode = take_cstr(&mut body, "mode")?;
    let mode_s = String::from_utf8_lossy(mode).to_ascii_lowercase();
    let mode = match mode_s.as_str() {
        "octet" => Mode::Octet,
        "netascii" => Mode::Netascii,
        "mail" => Mode::Mail,
        _ => return Err(ParseError::UnknownMode(mode_s)),
    };
    let options = parse_options(body)?;
    Ok(Request {
        filename: filename.to_vec(),
        mode,
        options,
    })
}

fn parse_options(mut body: &[u8]) -> Result<Vec<(String, String)>, ParseError> {
    let mut options = Vec::new();
    // Some clients pad requests with trailing NULs; an all-zero tail is not
    // an option list.
    while !body.is_empty() && body.iter().any(|&b| b != 0) {
        let name = take_cstr(&mut body, "option name")
            .map_err(|_| ParseError::MalformedOptions("option name without NUL".into()))?;
        if name.is_empty() {
            return Err(ParseError::MalformedOptions("empty option name".into()));
        }
        let value = take_cstr(&mut body, "option value").map_err(|_| {
            ParseError::MalformedOptions(format!(
                "option {:?} has no NUL-terminated value",
                String::from_utf8_lossy(name)
            ))
        })?;
        options.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Ok(options)
}

/// Writes a DATA packet header and payload into `out`, replacing its contents.
/// This is the hot path of a read transfer, so it reuses the caller's buffer.
pub fn write_data(out: &mut Vec<u8>, block: u16, payload: &[u8]) {
    out.clear();
    emit_data_header(block, out, payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrq_with_options_round_trips() {
        let wire = b"\x00\x01uImage\x00octet\x00timeout\x005\x00blksize\x001468\x00";
        let p = Packet::parse(wire).unwrap();
        let expect = Packet::Rrq(Request {
            filename: b"uImage".to_vec(),
            mode: Mode::Octet,
            options: vec![
                ("timeout".into(), "5".into()),
                ("blksize".into(), "1468".into()),
            ],
        });
        assert_eq!(p, expect);
        assert_eq!(expect.to_bytes(), wire.to_vec());
    }

    #[test]
    fn mode_and_option_names_are_case_insensitive() {
        let wire = b"\x00\x02f\x00NetASCII\x00BlkSize\x00512\x00";
        match Packet::parse(wire).unwrap() {
            Packet::Wrq(r) => {
                assert_eq!(r.mode, Mode::Netascii);
                assert_eq!(r.options, vec![("blksize".into(), "512".into())]);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn data_ack_error_oack_literals() {
        assert_eq!(
            Packet::parse(b"\x00\x03\x00\x07abc").unwrap(),
            Packet::Data {
                block: 7,
                data: b"abc"
            }
        );
        assert_eq!(
            Packet::parse(b"\x00\x03\xff\xff").unwrap(),
            Packet::Data {
                block: 65535,
                data: b""
            }
        );
        assert_eq!(
            Packet::parse(b"\x00\x04\x01\x00").unwrap(),
            Packet::Ack { block: 256 }
        );
        assert_eq!(ack_packet(256), b"\x00\x04\x01\x00".to_vec());
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x01File not found\x00").unwrap(),
            Packet::Error {
                code: 1,
                message: "File not found".into()
            }
        );
        assert_eq!(
            error_packet(ErrorCode::FileNotFound, "File not found"),
            b"\x00\x05\x00\x01File not found\x00".to_vec()
        );
        let oack = Packet::Oack {
            options: vec![("blksize".into(), "1468".into())],
        };
        assert_eq!(oack.to_bytes(), b"\x00\x06blksize\x001468\x00".to_vec());
        assert_eq!(Packet::parse(b"\x00\x06blksize\x001468\x00").unwrap(), oack);
        let mut buf = vec![9, 9, 9];
        write_data(&mut buf, 1, b"xy");
        assert_eq!(buf, b"\x00\x03\x00\x01xy".to_vec());
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        let cases: &[(&[u8], ErrorCode)] = &[
            (b"", ErrorCode::IllegalOperation),
            (b"\x00", ErrorCode::IllegalOperation),
            (b"\x00\x09", ErrorCode::IllegalOperation),
            (b"\x00\x00", ErrorCode::IllegalOperation),
            (b"\x00\x01file", ErrorCode::IllegalOperation),
            (b"\x00\x01file\x00octet", ErrorCode::IllegalOperation),
            (b"\x00\x01\x00octet\x00", ErrorCode::IllegalOperation),
            (b"\x00\x01f\x00binary\x00", ErrorCode::IllegalOperation),
            (
                b"\x00\x01f\x00octet\x00blksize\x00",
                ErrorCode::OptionNegotiation,
            ),
            (
                b"\x00\x01f\x00octet\x00blksize",
                ErrorCode::OptionNegotiation,
            ),
            (
                b"\x00\x01f\x00octet\x00blksize\x00512",
                ErrorCode::OptionNegotiation,
            ),
            (
                b"\x00\x01f\x00octet\x00\x00512\x00",
                ErrorCode::OptionNegotiation,
            ),
            (b"\x00\x03\x00", ErrorCode::IllegalOperation),
            (b"\x00\x04\x00", ErrorCode::IllegalOperation),
            (b"\x00\x05\x00", ErrorCode::IllegalOperation),
        ];
        for (wire, code) in cases {
            let err = Packet::parse(wire).expect_err(&format!("{wire:?} parsed"));
            assert_eq!(err.error_code(), *code, "{wire:?}: {err}");
        }
    }

    #[test]
    fn trailing_nul_padding_after_request_is_tolerated() {
        let p = Packet::parse(b"\x00\x01f\x00octet\x00\x00\x00\x00").unwrap();
        assert!(matches!(p, Packet::Rrq(r) if r.options.is_empty()));
    }

    #[test]
    fn error_without_terminator_is_tolerated_and_nul_stripped_on_emit() {
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x02denied").unwrap(),
            Packet::Error {
                code: 2,
                message: "denied".into()
            }
        );
        let p = Packet::Error {
            code: 0,
            message: "a\0b".into(),
        };
        assert_eq!(p.to_bytes(), b"\x00\x05\x00\x00ab\x00".to_vec());
    }
}
