//! A `redis-server` of the test's own on a free port, stopped when dropped: tests that
//! stop Redis mid-run must not take the shared one down.

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateRedis {
    process: Child,
    pub url: String,
}

impl PrivateRedis {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Starts one on `port` (a restart on the port of a stopped one).
    pub fn start_on(port: u16) -> Self {
        Self {
            process: start_redis_server(port, &[]),
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `redis-server` on `port` with `extra_arguments`, keeping nothing on disk, and waits
/// until it accepts connections.
pub fn start_redis_server(port: u16, extra_arguments: &[OsString]) -> Child {
    let process = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(extra_arguments)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start redis-server (is it installed?): {error}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}
