//! The one engine under every flow change: load the flow, apply the event with its kind's
//! machine, write ahead the records the next state names (pairing keys), commit the next
//! state with one compare-and-set that wakes the waiters, and only then run the effects.
//! The loser of a race runs no effect: its refused commit hands back the winner's state,
//! to which it applies its event again, or it fails with the machine's error. A change
//! may start from this instance's cached version of the flow (see [`super::cache`]): the
//! commit names that version, so nothing is written on a state the change was not
//! computed from.

use std::time::Duration;

use super::machine::{self, Context, Effect, Event, Metric, Transition};
use super::{Flow, FlowKind, Status, cache};
use crate::error::AdapterError;
use crate::ids::FlowId;
use crate::store::{Attempt, LogEntry, StoreError, Transitioned, Ttl, retry_lost_races_with};
use crate::{Adapter, audit, keys};

/// A flow and the version a compare-and-set must name to replace it.
pub(crate) type Versioned = (Flow, u64);

pub(crate) fn decode(bytes: &[u8]) -> Result<Flow, AdapterError> {
    super::stored::decode(bytes).map_err(AdapterError::internal)
}

fn encode_event(event: &audit::AuditEvent) -> Result<Vec<u8>, AdapterError> {
    serde_json::to_vec(event).map_err(AdapterError::internal)
}

pub(crate) fn encode(flow: &Flow) -> Result<Vec<u8>, AdapterError> {
    serde_json::to_vec(flow).map_err(AdapterError::internal)
}

/// A record the next state names (a pairing key, a one-time device), written before the
/// state that shows it. It lives on another Redis Cluster slot than the flow, so the two
/// cannot share one atomic step; written first, it exists whenever the state names it. If
/// the flow's commit then fails, it is deleted; if even that fails, it holds a secret
/// nobody was shown and expires on its own.
pub(crate) struct WriteAhead {
    /// Its key (from `keys.rs`).
    pub(crate) key: String,
    /// Its value.
    pub(crate) value: Vec<u8>,
    /// Its time to live: every record written ahead is short-lived.
    pub(crate) ttl: Duration,
}

impl Adapter {
    /// What the machines read for a flow at `now_ms`: time and the configured limits.
    pub(crate) fn context(&self, head: &super::Head, now_ms: u64) -> Context {
        let policy = &self.config().policy;
        Context {
            now_ms,
            push_timeout_ms: policy.push_timeout_secs.saturating_mul(1000),
            max_pushes: policy.max_pushes_per_flow,
            max_otp_attempts: self.policy_for(head).otp_max_attempts,
        }
    }

    /// Any flow and its version, read from the store (and kept in this instance's cache).
    pub(crate) async fn load_any(&self, id: &FlowId) -> Result<Versioned, AdapterError> {
        let Some(record) = self.store().get(&keys::flow(id)).await? else {
            self.flow_cache().forget(id);
            return Err(AdapterError::NotFound("flow"));
        };
        let flow = decode(&record.value)?;
        self.remember(&flow, record.version, None);
        Ok((flow, record.version))
    }

    /// Keeps `flow` at `version` as this instance's latest, or forgets it once its result
    /// is picked up (nothing is left to do with it).
    fn remember(&self, flow: &Flow, version: u64, lifetime: Option<Duration>) {
        if flow.result_picked_up {
            self.flow_cache().forget(&flow.id);
        } else {
            let now = self.clock().now_ms();
            self.flow_cache().put(flow, version, now, lifetime);
        }
    }

    /// A browser-driven flow (not CIBA) and its version.
    pub(crate) async fn load_versioned(&self, id: &FlowId) -> Result<Versioned, AdapterError> {
        let (flow, version) = self.load_any(id).await?;
        if flow.kind() == FlowKind::Ciba {
            return Err(AdapterError::NotFound("flow"));
        }
        Ok((flow, version))
    }

    /// Stores a new flow from its kind's `start`, with the records its state names, and
    /// runs its effects.
    pub(crate) async fn insert_flow(
        &self,
        transition: Transition,
        ttl: Duration,
        mut ahead: Vec<WriteAhead>,
    ) -> Result<Flow, AdapterError> {
        let Transition { next, effects } = transition;
        let (pairing_keys, effects) = self.split_effects(&next, effects)?;
        ahead.extend(pairing_keys);
        self.list_pushes(&effects).await?;
        self.write_ahead(&ahead).await?;
        let event = audit::event(None, &next, "start", self.clock().now_ms());
        let committed = self
            .store()
            .commit_logged(
                &keys::flow(&next.id),
                None,
                &encode(&next)?,
                Ttl::Set(ttl),
                None,
                LogEntry {
                    key: &keys::flow_events(&next.id),
                    entry: &encode_event(&event)?,
                    ttl: ttl.saturating_add(self.audit_retention()),
                },
            )
            .await;
        if !matches!(committed, Ok(Transitioned::Written(_))) {
            self.undo_write_ahead(&ahead).await;
        }
        match committed {
            Ok(Transitioned::Written(version)) => self.remember(&next, version, Some(ttl)),
            Ok(Transitioned::Stale(_)) | Err(StoreError::Conflict) => {
                return Err(AdapterError::internal("flow id collision"));
            }
            Err(error) => return Err(error.into()),
        }
        audit::log(&event);
        self.index_for_user(&next, ttl).await;
        let kind = next.kind().as_str();
        self.metrics()
            .flows_started
            .with_label_values(&[kind])
            .inc();
        match next.status(self.clock().now_ms()) {
            Status::MfaFailed => self.count_finished(kind, "failed"),
            Status::Completed | Status::Resume => self.count_finished(kind, "skipped"),
            _ => {}
        }
        self.run_effects(&next, effects).await?;
        Ok(next)
    }

    /// Applies the event `make_event` derives from the current flow (re-derived after a
    /// lost race), commits, then runs the effects.
    pub(crate) async fn update_flow(
        &self,
        id: &FlowId,
        current: Option<Versioned>,
        mut make_event: impl FnMut(&Flow) -> Result<Event, AdapterError>,
    ) -> Result<Flow, AdapterError> {
        self.update_flow_with(id, current, |flow| Ok((make_event(flow)?, ())))
            .await
            .map(|(flow, ())| flow)
    }

    /// As [`Self::update_flow`], with an answer derived from the very version the commit
    /// replaced.
    pub(crate) async fn update_flow_with<T>(
        &self,
        id: &FlowId,
        current: Option<Versioned>,
        make_event: impl FnMut(&Flow) -> Result<(Event, T), AdapterError>,
    ) -> Result<(Flow, T), AdapterError> {
        let (key, channel) = (&keys::flow(id), &keys::flow_channel(id));
        // The caller's flow may carry a binding not written yet (an action's first request
        // binds through this commit): a version that moved on keeps it, or refuses the
        // event if another client bound the flow meanwhile.
        let binding = current
            .as_ref()
            .and_then(|(flow, _)| flow.browser_binding.clone());
        let binding = &binding;
        retry_lost_races_with(
            "the flow is changing concurrently; retry",
            (current, make_event),
            move |(current, mut make_event)| async move {
                // The caller's flow serves the first attempt (a fresh read, or this
                // instance's cached version); a lost race hands back the current record.
                let (flow, version) = match current {
                    Some(current) => current,
                    None => adopt(self.load_any(id).await?, binding)?,
                };
                let now = self.clock().now_ms();
                let applied = make_event(&flow).and_then(|(event, answer)| {
                    let name = event.name();
                    let transition = machine::apply(&flow, event, &self.context(&flow, now))?;
                    Ok((transition, answer, name))
                });
                let (Transition { next, effects }, answer, event_name) = match applied {
                    Ok(applied) => applied,
                    // Refused by a cached version: a newer one may allow it.
                    Err(error) => {
                        return match self.confirm(id, version, binding).await? {
                            None => Err(error),
                            Some(newer) => Ok(Attempt::Lost((Some(newer), make_event))),
                        };
                    }
                };
                // Nothing changed (a token poll on a denied request): nothing to write,
                // once the version it was decided on is known to be the latest.
                if next == flow && effects.is_empty() {
                    return match self.confirm(id, version, binding).await? {
                        None => Ok(Attempt::Done((next, answer))),
                        Some(newer) => Ok(Attempt::Lost((Some(newer), make_event))),
                    };
                }
                let (ahead, effects) = self.split_effects(&next, effects)?;
                self.list_pushes(&effects).await?;
                self.write_ahead(&ahead).await?;
                let event = audit::event(Some(&flow), &next, event_name, now);
                let committed = self
                    .store()
                    .commit_logged(
                        key,
                        Some(version),
                        &encode(&next)?,
                        Ttl::Keep,
                        Some(channel),
                        LogEntry {
                            key: &keys::flow_events(id),
                            entry: &encode_event(&event)?,
                            // The list exists since the flow's start, with its expiry:
                            // this only matters for a flow older than the trail.
                            ttl: self.audit_retention(),
                        },
                    )
                    .await;
                if !matches!(committed, Ok(Transitioned::Written(_))) {
                    self.undo_write_ahead(&ahead).await;
                }
                match committed {
                    Ok(Transitioned::Written(written)) => {
                        cache::confirmed();
                        self.remember(&next, written, None);
                        audit::log(&event);
                        // A QR sign-on learns its user from the device's choice.
                        if flow.user_id != next.user_id {
                            let lifetime = Duration::from_secs(self.config().policy.flow_ttl_secs);
                            self.index_for_user(&next, lifetime).await;
                        }
                        self.count_outcome(&flow, &next, now);
                        self.run_effects(&next, effects).await?;
                        Ok(Attempt::Done((next, answer)))
                    }
                    // Lost to a newer version, handed back in the same reply: the event is
                    // applied again to it, without another read.
                    Ok(Transitioned::Stale(record)) => {
                        let newer = decode(&record.value)?;
                        self.remember(&newer, record.version, None);
                        let newer = adopt((newer, record.version), binding)?;
                        Ok(Attempt::Lost((Some(newer), make_event)))
                    }
                    Err(StoreError::NotFound) => {
                        cache::confirmed();
                        self.flow_cache().forget(id);
                        Err(AdapterError::NotFound("flow"))
                    }
                    Err(error) => Err(error.into()),
                }
            },
        )
        .await
    }

    /// For a decision made on `version` of a cached flow the store has not confirmed: the
    /// latest version when it is newer (`None` when `version` is the latest). A flow that
    /// came from the store needs no read.
    async fn confirm(
        &self,
        id: &FlowId,
        version: u64,
        binding: &Option<String>,
    ) -> Result<Option<Versioned>, AdapterError> {
        if !cache::unconfirmed() {
            return Ok(None);
        }
        let fresh = self.load_any(id).await?;
        if fresh.1 == version {
            cache::confirmed();
            return Ok(None);
        }
        adopt(fresh, binding).map(Some)
    }

    /// Writes that the machine's state promises the engine keeps: the binding of a flow to
    /// its browser (the one write a `GET` makes; it never changes the state).
    pub(crate) async fn commit_head(&self, flow: &Flow, version: u64) -> Result<(), AdapterError> {
        match self
            .store()
            .commit(
                &keys::flow(&flow.id),
                Some(version),
                &encode(flow)?,
                Ttl::Keep,
                None,
            )
            .await
        {
            Ok(written) => {
                self.remember(flow, written, None);
                Ok(())
            }
            Err(StoreError::NotFound) => Err(AdapterError::NotFound("flow")),
            Err(error) => Err(error.into()),
        }
    }

    /// Writes the records a state names before the state itself; `Conflict` only on a
    /// collision of random keys.
    async fn write_ahead(&self, ahead: &[WriteAhead]) -> Result<(), AdapterError> {
        for (written, record) in ahead.iter().enumerate() {
            let inserted = self
                .store()
                .insert(&record.key, &record.value, Ttl::Set(record.ttl))
                .await;
            if !matches!(inserted, Ok(true)) {
                self.undo_write_ahead(&ahead[..written]).await;
                return match inserted {
                    Err(error) => Err(error.into()),
                    _ => Err(AdapterError::internal("random record key collision")),
                };
            }
        }
        Ok(())
    }

    /// Deletes records written ahead of a state that was not committed. Best effort: what
    /// is left expires with its TTL and names a secret nobody was shown.
    async fn undo_write_ahead(&self, ahead: &[WriteAhead]) {
        for record in ahead {
            if let Err(error) = self.store().delete(&record.key).await {
                tracing::debug!(%error, "a record written ahead is left to expire");
            }
        }
    }

    /// Separates what must be written ahead of the transition (pairing keys) from what
    /// runs after it.
    fn split_effects(
        &self,
        flow: &Flow,
        effects: Vec<Effect>,
    ) -> Result<(Vec<WriteAhead>, Vec<Effect>), AdapterError> {
        let mut ahead = Vec::new();
        let mut after = Vec::new();
        for effect in effects {
            match effect {
                Effect::IssuePairingKey(offer) => {
                    let ttl_ms = offer
                        .expires_at_ms
                        .saturating_sub(self.clock().now_ms())
                        .max(1000);
                    let (key, value) = crate::pairing::grant_record(
                        &offer.pairing_key,
                        &flow.user_id,
                        Some(&flow.id),
                    )?;
                    ahead.push(WriteAhead {
                        key,
                        value,
                        ttl: Duration::from_millis(ttl_ms),
                    });
                }
                other => after.push(other),
            }
        }
        Ok((ahead, after))
    }

    /// Lists each push a transition sends on its device's pending list, before the commit
    /// (another slot than the flow's, so not in its script): see [`Adapter::list_push`].
    async fn list_pushes(&self, effects: &[Effect]) -> Result<(), AdapterError> {
        for effect in effects {
            if let Effect::SendPush { device, auth_id } = effect {
                self.list_push(device, auth_id).await?;
            }
        }
        Ok(())
    }

    /// Runs what a stored transition asked for. Deliveries are bounded in time and their
    /// failures counted; a failure to run an effect never undoes the transition.
    async fn run_effects(&self, flow: &Flow, effects: Vec<Effect>) -> Result<(), AdapterError> {
        for effect in effects {
            match effect {
                Effect::SendPush { device, auth_id } => {
                    self.send_push(flow, &device, &auth_id);
                }
                Effect::SendCode(message) => {
                    let _ = self.delivery().deliver(&message).await;
                }
                Effect::IssuePairingKey(_) => {}
                Effect::WithdrawPairingKey(key) => {
                    crate::pairing::withdraw(self.store(), &key).await?;
                }
                Effect::EnrolDevice(device) if device.webauthn.is_some() => {
                    crate::webauthn_credential::enrol(self.store(), &flow.user_id, device).await?;
                }
                Effect::EnrolDevice(device) => {
                    let device =
                        crate::otp_device::add(self.store(), &flow.user_id, device).await?;
                    crate::device::claim_primary(self.store(), &flow.user_id, &device.id).await?;
                }
                Effect::ClearPending { device, auth_id } => {
                    self.store()
                        .index_remove(&keys::device_pending(&device), auth_id.as_str())
                        .await?;
                }
                Effect::RememberMfa => {
                    // The sign-in is done whatever happens here: a failure to remember it
                    // only costs a later skip.
                    if let Err(error) = self.remember_mfa(flow).await {
                        tracing::warn!(%error, "could not record the completed MFA");
                    }
                }
                Effect::Notify => {
                    if let Some(hook) = self.decision_hook() {
                        hook.decided(flow);
                    }
                }
                Effect::Record(Metric::Decided(decision)) => {
                    let elapsed =
                        self.clock().now_ms().saturating_sub(flow.created_at_ms) as f64 / 1000.0;
                    self.metrics()
                        .decision_seconds
                        .with_label_values(&[flow.kind().as_str(), decision.as_str()])
                        .observe(elapsed);
                }
            }
        }
        Ok(())
    }

    fn count_outcome(&self, before: &Flow, after: &Flow, now: u64) {
        let (was, is) = (before.status(now), after.status(now));
        if was == is {
            return;
        }
        let outcome = match is {
            // Let through by policy (a trusted network, a recent MFA) when it was entered.
            Status::Completed | Status::Resume if after.completed_approval().is_none() => "skipped",
            Status::Completed | Status::Resume => "completed",
            Status::PushConfirmationRejected => "rejected",
            Status::MfaFailed => "failed",
            // Canceling after a denial or a failure was counted when it happened.
            Status::Failed
                if matches!(was, Status::PushConfirmationRejected | Status::MfaFailed) =>
            {
                return;
            }
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            _ => return,
        };
        self.count_finished(after.kind().as_str(), outcome);
    }

    fn count_finished(&self, kind: &str, outcome: &str) {
        self.metrics()
            .flows_finished
            .with_label_values(&[kind, outcome])
            .inc();
    }
}

/// A newer version of a flow the store handed back, to apply the event to again: it keeps
/// the binding the caller's version carried, and confirms the operation (see
/// [`cache::confirmed`]).
///
/// Refused if another client bound the flow meanwhile. That refusal is left unconfirmed
/// when the caller's version came from this instance's cache: the binding it carries was
/// then minted for a flow the cache showed unbound, and the client may well hold the
/// binding written since, which only a fresh read checks against what it presented.
fn adopt(fresh: Versioned, binding: &Option<String>) -> Result<Versioned, AdapterError> {
    let newer = keep_binding(fresh, binding)?;
    cache::confirmed();
    Ok(newer)
}

/// A newer version of a flow, carrying the binding the caller's version did (an action's
/// first request binds through its commit); refused if another client bound the flow
/// meanwhile.
fn keep_binding(
    (mut flow, version): Versioned,
    binding: &Option<String>,
) -> Result<Versioned, AdapterError> {
    match (&flow.browser_binding, binding) {
        (None, Some(ours)) => flow.browser_binding = Some(ours.clone()),
        (Some(theirs), Some(ours)) if theirs != ours => {
            return Err(AdapterError::Forbidden(
                "this flow is bound to another client: present its X-PF-Authn-API-State",
            ));
        }
        _ => {}
    }
    Ok((flow, version))
}
