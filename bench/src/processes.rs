//! The processes a run starts: a redis-server and a release build of assent, each on a
//! free port, killed when dropped; and what `/proc` says about them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;

/// A port nobody listens on now.
pub fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A throwaway redis-server: no persistence, its own port.
pub struct Redis {
    /// Its port.
    pub port: u16,
    _child: Guard,
}

impl Redis {
    /// Starts one and waits until it answers.
    pub fn start() -> Result<Self, BenchError> {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--maxclients", "20000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| BenchError::Setup(format!("redis-server: {error}")))?;
        let redis = Self {
            port,
            _child: Guard(child),
        };
        wait_until(Duration::from_secs(10), || {
            redis.cli(&["PING"]).is_ok_and(|out| out.trim() == "PONG")
        })?;
        Ok(redis)
    }

    /// Runs `redis-cli` against it and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> Result<String, BenchError> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .map_err(|error| BenchError::Setup(format!("redis-cli: {error}")))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The number of commands Redis has executed, scripts' inner calls included
    /// (`INFO commandstats`), leaving out the probe's own `INFO`.
    pub fn commands_executed(&self) -> Result<u64, BenchError> {
        let stats = self.cli(&["INFO", "commandstats"])?;
        Ok(stats
            .lines()
            .filter(|line| !line.starts_with("cmdstat_info:"))
            .filter_map(|line| line.split_once("calls=")?.1.split(',').next())
            .filter_map(|calls| calls.parse::<u64>().ok())
            .sum())
    }

    /// `redis-benchmark -t get` against it with `clients` connections: GETs per second.
    pub fn benchmark_get(&self, clients: u32, requests: u32) -> Result<f64, BenchError> {
        let output = Command::new("redis-benchmark")
            .args(["-p", &self.port.to_string(), "-t", "get", "-q"])
            .args(["-c", &clients.to_string(), "-n", &requests.to_string()])
            .output()
            .map_err(|error| BenchError::Setup(format!("redis-benchmark: {error}")))?;
        let text = String::from_utf8_lossy(&output.stdout);
        // `GET: 123456.79 requests per second, p50=0.215 msec`, after progress lines
        // separated by carriage returns.
        text.split(['\r', '\n'])
            .filter_map(|line| line.trim().strip_prefix("GET:"))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .next_back()
            .ok_or_else(|| BenchError::Setup(format!("redis-benchmark said: {text}")))
    }
}

/// `MONITOR` on a Redis: counts the commands clients send (a script is one), not the
/// commands scripts run inside. It reads the socket itself: a `redis-cli MONITOR` child
/// writing into a pipe buffers its output and loses the tail when it is killed, which
/// undercounted every flow.
pub struct Monitor {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: std::thread::JoinHandle<std::io::Result<String>>,
}

impl Monitor {
    /// Starts watching.
    pub fn start(redis: &Redis) -> Result<Self, BenchError> {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", redis.port))?;
        socket.write_all(b"MONITOR\r\n")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut reader = BufReader::new(socket);
        let mut ok = String::new();
        reader.read_line(&mut ok)?;
        if !ok.starts_with("+OK") {
            return Err(BenchError::Setup(format!("MONITOR said: {ok}")));
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let reader = std::thread::spawn(move || {
            let mut seen = String::new();
            let mut line = Vec::new();
            loop {
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) if line.ends_with(b"\n") => {
                        seen.push_str(&String::from_utf8_lossy(&line));
                        line.clear();
                    }
                    Ok(_) => {}
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if stopping.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(seen)
        });
        Ok(Self { stop, reader })
    }

    /// Stops watching and returns the number of top-level commands seen.
    pub fn stop(self) -> Result<u64, BenchError> {
        // Whatever Redis has executed by now is on the socket within a moment.
        std::thread::sleep(Duration::from_millis(200));
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let out = self
            .reader
            .join()
            .map_err(|_| BenchError::Setup("the MONITOR reader panicked".to_owned()))??;
        // BENCH_REDIS_TRACE=<file> keeps what was seen: the exact command trace of the
        // watched flows, to find which code sends what.
        if let Some(path) = std::env::var_os("BENCH_REDIS_TRACE") {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?
                .write_all(out.as_bytes())?;
        }
        Ok(out
            .lines()
            .filter(|line| line.starts_with('+') && line.contains(" [") && !line.contains(" lua]"))
            .count() as u64)
    }
}

/// A running assent, on its own port, with its store on `redis`.
pub struct Assent {
    /// Where it listens, as a base URL.
    pub url: String,
    pid: u32,
    _child: Guard,
}

impl Assent {
    /// Starts `binary` with the bench's configuration (demo clients, fast CIBA polls, no
    /// push limit) and waits until it is ready.
    pub async fn start(
        binary: &Path,
        redis: &Redis,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, BenchError> {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("assent-bench-{port}.log"));
        let child = Command::new(binary)
            .arg("serve")
            .current_dir(repo_root())
            .env("ASSENT_LISTEN", format!("127.0.0.1:{port}"))
            .env("ASSENT_PUBLIC_URL", &url)
            .env("ASSENT_STORE", format!("redis://127.0.0.1:{}", redis.port))
            .env("ASSENT_CIBA__POLL_INTERVAL_SECS", "1")
            .env("ASSENT_MFA__PUSH_LIMIT", "0")
            .env("ASSENT_POLICY__MAX_PUSHES_PER_FLOW", "100")
            .env("ASSENT_LOG", "warn")
            .envs(extra_env.iter().copied())
            .stdout(std::fs::File::create(&log)?)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| BenchError::Setup(format!("{}: {error}", binary.display())))?;
        let pid = child.id();
        let assent = Self {
            url,
            pid,
            _child: Guard(child),
        };
        let http = reqwest::Client::new();
        let ready = format!("{}/readyz", assent.url);
        let started = Instant::now();
        loop {
            if let Ok(response) = http.get(&ready).send().await
                && response.status().is_success()
            {
                return Ok(assent);
            }
            if started.elapsed() > Duration::from_secs(20) {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(BenchError::Setup(format!("assent did not start: {said}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CPU time (user + system) it has used so far.
    pub fn cpu(&self) -> Result<Duration, BenchError> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // The command name may hold spaces: fields count from after its closing paren.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| BenchError::Setup("unreadable /proc stat".to_owned()))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks =
            |index: usize| -> u64 { fields.get(index).and_then(|f| f.parse().ok()).unwrap_or(0) };
        // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
        let total = ticks(11) + ticks(12);
        Ok(Duration::from_secs_f64(total as f64 / clock_ticks() as f64))
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> Result<u64, BenchError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| BenchError::Setup("no VmRSS".to_owned()))
    }
}

/// Clock ticks per second, as `getconf CLK_TCK` says (100 on Linux when it cannot).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// The repository (assent reads `conf/` from its working directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), BenchError> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > limit {
            return Err(BenchError::Setup("a process did not come up".to_owned()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
