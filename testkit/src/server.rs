//! The built `customer-list serve` as a child process: what the CLI and crash tests, the
//! bench and the chaos run start. Nothing of the caller's `CUSTOMER_LIST_*` environment
//! leaks into it; it is ready once it prints where it listens; everything it writes on
//! stderr is collected, so it never blocks on a full pipe.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How to start one server.
pub struct Launch {
    command: Command,
    listen: String,
    serve_args: Vec<OsString>,
}

impl Launch {
    pub fn new(binary: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars() {
            if name.starts_with("CUSTOMER_LIST_") {
                command.env_remove(name);
            }
        }
        command.stderr(Stdio::piped()).kill_on_drop(true);
        Self {
            command,
            listen: "127.0.0.1:0".into(),
            serve_args: Vec::new(),
        }
    }

    /// The address to listen on; by default a free port on loopback.
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = address.into();
        self
    }

    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub fn envs<'a>(mut self, vars: impl IntoIterator<Item = &'a (&'a str, String)>) -> Self {
        for (name, value) in vars {
            self.command.env(name, value);
        }
        self
    }

    /// An option of `serve` (e.g. `--no-dispatcher`).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.serve_args.push(arg.as_ref().to_owned());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Starts `serve` and waits (at most 30 s) until it listens.
    pub async fn start(mut self) -> ServerProcess {
        let mut child = self
            .command
            .args(["serve", "--listen", &self.listen])
            .args(&self.serve_args)
            .spawn()
            .expect("spawn customer-list serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(line.clone());
                if let Some(url) = line.split("listening on ").nth(1) {
                    return url.trim().to_owned();
                }
            }
            panic!(
                "serve exited before listening: {}",
                log.lock().unwrap().join("\n")
            );
        })
        .await
        .expect("serve listens within 30 s");
        let collected = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        ServerProcess { child, base, log }
    }
}

/// A running server, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Resets the kernel's peak-RSS mark (VmHWM), so the next reading covers what follows.
    pub fn reset_peak_memory(&self) {
        reset_peak_rss(self.pid());
    }

    /// Its peak resident memory since it started or the last reset, in MB.
    pub fn peak_memory_mb(&self) -> Option<f64> {
        peak_rss_mb(self.pid())
    }

    /// Every line it wrote on stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, as a crash would; waits until it is gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, as an orchestrator stops it; waits (at most 15 s) for it to exit.
    pub async fn terminate(mut self) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIGTERM sent");
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits within 15 s of SIGTERM")
            .expect("wait for the server")
    }
}

/// Resets the kernel's peak-RSS mark (VmHWM) of `pid`.
pub fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The peak resident memory of `pid` since start or the last reset, in MB (`VmHWM`).
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
