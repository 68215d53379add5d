//! `longpoll`: many browsers long polling flows that wait for a push, all released by
//! approvals: what an open poll costs in memory, and how soon an approval reaches its
//! browser.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assent_proto::adapter::FlowKind;
use assent_proto::authn::StatusName;
use futures_util::future::try_join_all;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::BenchError;
use crate::clients::BrowserFlow;
use crate::scenario::{Setting, users_with_phones};
use crate::stats::{Latencies, Table};

/// Flows per phone (a phone lists its pending requests in one answer).
const FLOWS_PER_PHONE: usize = 100;

/// The pace of the approvals that release the polls.
const APPROVALS_PER_SECOND: u32 = 1000;

/// Runs the scenario with `polls` open long polls and returns its table.
pub async fn run(setting: &Setting<'_>, polls: usize) -> Result<Table, BenchError> {
    let caller = &setting.caller;
    let phones = polls.div_ceil(FLOWS_PER_PHONE);
    let users = users_with_phones(caller, "long", phones).await?;
    let owners: Vec<&str> = (0..polls).map(|n| users[n % phones].0.as_str()).collect();
    let flows: Vec<BrowserFlow> = stream::iter(owners)
        .map(|user| async move {
            let mut flow = caller.start_flow(user, FlowKind::Oob).await?;
            caller.open_until_push(&mut flow).await?;
            Ok::<_, BenchError>(flow)
        })
        .buffer_unordered(setting.concurrency)
        .try_collect()
        .await?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = setting.assent.rss_kib()?;
    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let open = flows.into_iter().map(|flow| {
        let caller = caller.clone();
        let answered = Arc::clone(&answered);
        tokio::spawn(async move {
            let state = caller.act(&flow, "poll", Some(120)).await?;
            let at = Instant::now();
            if state.status.name() != StatusName::MfaCompleted {
                return Err(BenchError::Unexpected(format!(
                    "a poll ended at {:?}",
                    state.status.name()
                )));
            }
            if let Ok(mut answered) = answered.lock() {
                answered.insert(flow.id, at);
            }
            Ok(())
        })
    });
    let open: Vec<_> = open.collect();
    // Every request sent and parked: the server holds them all now.
    tokio::time::sleep(Duration::from_secs(2) + Duration::from_millis(polls as u64 / 5)).await;
    let rss_open = setting.assent.rss_kib()?;

    // Release: first every phone lists what it was asked (not timed), then the approvals
    // go out at a steady rate, each at its own time whether or not the ones before it
    // were answered (an open loop while assent keeps up). A burst at full speed would measure how long the
    // approvals queue behind one another on two cores, not how soon one reaches its poll.
    let pending: Vec<Vec<_>> = stream::iter(users.iter())
        .map(|(_, phone)| async move { phone.pending(0).await })
        .buffered(setting.concurrency)
        .try_collect()
        .await?;
    let mut requests: Vec<_> = Vec::with_capacity(polls);
    let longest = pending.iter().map(Vec::len).max().unwrap_or(0);
    // Round robin over the phones, as users answering independently would.
    for round in 0..longest {
        for (phone, asked) in users.iter().map(|(_, phone)| phone).zip(&pending) {
            if let Some(request) = asked.get(round) {
                requests.push((phone, request));
            }
        }
    }
    let interval = Duration::from_secs(1) / APPROVALS_PER_SECOND;
    let release = tokio::time::Instant::now();
    let approved: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    stream::iter(requests.into_iter().enumerate())
        .map(|(n, (phone, request))| {
            let approved = Arc::clone(&approved);
            async move {
                let slot = u32::try_from(n).unwrap_or(u32::MAX);
                tokio::time::sleep_until(release + interval * slot).await;
                let sent = Instant::now();
                phone.approve(request).await?;
                let flow = request
                    .auth_id
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if let Ok(mut approved) = approved.lock() {
                    approved.insert(flow, sent);
                }
                Ok::<_, BenchError>(())
            }
        })
        // Up to `concurrency` in flight: if assent falls behind the pace, the approvals wait
        // on this side instead of opening ever more connections.
        .buffer_unordered(setting.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let released_in = release.elapsed();
    for done in try_join_all(open).await? {
        done?;
    }

    let mut latencies = Latencies::default();
    let approved = approved
        .lock()
        .map_err(|_| BenchError::Unexpected("poisoned".to_owned()))?;
    let answered = answered
        .lock()
        .map_err(|_| BenchError::Unexpected("poisoned".to_owned()))?;
    for (flow, sent) in approved.iter() {
        if let Some(at) = answered.get(flow) {
            latencies.push(at.saturating_duration_since(*sent));
        }
    }
    let per_poll = (rss_open.saturating_sub(rss_before)) as f64 / polls as f64;
    let mut table = Table::new(&format!(
        "longpoll: {polls} open long polls, released by approvals"
    ));
    table.row("open long polls", polls as f64, "");
    table.row(
        "resident memory before opening",
        rss_before as f64 / 1024.0,
        "MiB",
    );
    table.row(
        "resident memory with all open",
        rss_open as f64 / 1024.0,
        "MiB",
    );
    table.row("resident memory per open poll", per_poll, "KiB");
    table.row("answers received", latencies.len() as f64, "");
    table.row(
        "approvals sent per second (open loop)",
        polls as f64 / released_in.as_secs_f64().max(f64::EPSILON),
        "/s",
    );
    table.row("approval → answer p50", latencies.quantile_ms(0.5), "ms");
    table.row("approval → answer p99", latencies.quantile_ms(0.99), "ms");
    Ok(table)
}
