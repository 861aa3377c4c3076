//! Frames on the TCP stream. A secure-session frame ("NetHead") is 22 bytes of header and a
//! payload; a one-way frame has a license hash where the oid and transfer key would be. There
//! are no sync bytes or checksums: the length field alone delimits frames.

use crate::codec::{DecodeError, Reader, Writer};

pub const HEADER_LEN: usize = 22;
/// Bounds a frame a peer may make us buffer (WhaTap's READ_MAX).
pub const MAX_PAYLOAD: usize = 8 << 20;

/// netSrc of frames this agent sends (`AGENT_JAVA_EMBED`, which the Go agents send too).
pub const NETSRC_AGENT: u8 = 0x01;
/// netSrc of one-way frames.
pub const NETSRC_ONEWAY: u8 = 0x0a;

/// The code byte.
pub const CODE_PLAIN: u8 = 0x00;
pub const CODE_HIDE: u8 = 0x01;
pub const CODE_CYPHER: u8 = 0x02;
pub const CODE_KEY_EXTENSION: u8 = 0xfd;
pub const CODE_TIME_SYNC: u8 = 0xfe;
pub const CODE_KEY_RESET: u8 = 0xff;

/// A secure-session frame, either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub src: u8,
    pub code: u8,
    pub pcode: i64,
    pub oid: i32,
    pub transfer_key: i32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN + self.payload.len());
        w.byte(self.src)
            .byte(self.code)
            .long(self.pcode)
            .int(self.oid)
            .int(self.transfer_key)
            .int_bytes(&self.payload);
        w.into_bytes()
    }

    /// Parses one frame from the front of `buf`: `Ok(None)` when more bytes are needed, the
    /// frame and its length otherwise.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, DecodeError> {
        let Some(whole) = whole_frame(buf)? else {
            return Ok(None);
        };
        let total = whole.len();
        let mut r = Reader::new(whole);
        let frame = Frame {
            src: r.byte()?,
            code: r.byte()?,
            pcode: r.long()?,
            oid: r.int()?,
            transfer_key: r.int()?,
            payload: r.int_bytes()?.to_vec(),
        };
        Ok(Some((frame, total)))
    }
}

/// The bytes of the first frame in `buf` (both frame kinds share the header layout's length
/// field), `None` until all of them have arrived.
fn whole_frame(buf: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[18], buf[19], buf[20], buf[21]]);
    match usize::try_from(len) {
        Ok(n) if n <= MAX_PAYLOAD => Ok(buf.get(..HEADER_LEN + n)),
        _ => Err(DecodeError::invalid(
            "frame",
            format!("payload length {len} is outside 0..={MAX_PAYLOAD}"),
        )),
    }
}

/// A one-way frame: no handshake, no encryption; the license hash authenticates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneWayFrame {
    pub pcode: i64,
    pub license_hash: i64,
    pub payload: Vec<u8>,
}

impl OneWayFrame {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN + self.payload.len());
        w.byte(NETSRC_ONEWAY)
            .byte(0)
            .long(self.pcode)
            .long(self.license_hash)
            .int_bytes(&self.payload);
        w.into_bytes()
    }

    pub fn parse(buf: &[u8]) -> Result<Option<(OneWayFrame, usize)>, DecodeError> {
        let Some(whole) = whole_frame(buf)? else {
            return Ok(None);
        };
        let total = whole.len();
        let mut r = Reader::new(whole);
        let src = r.byte()?;
        if src != NETSRC_ONEWAY {
            return Err(DecodeError::invalid(
                "one-way frame",
                format!("netSrc {src}"),
            ));
        }
        let _version = r.byte()?;
        Ok(Some((
            OneWayFrame {
                pcode: r.long()?,
                license_hash: r.long()?,
                payload: r.int_bytes()?.to_vec(),
            },
            total,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hex;

    #[test]
    fn partial_frames_ask_for_more() {
        let f = Frame {
            src: 1,
            code: 1,
            pcode: 12345,
            oid: 7,
            transfer_key: 9,
            payload: vec![1, 2, 3],
        };
        let bytes = f.encode();
        for cut in 0..bytes.len() {
            assert_eq!(Frame::parse(&bytes[..cut]).unwrap(), None, "cut {cut}");
        }
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let (back, used) = Frame::parse(&two).unwrap().unwrap();
        assert_eq!((back, used), (f, bytes.len()));
    }

    #[test]
    fn an_absurd_length_is_refused() {
        let mut bytes = Frame {
            src: 1,
            code: 1,
            pcode: 1,
            oid: 1,
            transfer_key: 1,
            payload: vec![],
        }
        .encode();
        bytes[18..22].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(Frame::parse(&bytes).is_err());
        bytes[18..22].copy_from_slice(&((MAX_PAYLOAD + 1) as i32).to_be_bytes());
        assert!(Frame::parse(&bytes).is_err());
    }

    #[test]
    fn one_way_header_layout() {
        let f = OneWayFrame {
            pcode: 10,
            license_hash: 0xffffffffc4719557u64 as i64,
            payload: vec![0xab],
        };
        let b = f.encode();
        assert_eq!(
            hex(&b[..22]),
            "0a00000000000000000affffffffc471955700000001"
        );
        assert_eq!(b[9], 10);
        assert_eq!(OneWayFrame::parse(&b).unwrap().unwrap().0, f);
    }
}
