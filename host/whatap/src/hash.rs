//! The hashes WhaTap uses: `HashStr` (CRC-32, for the oid) and the legacy 64-bit `Hash64` (for
//! the license hash of one-way frames and the LogSinkPack tag hash).

/// The reflected CRC-32 table (polynomial 0xEDB88320), as zlib builds it.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// `HashStr`: the plain CRC-32 of the bytes, read as a signed int.
pub fn hash32(bytes: &[u8]) -> i32 {
    crc32fast::hash(bytes) as i32
}

/// Legacy `Hash64`: a 64-bit register fed through the 32-bit table with each entry
/// sign-extended, as WhaTap's Go and Java code compute it.
pub fn hash64(bytes: &[u8]) -> i64 {
    let mut crc: u64 = u64::MAX;
    for &b in bytes {
        let entry = TABLE[((crc ^ b as u64) & 0xff) as usize] as i32 as i64 as u64;
        crc = (crc >> 8) ^ entry;
    }
    (crc ^ u64::MAX) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash32_vectors() {
        assert_eq!(hash32(b"hello world"), 222957957);
        assert_eq!(hash32(b"test-agent"), 0x6bbf965c);
        assert_eq!(hash32(b"a"), -390611389);
        assert_eq!(hash32(b""), 0);
    }

    #[test]
    fn hash64_vectors() {
        assert_eq!(hash64(b"hello world"), -281470736525980);
        assert_eq!(hash64(b"a") as u64, 0xff00000017b7be43);
        assert_eq!(hash64(b"test-agent") as u64, 0xff00ff000487310e);
        assert_eq!(hash64(b""), 0);
        assert_eq!(
            hash64(b"x4c1p2g0g40o4-xa1g7104gk2oc-xq3gf208h44ok") as u64,
            0xffffffffc4719557
        );
    }
}
