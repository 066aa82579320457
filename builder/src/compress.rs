//! Payload compression for uImages and RAM-loaded artifacts: LZMA in the
//! legacy `.lzma` ("LZMA alone") container and gzip.
//!
//! This exists because the kernel payload of a MIPS router's uImage is
//! almost always LZMA, and U-Boot (`bootm` with `-C lzma`, `lzmadec`) reads
//! only the legacy container: 5 property bytes (lc/lp/pb and the
//! dictionary size) and a 64-bit little-endian uncompressed size, then the
//! raw LZMA1 stream. The `.xz` container is not accepted there.
//!
//! The header carries the real uncompressed size and the stream has no
//! end-of-payload marker: the classic form the LZMA SDK's `lzma` tool
//! writes. That is the only form every U-Boot decodes. Old vendor
//! U-Boots decode exactly "uncompressed size" bytes and cannot cope with
//! an unknown size (all `0xff`, what liblzma's `.lzma` encoder and
//! `xz --format=lzma` write), and U-Boot 2023.01's `lzmadec` never
//! returns on a stream that has both a known size and the marker (seen
//! under QEMU; `tests/uboot_oracle.rs` keeps it checked). liblzma's raw
//! `LZMA1EXT` encoder gives exactly this form, so [`lzma_compress`] uses
//! it through `liblzma-sys` and writes the 13-byte header itself.

use std::io::{Read, Write};

/// Offset of the 64-bit uncompressed size in the `.lzma` header.
const LZMA_SIZE_OFFSET: usize = 5;
/// Length of the `.lzma` header: properties (5) + size (8).
pub const LZMA_HEADER_LEN: usize = 13;

/// Errors from compressing or decompressing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// liblzma refused or failed.
    #[error("LZMA: {0}")]
    Lzma(#[from] liblzma::stream::Error),
    /// gzip (or LZMA through its reader) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The `.lzma` header is shorter than 13 bytes.
    #[error("truncated .lzma stream: {0} bytes, the header alone needs 13")]
    Truncated(usize),
    /// The decoded length differs from the header's size.
    #[error(".lzma header says {expected} bytes, stream decoded to {found}")]
    SizeMismatch {
        /// Size in the header.
        expected: u64,
        /// Bytes decoded.
        found: u64,
    },
}

/// Compresses `data` into a legacy `.lzma` stream: 13-byte header with
/// the real uncompressed size, then a raw LZMA1 stream without an end
/// marker. `preset` is 0–9 as for `xz -0`…`-9` (6 is the `lzma` tool's
/// default).
pub fn lzma_compress(data: &[u8], preset: u32) -> Result<Vec<u8>, Error> {
    use liblzma::stream::Error as LzErr;
    use liblzma_sys as sys;
    // LZMA_FILTER_LZMA1EXT (xz >= 5.4): LZMA1 with control over the
    // end-of-payload marker. Not exported by liblzma-sys 0.4.
    const LZMA_FILTER_LZMA1EXT: sys::lzma_vli = 0x4000_0000_0000_0002;

    // SAFETY: lzma_options_lzma is a plain C struct; all-zero is a valid
    // starting value that lzma_lzma_preset then fills in.
    let mut opts: sys::lzma_options_lzma = unsafe { std::mem::zeroed() };
    // SAFETY: `opts` is a valid, exclusively borrowed options struct.
    if unsafe { sys::lzma_lzma_preset(&mut opts, preset) } != 0 {
        return Err(Error::Lzma(LzErr::Options));
    }
    opts.ext_flags = 0; // no end-of-payload marker
    let filters = [
        sys::lzma_filter {
            id: LZMA_FILTER_LZMA1EXT,
            options: (&mut opts as *mut sys::lzma_options_lzma).cast(),
        },
        sys::lzma_filter {
            id: u64::MAX, // LZMA_VLI_UNKNOWN terminates the chain
            options: std::ptr::null_mut(),
        },
    ];

    let props = ((opts.pb * 5 + opts.lp) * 9 + opts.lc) as u8;
    let mut out = Vec::with_capacity(LZMA_HEADER_LEN + data.len() / 2 + 4096);
    out.push(props);
    out.extend_from_slice(&opts.dict_size.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());

    // SAFETY: LZMA_STREAM_INIT is all zeroes.
    let mut strm: sys::lzma_stream = unsafe { std::mem::zeroed() };
    // SAFETY: `strm` is initialised, `filters` is a terminated chain whose
    // options outlive the encoder (both live until the end of this function).
    let ret = unsafe { sys::lzma_raw_encoder(&mut strm, filters.as_ptr()) };
    if ret != sys::LZMA_OK {
        return Err(Error::Lzma(lzma_error(ret)));
    }
    strm.next_in = data.as_ptr();
    strm.avail_in = data.len();
    let result = loop {
        if out.capacity() == out.len() {
            out.reserve(out.len() / 2 + 4096);
        }
        let spare = out.capacity() - out.len();
        // SAFETY: next_out points at `spare` writable bytes of `out`'s
        // allocation, past its initialised length.
        strm.next_out = unsafe { out.as_mut_ptr().add(out.len()) };
        strm.avail_out = spare;
        // SAFETY: the stream was initialised by lzma_raw_encoder and its
        // input and output pointers are valid as set above.
        let ret = unsafe { sys::lzma_code(&mut strm, sys::LZMA_FINISH) };
        let written = spare - strm.avail_out;
        // SAFETY: liblzma initialised `written` bytes after the old length.
        unsafe { out.set_len(out.len() + written) };
        match ret {
            sys::LZMA_STREAM_END => break Ok(()),
            sys::LZMA_OK => continue,
            err => break Err(Error::Lzma(lzma_error(err))),
        }
    };
    // SAFETY: frees the encoder's memory; `strm` is not used afterwards.
    unsafe { sys::lzma_end(&mut strm) };
    result.map(|()| out)
}

fn lzma_error(ret: liblzma_sys::lzma_ret) -> liblzma::stream::Error {
    use liblzma::stream::Error as E;
    use liblzma_sys as sys;
    match ret {
        sys::LZMA_MEM_ERROR => E::Mem,
        sys::LZMA_OPTIONS_ERROR => E::Options,
        sys::LZMA_DATA_ERROR => E::Data,
        _ => E::Program,
    }
}

/// The uncompressed size recorded in a `.lzma` header, `None` when unknown.
pub fn lzma_uncompressed_size(stream: &[u8]) -> Result<Option<u64>, Error> {
    let b = stream
        .get(LZMA_SIZE_OFFSET..LZMA_HEADER_LEN)
        .ok_or(Error::Truncated(stream.len()))?;
    let n = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    Ok((n != u64::MAX).then_some(n))
}

/// Decompresses a legacy `.lzma` stream (known or unknown size) and
/// checks the result against the header's size when it is known.
pub fn lzma_decompress(stream: &[u8]) -> Result<Vec<u8>, Error> {
    let expected = lzma_uncompressed_size(stream)?;
    let dec = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)?;
    let mut out = Vec::with_capacity(expected.unwrap_or(0).min(1 << 30) as usize);
    liblzma::read::XzDecoder::new_stream(stream, dec)
        .read_to_end(&mut out)
        .map_err(|source| Error::Io {
            what: "LZMA decompression",
            source,
        })?;
    if let Some(expected) = expected {
        if expected != out.len() as u64 {
            return Err(Error::SizeMismatch {
                expected,
                found: out.len() as u64,
            });
        }
    }
    Ok(out)
}

/// Compresses `data` as gzip (best compression, mtime 0, no file name,
/// so the output depends on the input only).
pub fn gzip_compress(data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut enc = flate2::GzBuilder::new().mtime(0).write(
        Vec::with_capacity(data.len() / 3 + 64),
        flate2::Compression::best(),
    );
    enc.write_all(data).map_err(|source| Error::Io {
        what: "gzip compression",
        source,
    })?;
    enc.finish().map_err(|source| Error::Io {
        what: "gzip compression",
        source,
    })
}

/// Decompresses a gzip stream.
pub fn gzip_decompress(stream: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(stream)
        .read_to_end(&mut out)
        .map_err(|source| Error::Io {
            what: "gzip decompression",
            source,
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn lzma_round_trip_with_real_size() {
        let data = sample();
        let z = lzma_compress(&data, 6).unwrap();
        // lc=3 lp=0 pb=2 → 0x5d, then an 8 MiB dictionary for preset 6.
        assert_eq!(z[..5], [0x5d, 0x00, 0x00, 0x80, 0x00]);
        assert_eq!(lzma_uncompressed_size(&z).unwrap(), Some(400_000));
        // No end marker: with the size set to "unknown" the stream is
        // no longer complete for a decoder.
        let mut unknown = z.clone();
        unknown[5..13].fill(0xff);
        assert!(lzma_decompress(&unknown).is_err());
        assert!(z.len() < data.len() / 10);
        assert_eq!(lzma_decompress(&z).unwrap(), data);
    }

    #[test]
    fn lzma_empty_and_truncated() {
        let z = lzma_compress(b"", 0).unwrap();
        assert_eq!(lzma_uncompressed_size(&z).unwrap(), Some(0));
        assert_eq!(lzma_decompress(&z).unwrap(), b"");
        assert!(matches!(lzma_decompress(&z[..4]), Err(Error::Truncated(4))));
        let z = lzma_compress(&sample(), 1).unwrap();
        assert!(lzma_decompress(&z[..z.len() / 2]).is_err());
    }

    #[test]
    fn gzip_round_trip_is_deterministic() {
        let data = sample();
        let a = gzip_compress(&data).unwrap();
        assert_eq!(a, gzip_compress(&data).unwrap());
        assert_eq!(a[..2], [0x1f, 0x8b]);
        assert_eq!(gzip_decompress(&a).unwrap(), data);
    }
}
