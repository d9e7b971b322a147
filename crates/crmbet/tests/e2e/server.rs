//! Starts the real binary on a free port; the tests talk to it as clients do.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `crmbet demo` process serving a small sample from its own SQLite file.
pub struct RunningServer {
    child: Child,
    pub address: String,
    pub database_url: String,
    _directory: tempfile::TempDir,
}

impl RunningServer {
    /// Starts `crmbet demo` on a free port: a synthetic lake of `players` players (40 rows
    /// each), loaded by the ETL and segmented by a trained model.
    pub fn start(players: usize) -> Self {
        let directory = tempfile::tempdir().expect("creating a temporary folder");
        let database_url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("crmbet.db").display()
        );
        let transactions = (players * 40).to_string();
        let players = players.to_string();
        let arguments = [
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--players",
            players.as_str(),
            "--transactions",
            transactions.as_str(),
        ];
        Self::spawn(&arguments, database_url, directory)
    }

    /// Starts `crmbet serve` on a free port against `database_url`.
    pub fn serve(database_url: &str) -> Self {
        let directory = tempfile::tempdir().expect("creating a temporary folder");
        let arguments = ["serve", "--listen", "127.0.0.1:0"];
        Self::spawn(&arguments, database_url.to_owned(), directory)
    }

    fn spawn(arguments: &[&str], database_url: String, directory: tempfile::TempDir) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crmbet"))
            .args(arguments)
            .env("DATABASE_URL", &database_url)
            .env("CRMBET_WAREHOUSE_DIR", directory.path().join("warehouse"))
            .env("CRMBET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the crmbet binary");
        let stdout = child.stdout.take().expect("child stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let address = loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(180))
                .expect("the server did not print its address within 180 s");
            if let Some(rest) = line.strip_prefix("crmbet listening on http://") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        std::thread::spawn(move || for _ in receiver {});
        Self {
            child,
            address,
            database_url,
            _directory: directory,
        }
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends SIGTERM and waits (with a deadline) for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("running kill");
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the server") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
