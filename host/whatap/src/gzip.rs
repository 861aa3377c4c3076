//! Gzip members for ZipPacks, from one deflate state reused pack after pack.
//!
//! A `GzEncoder` per ZipPack allocated and zeroed the compressor's tables (some 300 KiB) for
//! every 64 KiB of records; that was half the sender's time in WhaTap encoding. The member
//! written here is plain RFC 1952: a fixed ten-byte header, raw deflate, CRC-32 and length.

use flate2::{Compress, Compression, FlushCompress, Status};

/// The fixed member header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A reusable gzip compressor.
pub struct Gzip {
    deflate: Compress,
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
    /// Fast compression: records are mostly text, and the sender's time is the Lambda's.
    pub fn new() -> Gzip {
        Gzip {
            deflate: Compress::new(Compression::fast(), false),
        }
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
