//! A Redis Cluster of the test's own: three masters (`redis-server --cluster-enabled`) on
//! free ports, joined by `redis-cli --cluster create`, stopped when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::private_redis::start_redis_server;

const MASTERS: usize = 3;

pub struct PrivateRedisCluster {
    processes: Vec<Child>,
    _folder: tempfile::TempDir,
    /// A `redis-cluster://` URL naming every node.
    pub url: String,
}

impl PrivateRedisCluster {
    /// Starts the nodes, creates the cluster and waits until every slot is served.
    pub fn start() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..MASTERS).map(|_| free_port()).collect();
        let processes = ports
            .iter()
            .map(|port| start_node(*port, folder.path()))
            .collect();
        let nodes: Vec<String> = ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|error| panic!("cannot run redis-cli (is it installed?): {error}"));
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self {
            processes,
            _folder: folder,
            url: format!(
                "redis-cluster://{}?{}",
                nodes[0],
                nodes[1..]
                    .iter()
                    .map(|node| format!("node={node}"))
                    .collect::<Vec<_>>()
                    .join("&")
            ),
        };
        cluster.wait_until_ok(ports[0]);
        cluster
    }

    fn wait_until_ok(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not become ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateRedisCluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn free_port() -> u16 {
    // The cluster bus takes port + 10000 too: keep both in range.
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn start_node(port: u16, folder: &Path) -> Child {
    let config_file = folder.join(format!("nodes-{port}.conf"));
    start_redis_server(
        port,
        &[
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            config_file.into_os_string(),
            "--dir".into(),
            folder.as_os_str().to_owned(),
        ],
    )
}
