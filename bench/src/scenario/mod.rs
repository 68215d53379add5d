//! The scenarios, and the driver the flow scenarios share: workers that each own a user
//! and a phone run complete flows back to back for a bounded time.

pub mod ciba;
pub mod longpoll;
pub mod oob;
pub mod poll;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assent_device_sdk::Device;
use futures_util::future::try_join_all;

use crate::BenchError;
use crate::clients::Caller;
use crate::processes::{Assent, Monitor, Redis};
use crate::stats::{Latencies, Table};

/// What a scenario runs against, and for how long.
pub struct Setting<'a> {
    /// The store.
    pub redis: &'a Redis,
    /// The server.
    pub assent: &'a Assent,
    /// A caller of that server.
    pub caller: Caller,
    /// How long the timed part runs.
    pub duration: Duration,
    /// Concurrent connections or workers.
    pub concurrency: usize,
}

/// `count` users, each with one paired phone, named `<prefix>-<n>`.
pub async fn users_with_phones(
    caller: &Caller,
    prefix: &str,
    count: usize,
) -> Result<Vec<(String, Device)>, BenchError> {
    let mut users = Vec::with_capacity(count);
    // A few at a time: pairing is not what is measured.
    for chunk in (0..count).collect::<Vec<_>>().chunks(16) {
        let paired = try_join_all(chunk.iter().map(|n| {
            let user = format!("{prefix}-{n}");
            async move {
                let device = caller.user_with_phone(&user).await?;
                Ok::<_, BenchError>((user, device))
            }
        }))
        .await?;
        users.extend(paired);
    }
    Ok(users)
}

/// Figures of complete flows: how many per second, their latency, assent's CPU per flow,
/// and what each costs Redis.
pub struct FlowFigures {
    /// Completed flows per second in the timed part.
    pub per_second: f64,
    /// End-to-end latency of each flow.
    pub latencies: Latencies,
    /// assent's CPU (user + system) per completed flow.
    pub cpu_ms_per_flow: f64,
    /// Commands assent sent to Redis per flow (a script is one).
    pub round_trips: f64,
    /// Commands Redis executed per flow, scripts' inner commands included.
    pub commands: f64,
}

impl FlowFigures {
    /// Adds the figures to `table`.
    pub fn add_to(mut self, table: &mut Table) {
        table.row("completed flows", self.latencies.len() as f64, "");
        table.row("flows per second", self.per_second, "/s");
        table.row("p50 latency", self.latencies.quantile_ms(0.5), "ms");
        table.row("p99 latency", self.latencies.quantile_ms(0.99), "ms");
        table.row("assent CPU per flow", self.cpu_ms_per_flow, "ms");
        table.row("Redis round trips per flow", self.round_trips, "");
        table.row("Redis commands per flow", self.commands, "");
    }
}

/// Runs `flow` for each worker (a user and their phone) back to back: first a few
/// sequentially with Redis watched (round trips and commands), then all workers for the
/// setting's duration (rate, latency, CPU).
pub async fn run_flows<F, Fut>(
    setting: &Setting<'_>,
    workers: Vec<(String, Device)>,
    flow: F,
) -> Result<FlowFigures, BenchError>
where
    F: Fn(Caller, Arc<(String, Device)>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), BenchError>> + Send,
{
    let workers: Vec<Arc<(String, Device)>> = workers.into_iter().map(Arc::new).collect();
    let first = workers
        .first()
        .cloned()
        .ok_or_else(|| BenchError::Setup("no workers".to_owned()))?;

    // Accounting: one worker, a few flows, nothing else talking to Redis.
    const WATCHED: u32 = 10;
    let commands_before = setting.redis.commands_executed()?;
    let monitor = Monitor::start(setting.redis)?;
    for _ in 0..WATCHED {
        flow(setting.caller.clone(), Arc::clone(&first)).await?;
    }
    let round_trips = monitor.stop()? as f64 / f64::from(WATCHED);
    let commands =
        (setting.redis.commands_executed()? - commands_before) as f64 / f64::from(WATCHED);

    // Timed: every worker, back to back.
    let cpu_before = setting.assent.cpu()?;
    let started = Instant::now();
    let deadline = started + setting.duration;
    let tasks = workers.into_iter().map(|worker| {
        let flow = flow.clone();
        let caller = setting.caller.clone();
        tokio::spawn(async move {
            let mut latencies = Latencies::default();
            while Instant::now() < deadline {
                let began = Instant::now();
                flow(caller.clone(), Arc::clone(&worker)).await?;
                latencies.push(began.elapsed());
            }
            Ok::<_, BenchError>(latencies)
        })
    });
    let mut latencies = Latencies::default();
    for done in try_join_all(tasks).await? {
        latencies.extend(done?);
    }
    let elapsed = started.elapsed();
    let cpu = setting.assent.cpu()? - cpu_before;
    let flows = latencies.len().max(1) as f64;
    Ok(FlowFigures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies,
        cpu_ms_per_flow: cpu.as_secs_f64() * 1000.0 / flows,
        round_trips,
        commands,
    })
}

/// Waits (long polling the Device API) for the phone's request of `flow_id` and answers
/// it with an approval.
pub async fn approve_on_phone(phone: &Device, flow_id: &str) -> Result<(), BenchError> {
    let prefix = format!("{flow_id}.");
    for _ in 0..20 {
        let pending = phone.pending(5).await?;
        if let Some(request) = pending.iter().find(|r| r.auth_id.starts_with(&prefix)) {
            phone.approve(request).await?;
            return Ok(());
        }
    }
    Err(BenchError::Unexpected(format!(
        "no request of {flow_id} reached the phone"
    )))
}
