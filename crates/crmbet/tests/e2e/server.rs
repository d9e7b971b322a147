//! Starts the real binary on a free port; the tests talk to it as clients do, signed in as
//! an admin (the one `crmbet demo` prints, or one `crmbet account create` made).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The account `serve` tests create before starting the server.
const SERVE_ADMIN: &str = "e2e-admin";
const SERVE_ADMIN_PASSWORD: &str = "the e2e admin password";

/// A `crmbet demo` process serving a small sample from its own SQLite file.
pub struct RunningServer {
    child: Child,
    /// `http`, or `https` when the server was started with TLS.
    pub scheme: String,
    pub address: String,
    pub database_url: String,
    /// An admin account of this server: username and password.
    pub admin: (String, String),
    /// The lines the server wrote to stderr so far (its log).
    pub stderr: Arc<Mutex<Vec<String>>>,
    _directory: tempfile::TempDir,
}

/// Adds `authorization: Bearer <access token>` to every gRPC call.
#[derive(Debug, Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A gRPC channel that sends the admin's access token.
pub type AuthorizedChannel = InterceptedService<Channel, Bearer>;

/// Runs `crmbet account create --password-stdin` against `database_url` and returns its
/// output.
pub fn create_account(
    database_url: &str,
    username: &str,
    role: &str,
    password: Option<&str>,
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crmbet"));
    command
        .args(["account", "create", "--username", username, "--role", role])
        .env("DATABASE_URL", database_url)
        .env("CRMBET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if password.is_some() {
        command.arg("--password-stdin").stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("starting crmbet account create");
    if let Some(password) = password {
        let mut stdin = child.stdin.take().expect("child stdin");
        writeln!(stdin, "{password}").expect("writing the password");
    }
    child
        .wait_with_output()
        .expect("waiting for crmbet account create")
}

impl RunningServer {
    /// Starts `crmbet demo` on a free port: a synthetic lake of `players` players (40 rows
    /// each), loaded by the ETL and segmented by a trained model.
    pub fn start(players: usize) -> Self {
        Self::start_with_environment(players, &[])
    }

    /// [`RunningServer::start`] with extra environment variables (limits, say).
    pub fn start_with_environment(players: usize, environment: &[(&str, String)]) -> Self {
        let directory = tempfile::tempdir().expect("creating a temporary folder");
        let database_url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("crmbet.db").display()
        );
        Self::demo(players, environment, database_url, directory)
    }

    /// [`RunningServer::start_with_environment`] on an empty database of the caller's
    /// (PostgreSQL, say).
    pub fn start_on_database(
        players: usize,
        database_url: &str,
        environment: &[(&str, String)],
    ) -> Self {
        let directory = tempfile::tempdir().expect("creating a temporary folder");
        Self::demo(players, environment, database_url.to_owned(), directory)
    }

    fn demo(
        players: usize,
        environment: &[(&str, String)],
        database_url: String,
        directory: tempfile::TempDir,
    ) -> Self {
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
        Self::spawn(&arguments, environment, database_url, directory, None)
    }

    /// Kills the server at once (SIGKILL, no shutdown) and returns what a restart needs:
    /// the database, the admin, and the folder the database lives in.
    pub fn kill(mut self) -> (String, (String, String), tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let directory = std::mem::replace(
            &mut self._directory,
            tempfile::tempdir().expect("creating a temporary folder"),
        );
        (self.database_url.clone(), self.admin.clone(), directory)
    }

    /// Starts `crmbet serve` again on a database whose admin exists already.
    pub fn restart(
        database_url: String,
        admin: (String, String),
        directory: tempfile::TempDir,
        environment: &[(&str, String)],
    ) -> Self {
        let arguments = ["serve", "--listen", "127.0.0.1:0"];
        Self::spawn(
            &arguments,
            environment,
            database_url,
            directory,
            Some(admin),
        )
    }

    /// Creates an admin account with `crmbet account create`, then starts `crmbet serve` on
    /// a free port against `database_url`.
    pub fn serve(database_url: &str) -> Self {
        Self::serve_with_environment(database_url, &[])
    }

    /// [`RunningServer::serve`] with extra environment variables (`CRMBET_TLS_*`, say).
    pub fn serve_with_environment(database_url: &str, environment: &[(&str, String)]) -> Self {
        let created = create_account(
            database_url,
            SERVE_ADMIN,
            "admin",
            Some(SERVE_ADMIN_PASSWORD),
        );
        assert!(
            created.status.success(),
            "crmbet account create failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let directory = tempfile::tempdir().expect("creating a temporary folder");
        let arguments = ["serve", "--listen", "127.0.0.1:0"];
        let admin = (SERVE_ADMIN.to_owned(), SERVE_ADMIN_PASSWORD.to_owned());
        Self::spawn(
            &arguments,
            environment,
            database_url.to_owned(),
            directory,
            Some(admin),
        )
    }

    /// Starts the binary; without `admin`, it must print the demo's `admin password: …`
    /// line before it listens.
    fn spawn(
        arguments: &[&str],
        environment: &[(&str, String)],
        database_url: String,
        directory: tempfile::TempDir,
        mut admin: Option<(String, String)>,
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crmbet"))
            .args(arguments)
            .env("DATABASE_URL", &database_url)
            .env("CRMBET_WAREHOUSE_DIR", directory.path().join("warehouse"))
            .env("CRMBET_LOG", "warn")
            .envs(environment.iter().map(|(name, value)| (*name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the crmbet binary");
        // The server's log lines, echoed as they come and kept for tests that read them.
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let server_stderr = child.stderr.take().expect("child stderr");
        std::thread::spawn({
            let stderr_lines = Arc::clone(&stderr_lines);
            move || {
                for line in BufReader::new(server_stderr).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    stderr_lines
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(line);
                }
            }
        });
        let stdout = child.stdout.take().expect("child stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let (scheme, address) = loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(180))
                .expect("the server did not print its address within 180 s");
            if let Some(password) = line.strip_prefix("admin password: ") {
                admin = Some(("admin".to_owned(), password.trim().to_owned()));
            }
            let listening = line
                .strip_prefix("crmbet listening on ")
                .and_then(|rest| rest.split_once("://"));
            if let Some((scheme, rest)) = listening {
                let address = rest.split_whitespace().next().unwrap_or_default();
                break (scheme.to_owned(), address.to_owned());
            }
        };
        std::thread::spawn(move || for _ in receiver {});
        let admin = admin.expect("the server printed no `admin password:` line before listening");
        Self {
            child,
            scheme,
            address,
            database_url,
            admin,
            stderr: stderr_lines,
            _directory: directory,
        }
    }

    /// The server process's id (for `/proc/<pid>/fd`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://host:port`, or `https://…` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// Logs in over REST as `username` and returns the login response.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", self.url()))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("sending the login request")
    }

    /// A fresh access token of the admin account.
    pub async fn access_token(&self) -> String {
        let response = self.login(&self.admin.0, &self.admin.1).await;
        assert_eq!(response.status(), 200, "the admin could not log in");
        let body: serde_json::Value = response.json().await.expect("a JSON login answer");
        body["access_token"]
            .as_str()
            .expect("an access_token in the login answer")
            .to_owned()
    }

    /// A REST client that sends the admin's access token.
    pub async fn rest_client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {}", self.access_token().await);
        headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// A gRPC channel that sends the admin's access token.
    pub async fn grpc_channel(&self) -> AuthorizedChannel {
        let channel = tonic::transport::Endpoint::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let value = format!("Bearer {}", self.access_token().await);
        InterceptedService::new(channel, Bearer(value.parse().unwrap()))
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
