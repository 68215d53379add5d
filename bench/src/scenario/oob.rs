//! `oob`: complete out-of-band flows — start, the browser opens the flow, push, the phone
//! approves, the browser's poll sees `MFA_COMPLETED`, continue, the federation server
//! picks the result up.

use assent_proto::adapter::FlowKind;
use assent_proto::authn::StatusName;

use crate::BenchError;
use crate::crypto::CryptoCosts;
use crate::scenario::{Setting, approve_on_phone, run_flows, users_with_phones};
use crate::stats::Table;

/// Runs the scenario and returns its table.
pub async fn run(setting: &Setting<'_>, crypto: &CryptoCosts) -> Result<Table, BenchError> {
    let workers = users_with_phones(&setting.caller, "oob", setting.concurrency).await?;
    let figures = run_flows(setting, workers, |caller, worker| async move {
        let (user, phone) = &*worker;
        let mut flow = caller.start_flow(user, FlowKind::Oob).await?;
        caller.open_until_push(&mut flow).await?;
        approve_on_phone(phone, &flow.id).await?;
        let polled = caller.act(&flow, "poll", Some(10)).await?;
        if polled.status.name() != StatusName::MfaCompleted {
            return Err(BenchError::Unexpected(format!(
                "poll saw {:?}",
                polled.status.name()
            )));
        }
        let done = caller.act(&flow, "continueAuthentication", None).await?;
        if !matches!(
            done.status.name(),
            StatusName::Completed | StatusName::Resume
        ) {
            return Err(BenchError::Unexpected(format!(
                "continue gave {:?}",
                done.status.name()
            )));
        }
        caller.pick_up(&flow).await
    })
    .await?;

    // The phone's JWT on its pending list and on its answer, and the answer's proof.
    let floor = crypto.es256_verify * 3;
    let floor_ms = floor.as_secs_f64() * 1000.0;
    let mut table = Table::new("oob: out-of-band flows, start to result pickup");
    let cpu = figures.cpu_ms_per_flow;
    figures.add_to(&mut table);
    table.row("crypto floor per flow (3 ES256 verify)", floor_ms, "ms");
    table.ratio(
        "CPU per flow / crypto floor",
        cpu / floor_ms,
        format!("floor {floor_ms:.2} ms, measured in this run"),
    );
    Ok(table)
}
