//! A minimal Lambda Runtime API emulator on 127.0.0.1, speaking the documented protocol
//! (`GET /2018-06-01/runtime/invocation/next` long-poll with the `Lambda-Runtime-*` headers,
//! `POST …/{id}/response`, `…/{id}/error`, `/runtime/init/error`), so the real binary runs in
//! Lambda mode under test and under `bench` (cold start, peak RSS).
//!
//! Test tooling: it panics on what cannot happen on a loopback socket it owns.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(serde_json::Value),
    Error { error_type: String, message: String },
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Vec<u8>, u64)>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<String>,
}

#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let api = RuntimeApi {
            addr,
            state: Arc::new((Mutex::new(State::default()), Condvar::new())),
        };
        let server = api.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = server.clone();
                std::thread::spawn(move || s.connection(stream));
            }
        });
        api
    }

    /// Queues an event; the function gets `timeout` to answer it.
    pub fn invoke(&self, request_id: &str, event: &[u8], timeout: Duration) {
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + timeout.as_millis() as u64;
        let (lock, cv) = &*self.state;
        lock.lock()
            .unwrap()
            .queue
            .push_back((request_id.to_owned(), event.to_vec(), deadline));
        cv.notify_all();
    }

    /// Waits (at most `limit`) for the answer to `request_id`.
    pub fn outcome(&self, request_id: &str, limit: Duration) -> Option<Outcome> {
        let (lock, cv) = &*self.state;
        let until = Instant::now() + limit;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some(o) = state.outcomes.get(request_id) {
                return Some(o.clone());
            }
            let left = until.checked_duration_since(Instant::now())?;
            state = cv.wait_timeout(state, left).unwrap().0;
        }
    }

    pub fn init_error(&self) -> Option<String> {
        self.state.0.lock().unwrap().init_error.clone()
    }

    fn connection(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut out = stream;
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let reply = self.route(method, path, &body);
            if out.write_all(&reply).is_err() {
                return;
            }
        }
    }

    fn route(&self, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
        let (lock, cv) = &*self.state;
        let path = path.strip_prefix("/2018-06-01/runtime").unwrap_or(path);
        match (method, path) {
            ("GET", "/invocation/next") => {
                let mut state = lock.lock().unwrap();
                let (id, event, deadline) = loop {
                    if let Some(next) = state.queue.pop_front() {
                        break next;
                    }
                    state = cv.wait(state).unwrap();
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Lambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:test\r\n\
                     Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                    event.len()
                );
                let mut reply = head.into_bytes();
                reply.extend_from_slice(&event);
                reply
            }
            ("POST", "/init/error") => {
                lock.lock().unwrap().init_error = Some(String::from_utf8_lossy(body).into_owned());
                cv.notify_all();
                accepted()
            }
            ("POST", p) if p.starts_with("/invocation/") => {
                let rest = &p["/invocation/".len()..];
                let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
                let outcome = if kind == "response" {
                    Outcome::Response(
                        serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
                    )
                } else {
                    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                    Outcome::Error {
                        error_type: v["errorType"].as_str().unwrap_or("").to_owned(),
                        message: v["errorMessage"].as_str().unwrap_or("").to_owned(),
                    }
                };
                lock.lock().unwrap().outcomes.insert(id.to_owned(), outcome);
                cv.notify_all();
                accepted()
            }
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        }
    }
}

fn accepted() -> Vec<u8> {
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n".to_vec()
}
