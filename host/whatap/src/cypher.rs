//! The session cipher: AES-128 in ECB mode over zero-padded data, and the 4-byte XOR "hide".
//! Insecure as ECB is, it is what the wire format uses (whatap-protocol.md §8.4).

use aes::Aes128;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

pub const BLOCK: usize = 16;

/// AES-128-ECB with a fixed key.
#[derive(Clone)]
pub struct Cypher {
    aes: Aes128,
}

impl std::fmt::Debug for Cypher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cypher(<key redacted>)")
    }
}

impl Cypher {
    /// The key is truncated or zero-padded to 16 bytes, as WhaTap's `padding(key)` does.
    pub fn new(key: &[u8]) -> Cypher {
        let mut k = [0u8; BLOCK];
        let n = key.len().min(BLOCK);
        k[..n].copy_from_slice(&key[..n]);
        Cypher {
            aes: Aes128::new(&Array::from(k)),
        }
    }

    /// Zero-pads to a multiple of 16 and encrypts each block on its own.
    pub fn encrypt(&self, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        out.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
        for block in out.chunks_exact_mut(BLOCK) {
            let mut b = Array::from(<[u8; BLOCK]>::try_from(&*block).unwrap_or([0; BLOCK]));
            self.aes.encrypt_block(&mut b);
            block.copy_from_slice(&b);
        }
        out
    }

    /// Decrypts whole blocks; a trailing partial block is an error (`None`).
    pub fn decrypt(&self, data: &[u8]) -> Option<Vec<u8>> {
        if !data.len().is_multiple_of(BLOCK) {
            return None;
        }
        let mut out = data.to_vec();
        for block in out.chunks_exact_mut(BLOCK) {
            let mut b = Array::from(<[u8; BLOCK]>::try_from(&*block).unwrap_or([0; BLOCK]));
            self.aes.decrypt_block(&mut b);
            block.copy_from_slice(&b);
        }
        Some(out)
    }
}

/// XORs `data` in place with the big-endian bytes of `key`, from byte 0. Its own inverse.
pub fn hide(key: i32, data: &mut [u8]) {
    let k = key.to_be_bytes();
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{hex, unhex};

    #[test]
    fn v5_hello_encryption() {
        let master: Vec<u8> = (1u8..=16).collect();
        let plain = unhex("0568656c6c6f 0a746573742d6167656e74 0a000001");
        let c = Cypher::new(&master);
        let enc = c.encrypt(&plain);
        assert_eq!(
            hex(&enc),
            "94a34138afc338995171b5f7c1167ac3b5f6576089e848df7c16f6715fa7f884"
        );
        let mut padded = plain.clone();
        padded.resize(32, 0);
        assert_eq!(c.decrypt(&enc).unwrap(), padded);
        assert_eq!(c.decrypt(&enc[..31]), None);
    }

    #[test]
    fn hide_is_its_own_inverse() {
        let mut d = unhex("170a0230");
        hide(0x5a5a1234, &mut d);
        assert_eq!(hex(&d), "4d501004");
        hide(0x5a5a1234, &mut d);
        assert_eq!(hex(&d), "170a0230");
    }
}
