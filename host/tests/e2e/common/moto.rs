//! A local S3 (`moto[server]` from PyPI) on 127.0.0.1, started per test and stopped on drop.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rds_forwarder::aws::{AwsJsonClient, Service};
use rds_forwarder::s3::S3Client;

/// A JSON-protocol client of `service` with the environment `env` (from [`Moto::aws_env`]).
pub fn aws_client(env: &[(&'static str, String)], service: &'static Service) -> AwsJsonClient {
    AwsJsonClient::from_env(
        |k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()),
        service,
    )
    .expect("AWS client")
}

pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the local S3 (moto)");
        let mut moto = Moto { child, addr };
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto exited ({status}): install it with `pip install 'moto[server]'` (.ci/run does)"
                );
            }
            assert!(Instant::now() < until, "moto did not start within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// The AWS environment a client of this S3 needs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL_S3", format!("http://{}", self.addr)),
        ]
    }

    /// The environment of a client of any service here (`AWS_ENDPOINT_URL`).
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = self
            .env()
            .into_iter()
            .filter(|(k, _)| *k != "AWS_ENDPOINT_URL_S3")
            .collect();
        env.push(("AWS_ENDPOINT_URL", format!("http://{}", self.addr)));
        env
    }

    pub fn client(&self) -> S3Client {
        let env = self.env();
        S3Client::from_env(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .expect("s3 client")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
