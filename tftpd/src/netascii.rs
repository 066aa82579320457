//! Netascii conversion (RFC 1350 via RFC 764): on the wire a line ends in
//! CR LF and a bare CR is sent as CR NUL. Both directions are streaming
//! converters that carry state across block boundaries, so files of any
//! size convert in bounded memory.

/// Converts local text (LF line ends) to netascii.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    /// Second byte of an expansion that did not fit in the last output.
    pending: Option<u8>,
}

impl Encoder {
    /// A new encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when a byte of an earlier expansion is still waiting.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Encodes as much of `input` as fits into `out` (up to `max` bytes
    /// appended). Returns how many input bytes were consumed.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> usize {
        let limit = out.len() + max;
        if let Some(b) = self.pending {
            if out.len() >= limit {
                return 0;
            }
            out.push(b);
            self.pending = None;
        }
        let mut used = 0;
        for &b in input {
            if out.len() >= limit {
                break;
            }
            used += 1;
            let second = match b {
                b'\n' => {
                    out.push(b'\r');
                    Some(b'\n')
                }
                b'\r' => {
                    out.push(b'\r');
                    Some(0)
                }
                _ => {
                    out.push(b);
                    None
                }
            };
            if let Some(s) = second {
                if out.len() < limit {
                    out.push(s);
                } else {
                    self.pending = Some(s);
                    break;
                }
            }
        }
        used
    }
}

/// Converts netascii from the wire back to local text.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    /// The previous block ended in CR.
    pending_cr: bool,
}

impl Decoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one block, appending to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                match b {
                    b'\n' => {
                        out.push(b'\n');
                        continue;
                    }
                    0 => {
                        out.push(b'\r');
                        continue;
                    }
                    // A CR followed by anything else is kept as-is (lenient
                    // towards clients that send bare CRs).
                    _ => out.push(b'\r'),
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Flushes state at end of file (a trailing bare CR is kept).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_all(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            let mut block = Vec::new();
            let used = enc.encode(rest, &mut block, chunk);
            rest = &rest[used..];
            out.extend_from_slice(&block);
            if rest.is_empty() && !enc.has_pending() {
                break;
            }
        }
        out
    }

    #[test]
    fn encodes_lf_and_bare_cr() {
        assert_eq!(encode_all(b"a\nb\rc", 100), b"a\r\nb\r\0c".to_vec());
    }

    #[test]
    fn expansion_split_across_blocks() {
        for chunk in 1..6 {
            assert_eq!(
                encode_all(b"\n\n\r\rxy\n", chunk),
                b"\r\n\r\n\r\0\r\0xy\r\n".to_vec(),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn decodes_across_block_boundary() {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.decode(b"a\r", &mut out);
        d.decode(b"\nb\r", &mut out);
        d.decode(b"\0c\r", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"a\nb\rc\r".to_vec());
    }

    #[test]
    fn round_trip_all_bytes() {
        let input: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let wire = encode_all(&input, 512);
        for split in [1usize, 7, 512] {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            for c in wire.chunks(split) {
                d.decode(c, &mut out);
            }
            d.finish(&mut out);
            assert_eq!(out, input);
        }
    }
}
