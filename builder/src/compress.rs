//! Payload compression for uImages and RAM-loaded artifacts: LZMA in the
//! legacy `.lzma` ("LZMA alone") container and gzip.
//!
//! This exists because the kernel payload of a MIPS router's uImage is
//! almost always LZMA, and U-Boot (`bootm` with `-C lzma`, `lzmadec`) reads
//! only the legacy container: 5 property bytes (lc/lp/pb and the
//! dictionary size) and a 64-bit little-endian uncompressed size, then the
//! raw LZMA1 stream. The `.xz` container is not accepted there.
//!
//! liblzma's `.lzma` encoder writes an unknown size (all `0xff`) and ends
//! the stream with an end-of-payload marker. Old vendor U-Boots decode
//! exactly "uncompressed size" bytes and cannot cope with an unknown size,
//! so [`lzma_compress`] writes the real size into the header. The marker
//! stays: U-Boot's LZMA SDK decoder and xz ≥ 5.4 accept a stream that has
//! both, and decoders that stop at the known size never reach it.

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

/// Compresses `data` into a legacy `.lzma` stream with the real
/// uncompressed size in its header. `preset` is 0–9 as for `xz -0`…`-9`
/// (6 is the `lzma` tool's default).
pub fn lzma_compress(data: &[u8], preset: u32) -> Result<Vec<u8>, Error> {
    let opts = liblzma::stream::LzmaOptions::new_preset(preset)?;
    let stream = liblzma::stream::Stream::new_lzma_encoder(&opts)?;
    let mut enc =
        liblzma::write::XzEncoder::new_stream(Vec::with_capacity(data.len() / 3 + 64), stream);
    enc.write_all(data).map_err(|source| Error::Io {
        what: "LZMA compression",
        source,
    })?;
    let mut out = enc.finish().map_err(|source| Error::Io {
        what: "LZMA compression",
        source,
    })?;
    out[LZMA_SIZE_OFFSET..LZMA_HEADER_LEN].copy_from_slice(&(data.len() as u64).to_le_bytes());
    Ok(out)
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
