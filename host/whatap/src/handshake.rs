//! The secure session, sans I/O: the KEY_RESET handshake and the data/TIME_SYNC frames that
//! follow it, for both ends (the sender and the collector emulator). Callers own the sockets
//! and the clock.

use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer};
use crate::cypher::{Cypher, hide};
use crate::frame::{
    CODE_CYPHER, CODE_HIDE, CODE_KEY_EXTENSION, CODE_KEY_RESET, CODE_PLAIN, CODE_TIME_SYNC, Frame,
    NETSRC_AGENT,
};
use crate::license::License;

/// The handshake replies WhaTap's agents accept are at most this long.
pub const MAX_REPLY: usize = 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("the collector answered the handshake with frame code 0x{0:02x}")]
    UnexpectedCode(u8),
    #[error(
        "the handshake reply is for another agent (pcode or oid differ): the license was probably refused"
    )]
    NotForUs,
    #[error("the handshake reply is {0} bytes, more than the {MAX_REPLY} allowed")]
    TooLong(usize),
    #[error("the handshake reply cannot be decrypted with this license's key")]
    Undecryptable,
    #[error("the handshake reply is malformed: {0}")]
    Malformed(DecodeError),
    #[error("the hello is not a WhaTap hello: {0}")]
    BadHello(String),
    #[error("the handshake reply {0}")]
    Invalid(&'static str),
}

/// Who we are on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub pcode: i64,
    pub oid: i32,
    pub oname: String,
}

impl Identity {
    pub fn new(license: &License, oname: &str) -> Identity {
        Identity {
            pcode: license.pcode,
            oid: crate::hash::hash32(oname.as_bytes()),
            oname: oname.to_owned(),
        }
    }
}

/// How the payload of data frames is protected (`encrypt_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// XOR with the session hide key: WhaTap's default.
    Hide,
    /// AES-128-ECB with the session key.
    Cypher,
    /// Plain pack bytes.
    Plain,
}

/// Whether the hello is AES-encrypted (cypher level 128, KEY_RESET) or plain (level 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CypherLevel {
    Aes128,
    None,
}

/// The keys of one session, from the collector's reply.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub transfer_key: i32,
    pub secure_key: Vec<u8>,
    pub hide_key: i32,
    pub public_ip: i32,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.int(self.transfer_key)
            .blob(&self.secure_key)
            .int(self.hide_key)
            .int(self.public_ip);
        w.into_bytes()
    }

    /// Reads the keys and what follows them, which must be the cipher's zero padding.
    fn decode(plain: &[u8]) -> Result<(SessionKeys, &[u8]), DecodeError> {
        let mut r = Reader::new(plain);
        let keys = SessionKeys {
            transfer_key: r.int()?,
            secure_key: r.blob()?.to_vec(),
            hide_key: r.int()?,
            public_ip: r.int()?,
        };
        Ok((keys, r.remaining()))
    }

    /// Wraps serialized pack bytes in a data frame.
    pub fn data_frame(&self, who: &Identity, protection: Protection, pack: &[u8]) -> Frame {
        let (code, payload) = match protection {
            Protection::Plain => (CODE_PLAIN, pack.to_vec()),
            Protection::Hide => {
                let mut p = pack.to_vec();
                hide(self.hide_key, &mut p);
                (CODE_HIDE, p)
            }
            Protection::Cypher => (CODE_CYPHER, Cypher::new(&self.secure_key).encrypt(pack)),
        };
        Frame {
            src: NETSRC_AGENT,
            code,
            pcode: who.pcode,
            oid: who.oid,
            transfer_key: self.transfer_key,
            payload,
        }
    }

    /// Undoes a data frame's protection (the collector's side). A CYPHER payload keeps its
    /// zero padding; pack decoding stops at the pack's end.
    pub fn open(&self, frame: &Frame) -> Option<Vec<u8>> {
        match frame.code & 0x03 {
            0 => Some(frame.payload.clone()),
            1 => {
                let mut p = frame.payload.clone();
                hide(self.hide_key, &mut p);
                Some(p)
            }
            2 => Cypher::new(&self.secure_key).decrypt(&frame.payload),
            _ => None,
        }
    }

    /// A TIME_SYNC request: our clock, unencrypted.
    pub fn time_sync_frame(&self, who: &Identity, now_ms: i64) -> Frame {
        Frame {
            src: NETSRC_AGENT,
            code: CODE_TIME_SYNC,
            pcode: who.pcode,
            oid: who.oid,
            transfer_key: self.transfer_key,
            payload: now_ms.to_be_bytes().to_vec(),
        }
    }
}

/// `text("hello") + text(oname) + int(ip)`.
fn hello_plain(oname: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut w = Writer::new();
    w.text("hello").text(oname).int(i32::from_be_bytes(ip));
    w.into_bytes()
}

/// The first frame of a session.
pub fn hello_frame(license: &License, who: &Identity, ip: [u8; 4], level: CypherLevel) -> Frame {
    let plain = hello_plain(&who.oname, ip);
    let (code, payload) = match level {
        CypherLevel::Aes128 => (
            CODE_KEY_RESET,
            Cypher::new(&license.master_key()).encrypt(&plain),
        ),
        CypherLevel::None => (CODE_KEY_EXTENSION, plain),
    };
    Frame {
        src: NETSRC_AGENT,
        code,
        pcode: who.pcode,
        oid: who.oid,
        transfer_key: 0,
        payload,
    }
}

/// The longest session key the cipher uses: AES-256's (the agents use AES-128, 16 bytes).
const MAX_SECURE_KEY: usize = 32;

/// Reads the collector's reply to our hello, checking all that the protocol pins down: the
/// frame code of our hello, our pcode and oid, a reply that decrypts with the license's key,
/// a session key the cipher can use, and nothing but zero padding after the keys. A reply that
/// passes is from a party holding the license's key (or replayed from one).
pub fn read_reply(
    license: &License,
    who: &Identity,
    reply: &Frame,
    level: CypherLevel,
) -> Result<SessionKeys, HandshakeError> {
    let hello_code = match level {
        CypherLevel::Aes128 => CODE_KEY_RESET,
        CypherLevel::None => CODE_KEY_EXTENSION,
    };
    if reply.code != hello_code {
        return Err(HandshakeError::UnexpectedCode(reply.code));
    }
    if reply.pcode != who.pcode || reply.oid != who.oid {
        return Err(HandshakeError::NotForUs);
    }
    if reply.payload.len() > MAX_REPLY {
        return Err(HandshakeError::TooLong(reply.payload.len()));
    }
    let plain = match level {
        CypherLevel::Aes128 => Cypher::new(&license.master_key())
            .decrypt(&reply.payload)
            .ok_or(HandshakeError::Undecryptable)?,
        CypherLevel::None => reply.payload.clone(),
    };
    let (keys, rest) = SessionKeys::decode(&plain).map_err(HandshakeError::Malformed)?;
    if keys.secure_key.is_empty() || keys.secure_key.len() > MAX_SECURE_KEY {
        return Err(HandshakeError::Invalid(
            "carries a session key of a length no cipher uses",
        ));
    }
    if rest.iter().any(|b| *b != 0) {
        return Err(HandshakeError::Invalid(
            "has bytes after its keys that are not padding",
        ));
    }
    Ok(keys)
}

/// What the collector learns from a hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub oname: String,
    pub ip: [u8; 4],
    pub level: CypherLevel,
}

/// The collector's side: checks and reads a hello frame with the license it expects.
pub fn read_hello(license: &License, frame: &Frame) -> Result<Hello, HandshakeError> {
    let (plain, level) = match frame.code {
        CODE_KEY_RESET => (
            Cypher::new(&license.master_key())
                .decrypt(&frame.payload)
                .ok_or_else(|| {
                    HandshakeError::BadHello("not a whole number of AES blocks".into())
                })?,
            CypherLevel::Aes128,
        ),
        CODE_KEY_EXTENSION => (frame.payload.clone(), CypherLevel::None),
        code => return Err(HandshakeError::UnexpectedCode(code)),
    };
    let mut r = Reader::new(&plain);
    let bad = |e: DecodeError| HandshakeError::BadHello(e.to_string());
    let magic = r
        .text()
        .map_err(|_| HandshakeError::BadHello("it does not decrypt with this license".into()))?;
    if magic != "hello" {
        return Err(HandshakeError::BadHello(
            "it does not decrypt with this license".into(),
        ));
    }
    let oname = r.text().map_err(bad)?.to_owned();
    let ip = r.int().map_err(bad)?.to_be_bytes();
    if frame.pcode != license.pcode {
        return Err(HandshakeError::BadHello(format!(
            "pcode {} is not this license's",
            frame.pcode
        )));
    }
    if frame.oid != crate::hash::hash32(oname.as_bytes()) {
        return Err(HandshakeError::BadHello(
            "oid is not the hash of the oname".into(),
        ));
    }
    Ok(Hello { oname, ip, level })
}

/// The collector's reply carrying the session keys.
pub fn reply_frame(
    license: &License,
    hello_frame: &Frame,
    keys: &SessionKeys,
    level: CypherLevel,
    src: u8,
) -> Frame {
    let plain = keys.encode();
    let payload = match level {
        CypherLevel::Aes128 => Cypher::new(&license.master_key()).encrypt(&plain),
        CypherLevel::None => plain,
    };
    Frame {
        src,
        code: hello_frame.code,
        pcode: hello_frame.pcode,
        oid: hello_frame.oid,
        transfer_key: 0,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{hex, unhex};
    use crate::pack::tests::pack_a;

    const LICENSE: &str = "x4c1p2g0g40o4-xa1g7104gk2oc-xq3gf208h44ok";
    const IP: [u8; 4] = [10, 0, 0, 1];

    fn setup() -> (License, Identity) {
        let l = License::parse(LICENSE).unwrap();
        let who = Identity::new(&l, "test-agent");
        (l, who)
    }

    fn v7_keys() -> SessionKeys {
        SessionKeys {
            transfer_key: 0x11223344,
            secure_key: b"0123456789abcdef".to_vec(),
            hide_key: 0x5a5a1234,
            public_ip: i32::from_be_bytes([203, 0, 113, 7]),
        }
    }

    #[test]
    fn v6_key_reset_request_frames() {
        let (l, who) = setup();
        assert_eq!(who.oid, 0x6bbf965c);
        let f = hello_frame(&l, &who, IP, CypherLevel::Aes128);
        assert_eq!(
            hex(&f.encode()),
            hex(&unhex(
                "01 ff 0000000000003039 6bbf965c 00000000 00000020 \
                        94a34138afc338995171b5f7c1167ac3b5f6576089e848df7c16f6715fa7f884"
            ))
        );
        let f = hello_frame(&l, &who, IP, CypherLevel::None);
        assert_eq!(
            hex(&f.encode()),
            hex(&unhex(
                "01 fd 0000000000003039 6bbf965c 00000000 00000015 \
                        0568656c6c6f0a746573742d6167656e740a000001"
            ))
        );
        // The collector's view of both.
        for level in [CypherLevel::Aes128, CypherLevel::None] {
            let hello = read_hello(&l, &hello_frame(&l, &who, IP, level)).unwrap();
            assert_eq!(
                hello,
                Hello {
                    oname: "test-agent".into(),
                    ip: IP,
                    level
                }
            );
        }
    }

    #[test]
    fn v7_reply_parses_into_session_keys() {
        let (l, who) = setup();
        assert_eq!(
            hex(&v7_keys().encode()),
            "112233441030313233343536373839616263646566 5a5a1234cb007107".replace(' ', "")
        );
        let reply = Frame::parse(&unhex(
            "03 ff 0000000000003039 6bbf965c 00000000 00000020 \
             43a82faf405fee5daff2f9f0786633de792591b20c372877886a3769b793fb21",
        ))
        .unwrap()
        .unwrap()
        .0;
        let keys = read_reply(&l, &who, &reply, CypherLevel::Aes128).unwrap();
        assert_eq!(keys, v7_keys());
        // The emulator builds the same reply.
        let hello = hello_frame(&l, &who, IP, CypherLevel::Aes128);
        assert_eq!(
            reply_frame(&l, &hello, &v7_keys(), CypherLevel::Aes128, 0x03),
            reply
        );
    }

    #[test]
    fn v8_hide_v9_cypher_v10_time_sync() {
        let (_, who) = setup();
        let keys = v7_keys();
        let pack = pack_a(12345, who.oid).to_bytes();
        let hidden = keys.data_frame(&who, Protection::Hide, &pack);
        assert_eq!(
            hex(&hidden.encode()),
            hex(&unhex(
                "01 01 0000000000003039 6bbf965c 11223344 0000003f \
                        4d5010046331ada2065a1235d195f75c5a5a14752a2a5e5b3d5212cba5a56ed1ca3042355b5f7d5a3b377706502e77472e7773533f3466345f327758363512"
            ))
        );
        assert_eq!(keys.open(&hidden).unwrap(), pack);
        let cyphered = keys.data_frame(&who, Protection::Cypher, &pack);
        assert_eq!(
            hex(&cyphered.encode()),
            hex(&unhex(
                "01 02 0000000000003039 6bbf965c 11223344 00000040 \
                        34792e5112f7033f15a893187db754be12563760fa387de5a2007522413e6447cfa574eca233f297b5bf27a2449689b2c605aacca5b373c75479b4414026c686"
            ))
        );
        assert_eq!(&keys.open(&cyphered).unwrap()[..63], &pack[..]);
        assert_eq!(
            hex(&keys.time_sync_frame(&who, 1_700_000_000_000).encode()),
            hex(&unhex(
                "01 fe 0000000000003039 6bbf965c 11223344 00000008 0000018bcfe56800"
            ))
        );
    }

    #[test]
    fn session_keys_and_ciphers_never_print_their_keys() {
        let keys = v7_keys();
        let shown = format!(
            "{keys:?} {:?}",
            crate::cypher::Cypher::new(&keys.secure_key)
        );
        assert!(
            !shown.contains("0123456789abcdef") && !shown.contains("48, 49, 50"),
            "{shown}"
        );
        assert!(
            !shown.contains(&format!("{}", keys.hide_key))
                && !shown.contains(&format!("{}", keys.transfer_key)),
            "{shown}"
        );
    }

    #[test]
    fn replies_that_are_not_for_us_or_garbage_are_refused() {
        let (l, who) = setup();
        let hello = hello_frame(&l, &who, IP, CypherLevel::Aes128);
        let mut reply = reply_frame(&l, &hello, &v7_keys(), CypherLevel::Aes128, 3);
        reply.oid ^= 1;
        assert_eq!(
            read_reply(&l, &who, &reply, CypherLevel::Aes128),
            Err(HandshakeError::NotForUs)
        );
        let garbage = Frame {
            payload: vec![0xab; 17],
            ..hello.clone()
        };
        assert_eq!(
            read_reply(&l, &who, &garbage, CypherLevel::Aes128),
            Err(HandshakeError::Undecryptable)
        );
        let garbage = Frame {
            payload: vec![0xab; 2048],
            ..hello.clone()
        };
        assert_eq!(
            read_reply(&l, &who, &garbage, CypherLevel::Aes128),
            Err(HandshakeError::TooLong(2048))
        );
        // Another frame code than our hello's.
        let mut reply = reply_frame(&l, &hello, &v7_keys(), CypherLevel::Aes128, 3);
        reply.code = CODE_TIME_SYNC;
        assert_eq!(
            read_reply(&l, &who, &reply, CypherLevel::Aes128),
            Err(HandshakeError::UnexpectedCode(CODE_TIME_SYNC))
        );
        // Keys a cipher cannot use, and bytes after the keys that are not padding.
        let empty_key = SessionKeys {
            secure_key: Vec::new(),
            ..v7_keys()
        };
        let reply = reply_frame(&l, &hello, &empty_key, CypherLevel::Aes128, 3);
        assert_eq!(
            read_reply(&l, &who, &reply, CypherLevel::Aes128)
                .unwrap_err()
                .to_string(),
            "the handshake reply carries a session key of a length no cipher uses"
        );
        let mut trailing = v7_keys().encode();
        trailing.extend_from_slice(b"junk");
        let reply = Frame {
            payload: Cypher::new(&l.master_key()).encrypt(&trailing),
            ..hello.clone()
        };
        assert_eq!(
            read_reply(&l, &who, &reply, CypherLevel::Aes128)
                .unwrap_err()
                .to_string(),
            "the handshake reply has bytes after its keys that are not padding"
        );
        // A hello under another license does not decrypt to "hello".
        let other = License::parse(&License::build(12345, b"another key")).unwrap();
        assert!(matches!(
            read_hello(&other, &hello),
            Err(HandshakeError::BadHello(_))
        ));
    }
}
