//! Nobody takes the server offline without logging in: silent sockets, idle HTTP/1.1 and
//! h2c connections and trickling bodies are closed by their timeouts, more connections than
//! the cap never raise the descriptor count past it, and `/health` answers within 100 ms on a
//! new connection throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::health_probe::HealthProbe;
use super::raw_http::read_response;
use crate::server::RunningServer;

const MAX_CONNECTIONS: usize = 64;
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// Scheduling slack on a loaded two-core machine, added to every upper bound.
const SLACK: Duration = Duration::from_millis(1500);
/// Descriptors the server may hold beyond its baseline and the cap: connections told to
/// close that have not finished closing (at most 16, the server's closing allowance), a
/// health probe, and a socket being accepted.
const DESCRIPTOR_SLACK: usize = 20;

fn descriptor_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Samples the server's descriptors every 10 ms until stopped; keeps the peak.
struct DescriptorSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DescriptorSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let task = {
            let stop = Arc::clone(&stop);
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(descriptor_count(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        Self { stop, peak, task }
    }

    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Reads until the server closes the connection; how long that took.
async fn time_until_closed(mut stream: TcpStream, deadline: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was still open after {deadline:?}"),
        }
    }
}

/// A request whose body trickles in, a byte every 200 ms: its status and when it came.
async fn trickle(address: String, head: &'static str, piece: &'static [u8]) -> (u16, Duration) {
    let stream = TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer.write_all(head.as_bytes()).await.unwrap();
    let writing = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 1024];
    let status = loop {
        let read = tokio::time::timeout(BODY_TIMEOUT * 4, reader.read(&mut chunk))
            .await
            .expect("the server answered the trickling body within four timeouts")
            .unwrap_or(0);
        if read == 0 {
            break 0;
        }
        buffer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&buffer);
        if let Some(line) = text.split("\r\n").next()
            && text.contains("\r\n")
        {
            break line
                .split_whitespace()
                .nth(1)
                .and_then(|status| status.parse().ok())
                .unwrap_or(0);
        }
    };
    let elapsed = started.elapsed();
    writing.abort();
    (status, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_idle_and_slow_connections_are_capped_and_timed_out_while_health_answers() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let seconds = |duration: Duration| duration.as_secs().to_string();
    let server = RunningServer::serve_with_environment(
        &database_url,
        &[
            ("CRMBET_MAX_CONNECTIONS", MAX_CONNECTIONS.to_string()),
            (
                "CRMBET_FIRST_REQUEST_TIMEOUT_SECONDS",
                seconds(FIRST_REQUEST_TIMEOUT),
            ),
            ("CRMBET_IDLE_TIMEOUT_SECONDS", seconds(IDLE_TIMEOUT)),
            ("CRMBET_REQUEST_BODY_TIMEOUT_SECONDS", seconds(BODY_TIMEOUT)),
        ],
    );
    let address = server.address.clone();
    // The first health check opens the reserved database connection: count after it.
    reqwest::get(format!("{}/health", server.url()))
        .await
        .unwrap();
    let baseline = descriptor_count(server.pid());
    assert!(baseline > 0, "cannot read /proc/{}/fd", server.pid());
    let sampler = DescriptorSampler::start(server.pid());
    let health = HealthProbe::start(&server.url());

    // Phase one, under the cap: every kind of idle connection meets its own timeout.
    let mut silent = Vec::new();
    for _ in 0..10 {
        let stream = TcpStream::connect(&address).await.unwrap();
        silent.push(tokio::spawn(time_until_closed(
            stream,
            FIRST_REQUEST_TIMEOUT * 5,
        )));
    }
    let mut h2c = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .unwrap();
        h2c.push(tokio::spawn(time_until_closed(
            stream,
            FIRST_REQUEST_TIMEOUT * 5,
        )));
    }
    let mut keep_alive = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // Not `GET /health `: that request line takes the health lane, which closes after
        // one answer; with a query it is an ordinary keep-alive request.
        stream
            .write_all(b"GET /health?probe=keep-alive HTTP/1.1\r\nhost: crmbet\r\n\r\n")
            .await
            .unwrap();
        let answer = read_response(&mut stream).await.expect("a health answer");
        assert_eq!(answer.status, 200);
        keep_alive.push(tokio::spawn(time_until_closed(stream, IDLE_TIMEOUT * 4)));
    }
    let mut slow_bodies = Vec::new();
    for _ in 0..3 {
        slow_bodies.push(tokio::spawn(trickle(
            address.clone(),
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: crmbet\r\ncontent-type: application/json\r\n\
             content-length: 100000\r\n\r\n",
            b"{",
        )));
    }
    for _ in 0..2 {
        slow_bodies.push(tokio::spawn(trickle(
            address.clone(),
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: crmbet\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n",
            b"1\r\n \r\n",
        )));
    }
    let within = |elapsed: Duration, low: Duration, high: Duration, what: &str| {
        assert!(
            elapsed >= low.mul_f64(0.9) && elapsed <= high + SLACK,
            "{what} closed after {elapsed:?}, expected {low:?}..{high:?}"
        );
    };
    for task in silent {
        let elapsed = task.await.unwrap();
        within(
            elapsed,
            FIRST_REQUEST_TIMEOUT,
            FIRST_REQUEST_TIMEOUT,
            "a silent connection",
        );
    }
    for task in h2c {
        let elapsed = task.await.unwrap();
        within(
            elapsed,
            FIRST_REQUEST_TIMEOUT,
            FIRST_REQUEST_TIMEOUT,
            "an idle h2c connection",
        );
    }
    for task in keep_alive {
        let elapsed = task.await.unwrap();
        within(
            elapsed,
            IDLE_TIMEOUT,
            IDLE_TIMEOUT.mul_f64(1.25),
            "an idle keep-alive connection",
        );
    }
    for task in slow_bodies {
        let (status, elapsed) = task.await.unwrap();
        assert_eq!(status, 408, "a trickling body is refused as too slow");
        within(elapsed, BODY_TIMEOUT, BODY_TIMEOUT, "a trickling body");
    }

    // Phase two, three times the cap of silent connections at once: the idlest make room,
    // the rest time out, and the descriptors never pass the cap.
    let mut flood = Vec::new();
    for _ in 0..MAX_CONNECTIONS * 3 {
        let stream = TcpStream::connect(&address).await.unwrap();
        flood.push(tokio::spawn(time_until_closed(
            stream,
            FIRST_REQUEST_TIMEOUT * 5,
        )));
    }
    for task in flood {
        let elapsed = task.await.unwrap();
        assert!(
            elapsed <= FIRST_REQUEST_TIMEOUT + SLACK,
            "closed after {elapsed:?}"
        );
    }
    let (_, slowest) = health.finish(20).await;
    let peak_descriptors = sampler.finish().await;
    eprintln!(
        "descriptors: baseline {baseline}, peak {peak_descriptors}, cap {MAX_CONNECTIONS}; slowest health {slowest:?}"
    );
    assert!(
        peak_descriptors <= baseline + MAX_CONNECTIONS + DESCRIPTOR_SLACK,
        "the server held {peak_descriptors} descriptors, over its baseline of {baseline} plus the cap of {MAX_CONNECTIONS}"
    );
    let report: serde_json::Value = reqwest::get(format!("{}/health", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let evicted = report["load"]["connections"]["evicted"]
        .as_u64()
        .unwrap_or(0);
    assert!(evicted > 0, "no connection made room at the cap: {report}");
}
