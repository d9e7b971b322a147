//! Whether the configured RabbitMQ answers, for `/health`: the AMQP 0-9-1 protocol header
//! answered by a method frame (a port that merely accepts TCP, as while RabbitMQ boots,
//! does not count). The answer is kept for [`FRESH_FOR`]; a check that finds it older gets
//! it at once and refreshes it in the background, so a broker that hangs never slows the
//! health check beyond its first call.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the broker has to answer the handshake before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an answer stands before the next check refreshes it.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// The broker of `AMQP_URL` and what it last answered.
#[derive(Debug)]
pub(crate) struct BrokerProbe {
    address: Result<(String, bool), String>,
    last: Mutex<Option<Probed>>,
}

#[derive(Debug, Clone)]
struct Probed {
    at: Instant,
    outcome: Result<(), String>,
    refreshing: bool,
}

impl BrokerProbe {
    /// A probe of the broker named by `amqp_url`; nothing is sent until the first check.
    pub(crate) fn new(amqp_url: &str) -> Arc<Self> {
        Arc::new(Self {
            address: broker_address(amqp_url),
            last: Mutex::new(None),
        })
    }

    /// Up, or why not: the last answer if fresh, else the last answer while a refresh runs
    /// in the background; the very first check waits for its probe.
    pub(crate) async fn state(self: &Arc<Self>) -> Result<(), String> {
        let (address, tls) = self.address.clone()?;
        let stale = {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            match last.as_mut() {
                None => None,
                Some(probed) if probed.at.elapsed() < FRESH_FOR || probed.refreshing => {
                    return probed.outcome.clone();
                }
                Some(probed) => {
                    probed.refreshing = true;
                    Some(probed.outcome.clone())
                }
            }
        };
        let Some(stale) = stale else {
            let outcome = probe(&address, tls).await;
            self.record(outcome.clone());
            return outcome;
        };
        let probe_again = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = probe(&address, tls).await;
            probe_again.record(outcome);
        });
        stale
    }

    fn record(&self, outcome: Result<(), String>) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Probed {
            at: Instant::now(),
            outcome,
            refreshing: false,
        });
    }
}

/// `host:port` of an `amqp://` or `amqps://` URL (default ports 5672 and 5671), and whether
/// it is TLS; the credentials are left out, so they never reach a health answer.
fn broker_address(amqp_url: &str) -> Result<(String, bool), String> {
    let (tls, rest) = match amqp_url.split_once("://") {
        Some(("amqp", rest)) => (false, rest),
        Some(("amqps", rest)) => (true, rest),
        _ => return Err("AMQP_URL is not an amqp:// or amqps:// URL".to_owned()),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    let has_port = host_and_port.rsplit_once(':').is_some_and(|(_, port)| {
        !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit())
    });
    if has_port {
        return Ok((host_and_port.to_owned(), tls));
    }
    let default_port = if tls { 5671 } else { 5672 };
    Ok((format!("{host_and_port}:{default_port}"), tls))
}

/// One probe: a TCP connection and, for plain AMQP, the handshake's first frame.
/// `amqps://` is checked up to the connection.
async fn probe(address: &str, tls: bool) -> Result<(), String> {
    let handshake = async {
        let mut connection = TcpStream::connect(address)
            .await
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        if tls {
            return Ok(());
        }
        connection
            .write_all(b"AMQP\x00\x00\x09\x01")
            .await
            .map_err(|error| format!("{address} closed the connection: {error}"))?;
        let mut frame_type = [0u8; 1];
        connection
            .read_exact(&mut frame_type)
            .await
            .map_err(|error| format!("{address} did not answer the AMQP handshake: {error}"))?;
        if frame_type[0] == 1 {
            Ok(())
        } else {
            Err(format!("{address} does not speak AMQP 0-9-1"))
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, handshake)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{address} did not answer within {} ms",
                PROBE_TIMEOUT.as_millis()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_leave_credentials_out_and_default_the_port() {
        let cases = [
            (
                "amqp://guest:secret@broker:5673/%2f",
                Ok(("broker:5673", false)),
            ),
            ("amqp://broker", Ok(("broker:5672", false))),
            (
                "amqps://user:pw@broker.example/vhost",
                Ok(("broker.example:5671", true)),
            ),
            (
                "amqp://127.0.0.1?heartbeat=10",
                Ok(("127.0.0.1:5672", false)),
            ),
            ("http://broker", Err(())),
        ];
        for (url, expected) in cases {
            let address = broker_address(url);
            match expected {
                Ok((host_and_port, tls)) => {
                    assert_eq!(address, Ok((host_and_port.to_owned(), tls)), "{url}")
                }
                Err(()) => assert!(address.is_err(), "{url}"),
            }
        }
    }
}
