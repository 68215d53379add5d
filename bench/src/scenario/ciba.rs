//! `ciba`: complete poll-mode CIBA flows — backchannel request, the phone approves with
//! real signatures, token request with ID, access and refresh tokens.

use std::time::Duration;

use crate::BenchError;
use crate::crypto::CryptoCosts;
use crate::scenario::{Setting, approve_on_phone, run_flows, users_with_phones};
use crate::stats::Table;

/// Runs the scenario and returns its table.
pub async fn run(setting: &Setting<'_>, crypto: &CryptoCosts) -> Result<Table, BenchError> {
    let workers = users_with_phones(&setting.caller, "ciba", setting.concurrency).await?;
    let figures = run_flows(setting, workers, |caller, worker| async move {
        let (user, phone) = &*worker;
        let auth_req_id = caller.ciba_request(user).await?;
        approve_on_phone(phone, &auth_req_id).await?;
        // The relying party polls at the interval the acknowledgement names (1 s here).
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(tokens) = caller.ciba_token(&auth_req_id).await? {
                if tokens.refresh_token.is_none() {
                    return Err(BenchError::Unexpected("no refresh token".to_owned()));
                }
                return Ok(());
            }
        }
    })
    .await?;

    // The crypto a CIBA flow cannot avoid: the phone's JWT on its pending list and on its
    // answer, the answer's proof (three ES256 verifications), the ID token (RS256, as the
    // client registered) and the access token (ES256).
    let floor = crypto.es256_verify * 3 + crypto.rs256_sign + crypto.es256_sign;
    let floor_ms = floor.as_secs_f64() * 1000.0;
    let mut table = Table::new("ciba: poll-mode CIBA flows, the phone approving");
    let cpu = figures.cpu_ms_per_flow;
    figures.add_to(&mut table);
    table.row(
        "crypto floor per flow (3 ES256 verify, 1 RS256 + 1 ES256 sign)",
        floor_ms,
        "ms",
    );
    table.ratio(
        "CPU per flow / crypto floor",
        cpu / floor_ms,
        format!("floor {floor_ms:.2} ms, measured in this run"),
    );
    Ok(table)
}
