//! `poll`: the browser's GETs of flows waiting for a push, against what the same Redis
//! serves to `redis-benchmark` in the same run.

use std::time::Instant;

use assent_proto::adapter::FlowKind;
use futures_util::future::try_join_all;

use crate::BenchError;
use crate::scenario::{Setting, users_with_phones};
use crate::stats::{Latencies, Table};

/// Runs the scenario and returns its table.
pub async fn run(setting: &Setting<'_>) -> Result<Table, BenchError> {
    let users = users_with_phones(&setting.caller, "poll", setting.concurrency).await?;
    let mut flows = Vec::with_capacity(users.len());
    for (user, _phone) in &users {
        let mut flow = setting.caller.start_flow(user, FlowKind::Oob).await?;
        setting.caller.open_until_push(&mut flow).await?;
        flows.push(flow);
    }

    let cpu_before = setting.assent.cpu()?;
    let started = Instant::now();
    let deadline = started + setting.duration;
    let tasks = flows.into_iter().map(|mut flow| {
        let caller = setting.caller.clone();
        tokio::spawn(async move {
            let mut latencies = Latencies::default();
            while Instant::now() < deadline {
                let began = Instant::now();
                caller.state(&mut flow).await?;
                latencies.push(began.elapsed());
            }
            Ok::<_, BenchError>(latencies)
        })
    });
    let mut latencies = Latencies::default();
    for done in try_join_all(tasks).await? {
        latencies.extend(done?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = setting.assent.cpu()? - cpu_before;
    let gets = latencies.len() as f64;
    let per_second = gets / elapsed;

    let clients = u32::try_from(setting.concurrency).unwrap_or(64);
    let requests = u32::try_from((per_second * 4.0) as u64)
        .unwrap_or(200_000)
        .clamp(20_000, 400_000);
    let redis_per_second = setting.redis.benchmark_get(clients, requests)?;

    let mut table = Table::new(&format!(
        "poll: GETs of waiting flows, {} connections",
        setting.concurrency
    ));
    table.row("GETs", gets, "");
    table.row("GETs per second", per_second, "/s");
    table.row("p50 latency", latencies.quantile_ms(0.5), "ms");
    table.row("p99 latency", latencies.quantile_ms(0.99), "ms");
    table.row(
        "assent CPU per GET",
        cpu.as_secs_f64() * 1e6 / gets.max(1.0),
        "µs",
    );
    table.row("redis-benchmark GETs per second", redis_per_second, "/s");
    table.ratio(
        "assent GETs/s / redis-benchmark GETs/s",
        per_second / redis_per_second,
        format!("redis-benchmark -t get -c {clients}, same run"),
    );
    Ok(table)
}
