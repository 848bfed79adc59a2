//! The real `sesame serve` as a child process, for tests that need the binary
//! exactly as an operator runs it (signals, logs, the README's commands).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{MASTER_KEY, TestDb, sesame_cmd};

pub struct Server {
    child: std::process::Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// Its WARN and ERROR log lines.
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// SIGTERM, as an orchestrator stops it; waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sesame serve` (JSON logs) on `db` with `env` on top, and waits
/// until it listens (`SESAME_LISTEN` defaults to a free port).
pub fn serve(db: &TestDb, env: &[(&str, &str)]) -> Server {
    let mut cmd = sesame_cmd();
    cmd.args(["serve", "--log-format", "json"])
        .env("SESAME_DATABASE_URL", &db.url)
        .env("SESAME_MASTER_KEY", MASTER_KEY)
        .env("SESAME_LISTEN", "127.0.0.1:0")
        .env("SESAME_AUDIT__LOG_LINES", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let keep = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"listening\"") {
                let _ = tx.send(line.clone());
            }
            // Request lines are many; warnings and errors are what matter.
            if line.contains("\"WARN\"") || line.contains("\"ERROR\"") {
                keep.lock().unwrap().push(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).expect("sesame serve starts");
    let v: Value = serde_json::from_str(&line).unwrap();
    let addr = v["fields"]["addr"].as_str().unwrap().to_string();
    Server { child, addr, lines }
}

/// A port nobody listens on now (for a server whose issuer must name it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap()
}
