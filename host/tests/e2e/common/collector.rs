//! The collector emulator as a separate process (`rds-forwarder collector`), as users run it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rds_forwarder::whatap::license::License;

/// A test license (not a real project's): pcode 424242, a 16-byte key.
pub fn test_license() -> String {
    License::build(424242, b"test-key-0123456")
}

pub struct CollectorProcess {
    pub child: Child,
    pub addr: SocketAddr,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl CollectorProcess {
    pub fn start(license: &str) -> CollectorProcess {
        Self::start_with(license, &[])
    }

    /// Started with extra arguments (a fault: `--fail-from-data-frame N`).
    pub fn start_with(license: &str, extra: &[&str]) -> CollectorProcess {
        let mut child = crate::common::forwarder_cmd()
            .args(["collector", "--listen", "127.0.0.1:0", "--license", license])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the collector");
        let mut first = String::new();
        BufReader::new(child.stderr.as_mut().expect("stderr"))
            .read_line(&mut first)
            .expect("collector banner");
        let addr = first
            .split_whitespace()
            .find_map(|w| w.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        assert!(!first.contains(license), "the banner shows the license");
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        CollectorProcess {
            child,
            addr,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits (at most 10 s) until the collector has printed `n` records.
    pub fn wait_for(&self, n: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.lines.lock().unwrap().len() < n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the collector and returns what it printed on stdout and stderr.
    pub fn finish(mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            use std::io::Read;
            let _ = err.read_to_string(&mut stderr);
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let printed: String = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        (printed, stderr)
    }
}

/// A collector never outlives its test, finished or not.
impl Drop for CollectorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
