//! Gzip members for ZipPacks, from one deflate state reused pack after pack.
//!
//! A `GzEncoder` per ZipPack allocated and zeroed the compressor's tables (some 300 KiB) for
//! every 64 KiB of records; that was half the sender's time in WhaTap encoding. The member
//! written here is plain RFC 1952: a fixed ten-byte header, raw deflate, CRC-32 and length.

use flate2::{Compress, Compression, FlushCompress, Status};

/// The fixed member header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The compression level when none is chosen: gzip's own default, as WhaTap's Go agent uses.
/// On RDS logs it sends a third fewer bytes than level 1 for about twice the time, and a byte
/// on the wire costs far more than the CPU time (`rds-forwarder bench` measures both).
pub const DEFAULT_LEVEL: u32 = 6;
/// The highest level deflate knows.
pub const MAX_LEVEL: u32 = 9;

/// A reusable gzip compressor.
pub struct Gzip {
    deflate: Compress,
    level: u32,
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip::new()
    }
}

impl std::fmt::Debug for Gzip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gzip").finish_non_exhaustive()
    }
}

impl Gzip {
    /// A compressor at [`DEFAULT_LEVEL`].
    pub fn new() -> Gzip {
        Gzip::with_level(DEFAULT_LEVEL)
    }

    /// A compressor at `level` (0 stores, 1 is fastest, 9 smallest; above 9 counts as 9).
    pub fn with_level(level: u32) -> Gzip {
        let level = level.min(MAX_LEVEL);
        Gzip {
            deflate: Compress::new(Compression::new(level), false),
            level,
        }
    }

    pub fn level(&self) -> u32 {
        self.level
    }

    /// `data` as one gzip member.
    pub fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, flate2::CompressError> {
        self.deflate.reset();
        let mut out = Vec::with_capacity(HEADER.len() + data.len() / 4 + 64);
        out.extend_from_slice(&HEADER);
        let mut read = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity() / 2 + 64);
            }
            let before = self.deflate.total_in();
            let status =
                self.deflate
                    .compress_vec(&data[read..], &mut out, FlushCompress::Finish)?;
            read += (self.deflate.total_in() - before) as usize;
            if status == Status::StreamEnd {
                break;
            }
        }
        out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(member: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(member)
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    #[test]
    fn members_inflate_to_their_input_pack_after_pack() {
        let mut gz = Gzip::new();
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i} of the log\n").into_bytes())
            .collect();
        // Incompressible input makes the output outgrow its first guess.
        let noise: Vec<u8> = (0..100_000u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
            .collect();
        for data in [&b""[..], b"x", &text, &noise, &text[..1000]] {
            let member = gz.compress(data).unwrap();
            assert_eq!(&member[..10], &HEADER);
            assert_eq!(gunzip(&member), data, "{} bytes", data.len());
        }
    }

    #[test]
    fn every_level_round_trips_and_higher_levels_are_smaller_on_text() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| {
                format!(
                    "2025-03-21T00:00:{:02}Z {i} [Note] connection {}\n",
                    i % 60,
                    i * 7
                )
                .into_bytes()
            })
            .collect();
        let sizes: Vec<usize> = (0..=MAX_LEVEL)
            .map(|level| {
                let mut gz = Gzip::with_level(level);
                assert_eq!(gz.level(), level);
                let member = gz.compress(&text).unwrap();
                assert_eq!(gunzip(&member), text, "level {level}");
                member.len()
            })
            .collect();
        // Level 0 stores; level 1 (static codes only in zlib-rs) is beaten by the default.
        assert!(sizes[0] > text.len(), "{sizes:?}");
        assert!(sizes[DEFAULT_LEVEL as usize] < sizes[1], "{sizes:?}");
        assert_eq!(Gzip::with_level(42).level(), MAX_LEVEL);
    }

    #[test]
    fn the_trailer_holds_crc_and_length() {
        let member = Gzip::new().compress(b"hello, whatap").unwrap();
        let n = member.len();
        assert_eq!(
            &member[n - 8..n - 4],
            &crc32fast::hash(b"hello, whatap").to_le_bytes()
        );
        assert_eq!(&member[n - 4..], &13u32.to_le_bytes());
    }
}
