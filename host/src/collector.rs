//! A local WhaTap collector emulator, written from the protocol spec: it answers the
//! handshake, decodes HIDE / CYPHER / plain / one-way frames and (Zip)LogSinkPacks, checks
//! tag hashes and session fields, and reports every record received. `rds-forwarder collector`
//! prints them as the same JSON lines `invoke` prints; the tests use it as the far end, with
//! faults injected.
//!
//! It shares only the sans-IO codec (`whatap::{codec, frame, pack, handshake}`) with the
//! sender, never the sender's session or connection logic.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::sandbox::bindings::LogRecord;
use crate::whatap::codec::DecodeError;
use crate::whatap::connection::now_ms;
use crate::whatap::encode::log_record;
use crate::whatap::frame::{CODE_TIME_SYNC, Frame, NETSRC_ONEWAY, OneWayFrame};
use crate::whatap::handshake::{SessionKeys, read_hello, reply_frame};
use crate::whatap::license::License;
use crate::whatap::pack::{LogSinkPack, TagHashes, read_records};

/// Misbehaviour to inject, for fault tests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Accept connections but never answer the hello.
    pub stall_handshake: bool,
    /// Answer the hello with bytes that are not an encrypted key reply.
    pub garbage_handshake: bool,
    /// Reset the connection (RST, without reading on) at this many-th data frame, counted
    /// across connections; once.
    pub drop_at_data_frame: Option<usize>,
    /// A collector that breaks and stays broken: from this many-th data frame on (counted
    /// across connections), every data frame resets its connection unread.
    pub fail_from_data_frame: Option<usize>,
    /// Read everything but never answer TIME_SYNC.
    pub ignore_time_sync: bool,
    /// Flapping: every other connection (the 1st, 3rd, …) is reset at its n-th data frame.
    pub flap_at_data_frame: Option<usize>,
    /// A path that forgets an idle flow without a FIN or RST: after answering its first
    /// TIME_SYNC, a connection is held open but nothing more on it is read or answered.
    pub forget_after_first_confirm: bool,
}

/// One record as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub record: LogRecord,
    pub peer: SocketAddr,
    pub oname: Option<String>,
    pub transport: &'static str,
}

/// Where received records and problems go.
pub trait Report: Send + Sync + 'static {
    fn record(&self, received: Received);
    fn problem(&self, peer: SocketAddr, problem: String);

    /// Whether this report looks at the records, or only counts them
    /// ([`counted`](Report::counted)). Every pack is decoded and checked either way; a
    /// counting report skips turning each into a [`Received`], a quarter of the emulator's
    /// time.
    fn keeps_records(&self) -> bool {
        true
    }

    /// `n` records decoded and checked, for a report that does not keep them.
    fn counted(&self, n: usize) {
        let _ = n;
    }
}

/// What the collector saw, shared between its connection tasks.
pub struct Collector {
    license: License,
    faults: Faults,
    data_frames: AtomicUsize,
    dropped: AtomicUsize,
    pub connections: AtomicUsize,
    /// Bytes of data frames read, headers included: what a sender's `wire_bytes` counts.
    pub data_bytes: AtomicU64,
}

impl Collector {
    pub fn new(license: License, faults: Faults) -> Arc<Collector> {
        Arc::new(Collector {
            license,
            faults,
            data_frames: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            data_bytes: AtomicU64::new(0),
        })
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, report: Arc<dyn Report>) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let ordinal = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
            let me = self.clone();
            let report = report.clone();
            tokio::spawn(async move {
                if let Err(problem) = me.connection(stream, peer, ordinal, &*report).await {
                    report.problem(peer, problem);
                }
            });
        }
    }

    async fn connection(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
        // This connection's place in the order of arrival (1-based), for the flapping fault.
        ordinal: usize,
        report: &dyn Report,
    ) -> Result<(), String> {
        let mut frames_here = 0usize;
        let mut buf = Vec::with_capacity(1 << 16);
        if !fill(&mut stream, &mut buf, 1).await? {
            return Ok(());
        }
        if buf[0] == NETSRC_ONEWAY {
            return self.one_way(stream, buf, peer, report).await;
        }
        let Some(hello) = next_frame(&mut stream, &mut buf).await? else {
            return Ok(());
        };
        if self.faults.stall_handshake {
            // Keep the socket open and silent until the sender gives up.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            return Ok(());
        }
        let h = read_hello(&self.license, &hello).map_err(|e| format!("refused the hello: {e}"))?;
        if self.faults.garbage_handshake {
            let garbage = Frame {
                payload: vec![0x5a; 29],
                ..hello.clone()
            };
            let _ = stream.write_all(&garbage.encode()).await;
            return Ok(());
        }
        let keys = new_keys(peer.ip());
        let mut tag_hashes = TagHashes::default();
        let reply = reply_frame(&self.license, &hello, &keys, h.level, 0x03);
        stream
            .write_all(&reply.encode())
            .await
            .map_err(|e| e.to_string())?;
        while let Some(frame) = next_frame(&mut stream, &mut buf).await? {
            if (frame.pcode, frame.oid) != (hello.pcode, hello.oid) {
                return Err(format!(
                    "frame for pcode {} oid {} on a session of pcode {} oid {}",
                    frame.pcode, frame.oid, hello.pcode, hello.oid
                ));
            }
            if frame.transfer_key != keys.transfer_key {
                return Err("frame with a stale transfer key".into());
            }
            if frame.code == CODE_TIME_SYNC {
                if self.faults.ignore_time_sync {
                    continue;
                }
                let agent = frame
                    .payload
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(i64::from_be_bytes)
                    .unwrap_or(0);
                let mut payload = agent.to_be_bytes().to_vec();
                payload.extend_from_slice(&now_ms().to_be_bytes());
                let answer = Frame {
                    src: 0x03,
                    code: CODE_TIME_SYNC,
                    payload,
                    ..frame
                };
                stream
                    .write_all(&answer.encode())
                    .await
                    .map_err(|e| e.to_string())?;
                if self.faults.forget_after_first_confirm {
                    // Open, silent and unread until the sender drops it.
                    std::future::pending::<()>().await;
                }
                continue;
            }
            frames_here += 1;
            self.data_bytes.fetch_add(
                (crate::whatap::frame::HEADER_LEN + frame.payload.len()) as u64,
                Ordering::SeqCst,
            );
            let flapping = self
                .faults
                .flap_at_data_frame
                .is_some_and(|n| ordinal % 2 == 1 && frames_here >= n);
            if self.should_drop() || flapping {
                // A reset, not a clean close: the sender's batch is cut off mid-stream.
                let _ = stream.set_zero_linger();
                return Ok(());
            }
            let bytes = keys
                .open(&frame)
                .ok_or_else(|| format!("frame code 0x{:02x} cannot be opened", frame.code))?;
            receive(
                report,
                &bytes,
                &mut tag_hashes,
                peer,
                Some(&h.oname),
                "secure",
            )?;
        }
        Ok(())
    }

    async fn one_way(
        &self,
        mut stream: TcpStream,
        mut buf: Vec<u8>,
        peer: SocketAddr,
        report: &dyn Report,
    ) -> Result<(), String> {
        let mut tag_hashes = TagHashes::default();
        loop {
            match OneWayFrame::parse(&buf).map_err(|e| format!("bad one-way frame: {e}"))? {
                Some((frame, used)) => {
                    buf.drain(..used);
                    self.data_bytes.fetch_add(used as u64, Ordering::SeqCst);
                    if frame.pcode != self.license.pcode
                        || frame.license_hash != self.license.hash()
                    {
                        return Err("one-way frame with another license".into());
                    }
                    if self.should_drop() {
                        return Ok(());
                    }
                    receive(
                        report,
                        &frame.payload,
                        &mut tag_hashes,
                        peer,
                        None,
                        "oneway",
                    )?;
                }
                None => {
                    let want = buf.len() + 1;
                    if !fill(&mut stream, &mut buf, want).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn should_drop(&self) -> bool {
        let n = self.data_frames.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .faults
            .fail_from_data_frame
            .is_some_and(|from| n >= from)
        {
            return true;
        }
        match self.faults.drop_at_data_frame {
            Some(at) if n >= at => self.dropped.fetch_add(1, Ordering::SeqCst) == 0,
            _ => false,
        }
    }
}

fn new_keys(peer: IpAddr) -> SessionKeys {
    let mut random = [0u8; 24];
    // Without randomness the emulator still works; the keys are just predictable.
    let _ = getrandom::fill(&mut random);
    let int = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    SessionKeys {
        transfer_key: int(&random[0..4]) | 1,
        secure_key: random[4..20].to_vec(),
        hide_key: int(&random[20..24]),
        public_ip: match peer {
            IpAddr::V4(v4) => i32::from_be_bytes(v4.octets()),
            IpAddr::V6(_) => 0,
        },
    }
}

/// Checks every record in a pack's bytes and hands them to `report`: each as a [`Received`],
/// or only their count. A pack that fails a check reports nothing. Records are read in place
/// and built as owned records only for a report that keeps them.
fn receive(
    report: &dyn Report,
    bytes: &[u8],
    tags: &mut TagHashes,
    peer: SocketAddr,
    oname: Option<&str>,
    transport: &'static str,
) -> Result<(), String> {
    let bad = |e: DecodeError| format!("bad pack: {e}");
    if !report.keeps_records() {
        let mut n = 0;
        read_records(bytes, |p| {
            tags.check(&p)?;
            n += 1;
            Ok(())
        })
        .map_err(bad)?;
        report.counted(n);
        return Ok(());
    }
    for pack in checked_packs(bytes, tags).map_err(bad)? {
        report.record(Received {
            record: log_record(&pack),
            peer,
            oname: oname.map(str::to_owned),
            transport,
        });
    }
    Ok(())
}

/// The LogSinkPacks in a pack's bytes (a ZipPack holds several), with tag hashes checked.
pub fn decode_packs(bytes: &[u8]) -> Result<Vec<LogSinkPack>, DecodeError> {
    checked_packs(bytes, &mut TagHashes::default())
}

fn checked_packs(bytes: &[u8], tags: &mut TagHashes) -> Result<Vec<LogSinkPack>, DecodeError> {
    let mut packs = Vec::new();
    read_records(bytes, |p| {
        tags.check(&p)?;
        packs.push(p.to_owned());
        Ok(())
    })?;
    Ok(packs)
}

/// Reads until `buf` holds at least `want` bytes; false at a clean end of stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> Result<bool, String> {
    let mut chunk = [0u8; 16384];
    while buf.len() < want {
        match stream.read(&mut chunk).await {
            Ok(0) => return Ok(false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Ok(true)
}

async fn next_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Frame>, String> {
    loop {
        match Frame::parse(buf).map_err(|e| format!("bad frame: {e}"))? {
            Some((frame, used)) => {
                buf.drain(..used);
                return Ok(Some(frame));
            }
            None => {
                let want = buf.len() + 1;
                if !fill(stream, buf, want).await? {
                    return Ok(None);
                }
            }
        }
    }
}

/// Prints records as JSON lines on stdout and problems on stderr: the CLI's report.
pub struct PrintReport;

impl Report for PrintReport {
    fn record(&self, received: Received) {
        use std::io::Write;
        let line = crate::record_json::to_json(&received.record);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn problem(&self, peer: SocketAddr, problem: String) {
        eprintln!("collector: {peer}: {problem}");
    }
}

/// Counts what arrived and keeps the problems; for benchmarks, where keeping every record
/// would measure the collector's memory instead of the sender.
#[derive(Default)]
pub struct CountReport {
    pub records: std::sync::atomic::AtomicU64,
    pub problems: std::sync::Mutex<Vec<String>>,
}

impl Report for CountReport {
    fn record(&self, _received: Received) {
        self.counted(1);
    }

    fn keeps_records(&self) -> bool {
        false
    }

    fn counted(&self, n: usize) {
        self.records
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn problem(&self, peer: SocketAddr, problem: String) {
        if let Ok(mut p) = self.problems.lock() {
            p.push(format!("{peer}: {problem}"));
        }
    }
}

/// Keeps everything in memory; for tests.
#[derive(Default)]
pub struct MemoryReport {
    pub records: std::sync::Mutex<Vec<Received>>,
    pub problems: std::sync::Mutex<Vec<String>>,
}

impl Report for MemoryReport {
    fn record(&self, received: Received) {
        if let Ok(mut r) = self.records.lock() {
            r.push(received);
        }
    }

    fn problem(&self, peer: SocketAddr, problem: String) {
        if let Ok(mut p) = self.problems.lock() {
            p.push(format!("{peer}: {problem}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatap::codec::Writer;
    use crate::whatap::gzip::Gzip;
    use crate::whatap::pack::{Header, LogSinkRef, TagMap, ZipPack, write_log_sink};
    use crate::whatap::value::ValueRef;

    fn zip_of(tag_maps: &[&TagMap]) -> Vec<u8> {
        let (mut records, mut scratch) = (Writer::new(), Writer::new());
        for (i, tags) in tag_maps.iter().enumerate() {
            let record = LogSinkRef {
                header: Header::default(),
                category: "#RDS_LOG",
                tags,
                line: i as i64 + 1,
                content: "a log line long enough to be gzip'd with the others",
                fields: &[],
            };
            write_log_sink(&mut records, &record, &mut scratch);
        }
        let zip = ZipPack::new(
            &mut Gzip::new(),
            Header::default(),
            tag_maps.len(),
            records.into_bytes(),
        );
        zip.unwrap().to_bytes()
    }

    /// A tag map is re-encoded and hashed once while it is remembered; a record that repeats
    /// it with another hash is still refused, interleaved with other tags or not.
    #[test]
    fn a_wrong_tag_hash_is_found_among_remembered_tags() {
        let tags = TagMap::encode([("db", ValueRef::Text("orders"))].into_iter());
        let other = TagMap::encode([("db", ValueRef::Text("users"))].into_iter());
        let mut wrong = tags.clone();
        wrong.hash ^= 1;
        let good = decode_packs(&zip_of(&[&tags, &other, &tags])).expect("decodes");
        assert_eq!(good.len(), 3);
        assert_eq!(good[2].line, 3);
        for zip in [
            zip_of(&[&tags, &tags, &wrong]),
            zip_of(&[&tags, &other, &wrong]),
        ] {
            assert_eq!(
                decode_packs(&zip).unwrap_err().to_string(),
                format!("invalid tag hash: {} does not match the tags", wrong.hash)
            );
        }
        // More distinct maps than are remembered: each still checked.
        let many: Vec<TagMap> = (0..20)
            .map(|i| TagMap::encode([("n", ValueRef::Decimal(i % 12))].into_iter()))
            .collect();
        let refs: Vec<&TagMap> = many.iter().collect();
        assert_eq!(decode_packs(&zip_of(&refs)).expect("decodes").len(), 20);
        let mut last = many[19].clone();
        last.hash ^= 1;
        let mut refs = refs;
        refs.push(&last);
        assert!(decode_packs(&zip_of(&refs)).is_err());
    }
}
