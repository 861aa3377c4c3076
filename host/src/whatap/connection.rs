//! One TCP connection to one collector: the only code that owns a socket.
//!
//! Opening performs the handshake (secure transport). A reader task then drains every inbound
//! frame for the life of the connection, so the collector's sends never block, and hands
//! TIME_SYNC replies to the writer, which uses them to confirm delivery.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::codec::DecodeError;
use super::config::{Transport, WhatapConfig};
use super::frame::{CODE_TIME_SYNC, Frame, OneWayFrame};
use super::handshake::{
    CypherLevel, HandshakeError, Identity, SessionKeys, hello_frame, read_reply,
};

#[derive(Debug, Error)]
pub enum ConnError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connecting to {addr} timed out after {ms} ms")]
    ConnectTimeout { addr: String, ms: u128 },
    #[error("the handshake with {addr} failed: {source}")]
    Handshake {
        addr: String,
        source: HandshakeError,
    },
    #[error("{addr} sent a malformed frame: {source}")]
    Frame { addr: String, source: DecodeError },
    #[error("{addr} did not answer the handshake within {ms} ms")]
    HandshakeTimeout { addr: String, ms: u128 },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("writing to {addr} failed: {source}")]
    Write {
        addr: String,
        source: std::io::Error,
    },
    #[error("writing to {addr} timed out after {ms} ms")]
    WriteTimeout { addr: String, ms: u128 },
    #[error("{addr} did not confirm the batch within {ms} ms")]
    ConfirmTimeout { addr: String, ms: u128 },
}

/// A TIME_SYNC reply: our clock echoed, and the server's.
#[derive(Debug, Clone, Copy)]
struct TimeSync {
    echoed: i64,
    server: i64,
}

pub struct Connection {
    addr: String,
    writer: OwnedWriteHalf,
    keys: Option<SessionKeys>,
    syncs: mpsc::UnboundedReceiver<TimeSync>,
    reader: JoinHandle<()>,
    /// Server time minus ours, learned from TIME_SYNC (applied to pack headers).
    pub clock_delta_ms: i64,
    /// The value of the last TIME_SYNC request. Each request carries a value greater than
    /// any before it on this connection, so a reply seen earlier (captured from the cleartext
    /// and replayed) never confirms a later batch.
    last_sync: i64,
    /// When the last write finished: a connection idle for long may have been forgotten by a
    /// NAT or firewall on the path without a FIN or RST.
    last_write: Instant,
    /// A write began and did not finish (its future was dropped): a frame may be cut short
    /// on the wire, so the connection must not carry another.
    interrupted: bool,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Connection {
    /// Connects to `host:port` and, for the secure transport, performs the handshake.
    pub async fn open(
        host: &str,
        config: &WhatapConfig,
        who: &Identity,
    ) -> Result<Connection, ConnError> {
        let target = format!("{host}:{}", config.port);
        let addr: SocketAddr = match tokio::net::lookup_host(&target).await {
            Ok(mut addrs) => addrs.next().ok_or_else(|| ConnError::Resolve {
                host: host.to_owned(),
                source: std::io::Error::other("no address"),
            })?,
            Err(source) => {
                return Err(ConnError::Resolve {
                    host: host.to_owned(),
                    source,
                });
            }
        };
        let name = addr.to_string();
        let ms = config.connect_timeout.as_millis();
        let stream = match timeout(config.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ConnError::Connect { addr: name, source }),
            Err(_) => return Err(ConnError::ConnectTimeout { addr: name, ms }),
        };
        let _ = stream.set_nodelay(true);
        let local_ip = match stream.local_addr().map(|a| a.ip()) {
            Ok(IpAddr::V4(v4)) => v4.octets(),
            _ => [0, 0, 0, 0],
        };
        let (mut read, mut writer) = stream.into_split();
        let mut buf = Vec::with_capacity(4096);
        let keys = match config.transport {
            Transport::OneWay => None,
            Transport::Secure(_) => {
                let hello = hello_frame(&config.license, who, local_ip, CypherLevel::Aes128);
                let exchange = async {
                    writer
                        .write_all(&hello.encode())
                        .await
                        .map_err(|source| ConnError::Write {
                            addr: name.clone(),
                            source,
                        })?;
                    let reply = read_frame(&mut read, &mut buf, &name).await?;
                    read_reply(&config.license, who, &reply, CypherLevel::Aes128).map_err(
                        |source| ConnError::Handshake {
                            addr: name.clone(),
                            source,
                        },
                    )
                };
                match timeout(config.connect_timeout, exchange).await {
                    Ok(keys) => Some(keys?),
                    Err(_) => return Err(ConnError::HandshakeTimeout { addr: name, ms }),
                }
            }
        };
        let (tx, syncs) = mpsc::unbounded_channel();
        let reader_name = name.clone();
        let (pcode, oid) = (who.pcode, who.oid);
        let reader = tokio::spawn(async move {
            loop {
                match read_frame(&mut read, &mut buf, &reader_name).await {
                    // As the agents' receiver does: a reply for another agent is not ours.
                    Ok(frame)
                        if frame.code == CODE_TIME_SYNC
                            && frame.payload.len() >= 16
                            && frame.pcode == pcode
                            && frame.oid == oid =>
                    {
                        let p = &frame.payload;
                        let echoed = i64::from_be_bytes(p[0..8].try_into().unwrap_or([0; 8]));
                        let server = i64::from_be_bytes(p[8..16].try_into().unwrap_or([0; 8]));
                        if tx.send(TimeSync { echoed, server }).is_err() {
                            return;
                        }
                    }
                    // Control packs the collector may send (parameter requests): a log-only
                    // forwarder has nothing to do with them, but must keep reading.
                    Ok(frame) => {
                        tracing::debug!(peer = %reader_name, code = frame.code, "Ignored an inbound frame.")
                    }
                    Err(e) => {
                        tracing::debug!(peer = %reader_name, error = %e, "Connection reader stopped.");
                        return;
                    }
                }
            }
        });
        Ok(Connection {
            addr: name,
            writer,
            keys,
            syncs,
            reader,
            clock_delta_ms: 0,
            last_sync: 0,
            last_write: Instant::now(),
            interrupted: false,
        })
    }

    pub fn peer(&self) -> &str {
        &self.addr
    }

    /// How long since the last write finished (or the connection opened).
    pub fn idle(&self) -> Duration {
        self.last_write.elapsed()
    }

    /// Whether a write was cut off part way: the stream may hold half a frame.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// Writes serialized packs as data frames, then (when `confirm`) waits for a TIME_SYNC
    /// round trip: the collector handles a connection's frames in order, so its reply proves
    /// it has read every frame before it. Returns the bytes of the data frames written.
    pub async fn send_packs(
        &mut self,
        config: &WhatapConfig,
        who: &Identity,
        packs: &[Vec<u8>],
        confirm: bool,
    ) -> Result<u64, ConnError> {
        let mut out = Vec::with_capacity(packs.iter().map(|p| p.len() + 32).sum());
        for pack in packs {
            let frame = match (&self.keys, config.transport) {
                (Some(keys), Transport::Secure(protection)) => {
                    keys.data_frame(who, protection, pack).encode()
                }
                _ => OneWayFrame {
                    pcode: who.pcode,
                    license_hash: config.license.hash(),
                    payload: pack.clone(),
                }
                .encode(),
            };
            out.extend_from_slice(&frame);
        }
        let data_bytes = out.len() as u64;
        let sent_at = next_sync_value(self.last_sync, now_ms());
        if confirm && let Some(keys) = &self.keys {
            self.last_sync = sent_at;
            out.extend_from_slice(&keys.time_sync_frame(who, sent_at).encode());
        }
        self.write(&out, config.write_timeout).await?;
        if confirm && self.keys.is_some() {
            self.await_sync(sent_at, config.write_timeout).await?;
        }
        Ok(data_bytes)
    }

    async fn write(&mut self, bytes: &[u8], limit: Duration) -> Result<(), ConnError> {
        let addr = &self.addr;
        self.interrupted = true;
        let write = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        };
        match timeout(limit, write).await {
            Ok(Ok(())) => {
                self.interrupted = false;
                self.last_write = Instant::now();
                Ok(())
            }
            Ok(Err(source)) => Err(ConnError::Write {
                addr: addr.clone(),
                source,
            }),
            Err(_) => Err(ConnError::WriteTimeout {
                addr: addr.clone(),
                ms: limit.as_millis(),
            }),
        }
    }

    async fn await_sync(&mut self, sent_at: i64, limit: Duration) -> Result<(), ConnError> {
        let ms = limit.as_millis();
        let wait = async {
            loop {
                match self.syncs.recv().await {
                    Some(sync) if sync.echoed == sent_at => return Ok(sync),
                    Some(_) => continue, // a late reply to an earlier request
                    None => {
                        return Err(ConnError::Closed {
                            addr: self.addr.clone(),
                        });
                    }
                }
            }
        };
        match timeout(limit, wait).await {
            Ok(Ok(sync)) => {
                if let Some(delta) = clock_delta(sync.server, sent_at, now_ms()) {
                    self.clock_delta_ms = delta;
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnError::ConfirmTimeout {
                addr: self.addr.clone(),
                ms,
            }),
        }
    }

    /// Closes the write side so the collector sees a clean end, and stops the reader; waits
    /// at most `limit` for the peer (a failed connection gets little: its time is the
    /// invocation's).
    pub async fn close(mut self, limit: Duration) {
        let _ = timeout(limit, self.writer.shutdown()).await;
        self.reader.abort();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The value of the next TIME_SYNC request: the clock, but always past the last request's, so
/// no two requests of a connection carry the same value and a reply captured earlier never
/// answers a later one.
fn next_sync_value(last: i64, now: i64) -> i64 {
    now.max(last.saturating_add(1))
}

/// The server's clock minus ours, from a TIME_SYNC reply to a request sent at `sent_at` and
/// received at `now`. As WhaTap's agents do, only a round trip under 500 ms is trusted; the
/// arithmetic saturates, since the server's time is whatever the peer sent.
fn clock_delta(server: i64, sent_at: i64, now: i64) -> Option<i64> {
    let rtt = now.saturating_sub(sent_at);
    (0..500)
        .contains(&rtt)
        .then(|| server.saturating_sub(sent_at.saturating_add(rtt / 2)))
}

/// Reads one secure-session frame, buffering partial reads in `buf`.
async fn read_frame(
    read: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut Vec<u8>,
    addr: &str,
) -> Result<Frame, ConnError> {
    loop {
        match Frame::parse(buf) {
            Ok(Some((frame, used))) => {
                buf.drain(..used);
                return Ok(frame);
            }
            Ok(None) => {}
            Err(source) => {
                return Err(ConnError::Frame {
                    addr: addr.to_owned(),
                    source,
                });
            }
        }
        let mut chunk = [0u8; 8192];
        match read.read(&mut chunk).await {
            Ok(0) => {
                return Err(ConnError::Closed {
                    addr: addr.to_owned(),
                });
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {
                return Err(ConnError::Closed {
                    addr: addr.to_owned(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_sync_values_never_repeat_on_a_connection() {
        assert_eq!(next_sync_value(0, 1_700_000_000_000), 1_700_000_000_000);
        // Two confirmations in one millisecond, or a clock that stepped back.
        assert_eq!(
            next_sync_value(1_700_000_000_000, 1_700_000_000_000),
            1_700_000_000_001
        );
        assert_eq!(
            next_sync_value(1_700_000_000_005, 1_699_999_999_000),
            1_700_000_000_006
        );
        assert_eq!(next_sync_value(i64::MAX, 0), i64::MAX);
    }

    #[test]
    fn the_clock_delta_trusts_quick_round_trips_and_saturates() {
        assert_eq!(clock_delta(1_000_100, 1_000_000, 1_000_020), Some(90));
        assert_eq!(clock_delta(1_000_100, 1_000_000, 1_000_600), None, "slow");
        assert_eq!(
            clock_delta(1_000_100, 1_000_000, 999_000),
            None,
            "backwards"
        );
        assert_eq!(clock_delta(i64::MAX, -5, 0), Some(i64::MAX));
        assert_eq!(clock_delta(i64::MIN, 5, 10), Some(i64::MIN));
    }
}
