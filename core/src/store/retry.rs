//! The one compare-and-set retry loop: read, decide, write conditionally, and start over
//! when a concurrent writer moved the record on.

use std::future::Future;

use crate::error::AdapterError;

/// How many times a change is tried before the caller is told to retry.
pub const CAS_ATTEMPTS: usize = 4;

/// What one attempt at a conditional change came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt<T, S = ()> {
    /// Written (or nothing to write): the answer.
    Done(T),
    /// A concurrent write won: read again and retry, with the state handed back.
    Lost(S),
}

/// Runs `attempt` until it is done, at most [`CAS_ATTEMPTS`] times; past that the caller
/// gets a [`AdapterError::Conflict`] saying `contended` (e.g. "the flow is changing
/// concurrently; retry").
pub async fn retry_lost_races<T, Fut>(
    contended: &str,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, AdapterError>
where
    Fut: Future<Output = Result<Attempt<T>, AdapterError>>,
{
    retry_lost_races_with(contended, (), |()| attempt()).await
}

/// As [`retry_lost_races`], handing `state` from one attempt to the next (a lost attempt
/// gives it back), for changes that carry more than shared references across attempts.
// Plain closures returning futures rather than async closures: the futures of async
// closures cannot yet be proven `Send`, and flows change inside spawned tasks.
pub async fn retry_lost_races_with<S, T, Fut>(
    contended: &str,
    state: S,
    mut attempt: impl FnMut(S) -> Fut,
) -> Result<T, AdapterError>
where
    Fut: Future<Output = Result<Attempt<T, S>, AdapterError>>,
{
    let mut state = state;
    for _ in 0..CAS_ATTEMPTS {
        match attempt(state).await? {
            Attempt::Done(answer) => return Ok(answer),
            Attempt::Lost(handed_back) => state = handed_back,
        }
    }
    Err(AdapterError::Conflict(contended.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_lost_race_is_retried_then_given_up() {
        let tries = AtomicUsize::new(0);
        let won = retry_lost_races("busy", || async {
            let tried = tries.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(if tried < 3 {
                Attempt::Lost(())
            } else {
                Attempt::Done(tried)
            })
        })
        .await;
        assert_eq!(won.ok(), Some(3));

        let tries = AtomicUsize::new(0);
        let lost: Result<(), _> = retry_lost_races("busy", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Ok(Attempt::Lost(()))
        })
        .await;
        assert!(matches!(lost, Err(AdapterError::Conflict(reason)) if reason == "busy"));
        assert_eq!(tries.load(Ordering::SeqCst), CAS_ATTEMPTS);
    }

    #[tokio::test]
    async fn the_state_goes_from_one_attempt_to_the_next() {
        let seen = retry_lost_races_with("busy", Vec::new(), |mut seen: Vec<usize>| async move {
            seen.push(seen.len());
            Ok(match seen.len() {
                3 => Attempt::Done(seen),
                _ => Attempt::Lost(seen),
            })
        })
        .await;
        assert_eq!(seen.ok(), Some(vec![0, 1, 2]));
    }

    #[tokio::test]
    async fn an_error_stops_the_loop() {
        let tries = AtomicUsize::new(0);
        let failed: Result<(), _> = retry_lost_races("busy", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(AdapterError::NotFound("record"))
        })
        .await;
        assert!(matches!(failed, Err(AdapterError::NotFound("record"))));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
