//! The per-flow audit trail: every committed change of a flow becomes an event (when, what,
//! the status before and after, who, from where), appended to a list beside the flow by
//! the very commit that makes the change, and logged as one line on the `audit` target.
//! A per-user timeline of flows lets the operator page through one person's sign-ins:
//! events are kept per flow and per user, never per browser, so two people sharing a
//! browser keep separate trails.
//!
//! Who acts comes from the HTTP layer as an [`Origin`], given for the duration of one
//! domain call ([`Adapter::acting`]): a task-local rather than a parameter, because the
//! engine's callers (every action of every kind) pass flows, not the request behind them.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

pub use assent_proto::admin::{AuditActor, AuditEvent};

use crate::error::AdapterError;
use crate::flow::Flow;
use crate::ids::{DeviceId, FlowId};
use crate::user::UserId;
use crate::{Adapter, keys};

/// Longest `User-Agent` kept: enough to tell browsers apart, bounded against hostile input.
const MAX_USER_AGENT: usize = 256;

/// Most events in one page of a flow's trail.
pub const MAX_FLOW_EVENTS: usize = 100;

/// Most flows in one page of a user's trail (each is one store read).
pub const MAX_USER_FLOWS: usize = 50;

/// Who is behind a request, as the HTTP layer saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Who acts.
    pub actor: Actor,
    /// The address the request came from.
    pub ip: Option<IpAddr>,
    /// The request's `User-Agent`.
    pub user_agent: Option<String>,
}

/// Who acts on a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The flow's federation server (the only client that may act on it).
    FederationServer,
    /// A browser or app web view.
    Browser,
    /// A paired device.
    Device(DeviceId),
    /// An app pairing itself: a device once paired (see [`as_device`]).
    NewDevice,
    /// The CIBA request's relying party (the only client that may act on it).
    RelyingParty,
    /// The operator.
    Operator,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

/// The origin of the current domain call, if its handler gave one.
fn current_origin() -> Option<Origin> {
    ORIGIN.try_with(Clone::clone).ok()
}

/// Runs `operation` as done by `device`, from where the current request came: an app
/// being paired acts on its registration flow before its request could name the device.
pub(crate) async fn as_device<F: Future>(device: &DeviceId, operation: F) -> F::Output {
    let origin = match current_origin() {
        Some(origin) => Origin {
            actor: Actor::Device(device.clone()),
            ..origin
        },
        None => Origin {
            actor: Actor::Device(device.clone()),
            ip: None,
            user_agent: None,
        },
    };
    ORIGIN.scope(origin, operation).await
}

/// A page of events or flows, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The `before` that reads the next (older) page; `None` on the last one.
    pub next_before: Option<u64>,
}

/// A flow in a user's trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFlow {
    /// The flow.
    pub flow_id: String,
    /// When it entered the user's timeline (ms since the epoch).
    pub at_ms: u64,
    /// Its events, newest first.
    pub events: Vec<AuditEvent>,
}

/// The event recording the change from `before` (none: the start) to `after`, made now
/// by the current origin.
pub(crate) fn event(before: Option<&Flow>, after: &Flow, name: &str, now_ms: u64) -> AuditEvent {
    let origin = current_origin();
    let client = Some(after.client_id.clone());
    let (actor, client_id, device_id) = match origin.as_ref().map(|origin| &origin.actor) {
        Some(Actor::FederationServer) => (AuditActor::FederationServer, client, None),
        Some(Actor::Browser) => (AuditActor::Browser, None, None),
        Some(Actor::Device(device)) => (AuditActor::Device, None, Some(device.to_string())),
        Some(Actor::NewDevice) => (AuditActor::Device, None, None),
        Some(Actor::RelyingParty) => (AuditActor::RelyingParty, client, None),
        Some(Actor::Operator) => (AuditActor::Operator, None, None),
        None => (AuditActor::Service, None, None),
    };
    AuditEvent {
        at_ms: now_ms,
        flow_id: after.id.to_string(),
        kind: after.kind().as_str().to_owned(),
        user_id: after.user_id.to_string(),
        event: name.to_owned(),
        status_before: before.map(|flow| flow.status(now_ms).as_str().to_owned()),
        status_after: after.status(now_ms).as_str().to_owned(),
        actor,
        client_id,
        ip: origin
            .as_ref()
            .and_then(|origin| origin.ip)
            .map(|ip| ip.to_string()),
        user_agent: origin.and_then(|origin| origin.user_agent).map(shorten),
        device_id,
    }
}

/// A user agent as kept: printable characters only, at most [`MAX_USER_AGENT`].
fn shorten(user_agent: String) -> String {
    user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect()
}

/// The event's line on the `audit` target: its fields, one JSON object per line when logs
/// are JSON. Events carry no secret (no code, key, token or proof), only who did what.
pub(crate) fn log(event: &AuditEvent) {
    tracing::info!(
        target: "audit",
        flow_id = %event.flow_id,
        kind = %event.kind,
        user_id = %event.user_id,
        event = %event.event,
        status_before = event.status_before.as_deref(),
        status_after = %event.status_after,
        actor = actor_name(event.actor),
        client_id = event.client_id.as_deref(),
        ip = event.ip.as_deref(),
        user_agent = event.user_agent.as_deref(),
        device_id = event.device_id.as_deref(),
        at_ms = event.at_ms,
        "flow event"
    );
}

/// A change to a user's devices outside any flow's trail (a token imported or
/// resynchronised by an operator, a device set up or removed, a credential disabled), as
/// one line on the `audit` target: who, from where, which device and method; never a
/// secret.
pub(crate) fn log_device(event: &str, user: &UserId, device: &DeviceId, method: &str) {
    let origin = current_origin();
    let actor = match origin.as_ref().map(|origin| &origin.actor) {
        Some(Actor::FederationServer) => AuditActor::FederationServer,
        Some(Actor::Browser) => AuditActor::Browser,
        Some(Actor::Device(_) | Actor::NewDevice) => AuditActor::Device,
        Some(Actor::RelyingParty) => AuditActor::RelyingParty,
        Some(Actor::Operator) => AuditActor::Operator,
        None => AuditActor::Service,
    };
    tracing::info!(
        target: "audit",
        event,
        user_id = %user,
        device_id = %device,
        method,
        actor = actor_name(actor),
        ip = origin
            .as_ref()
            .and_then(|origin| origin.ip)
            .map(|ip| ip.to_string())
            .as_deref(),
        "device event"
    );
}

fn actor_name(actor: AuditActor) -> &'static str {
    match actor {
        AuditActor::FederationServer => "federation_server",
        AuditActor::Browser => "browser",
        AuditActor::Device => "device",
        AuditActor::RelyingParty => "relying_party",
        AuditActor::Operator => "operator",
        AuditActor::Service => "service",
    }
}

/// Checks a page size: `None` takes `default`; 0 or more than `max` is refused.
fn page_size(limit: Option<usize>, default: usize, max: usize) -> Result<usize, AdapterError> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(AdapterError::Invalid(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

impl Adapter {
    /// Runs `operation` (one domain call) on behalf of `origin`: the changes it makes to
    /// flows are recorded as made by it.
    pub async fn acting<F: Future>(&self, origin: Origin, operation: F) -> F::Output {
        ORIGIN.scope(origin, operation).await
    }

    /// How long a flow's events outlive it.
    pub(crate) fn audit_retention(&self) -> Duration {
        self.config().audit.retention()
    }

    /// Puts the flow in its user's timeline, right after the commit that gave it its
    /// user (the user's keys live on another slot than the flow's, so not in that
    /// commit). Best effort: the flow's events are written already and stay readable by
    /// its id; only the user's listing would miss it.
    pub(crate) async fn index_for_user(&self, flow: &Flow, lifetime: Duration) {
        if flow.user_id.is_anonymous() {
            return;
        }
        let keep = lifetime.saturating_add(self.audit_retention());
        let now = self.clock().now_ms();
        if let Err(error) = self
            .store()
            .timeline_add(
                &keys::user_flows(&flow.user_id),
                flow.id.as_str(),
                now,
                keep,
            )
            .await
        {
            tracing::warn!(%error, flow = %flow.id, "the flow is missing from its user's trail");
        }
    }

    /// A flow's events, newest first: `limit` of them (default 50, at most
    /// [`MAX_FLOW_EVENTS`]) older than the `before`th. `NotFound` when it has none (never
    /// existed, or its trail expired).
    pub async fn flow_events(
        &self,
        id: &str,
        before: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Page<AuditEvent>, AdapterError> {
        let limit = page_size(limit, 50, MAX_FLOW_EVENTS)?;
        let id = FlowId::parse(id).ok_or(AdapterError::NotFound("flow"))?;
        let events = self.events_of(&id).await?;
        if events.is_empty() {
            return Err(AdapterError::NotFound("flow"));
        }
        let end = before.map_or(events.len(), |before| {
            usize::try_from(before).map_or(events.len(), |before| before.min(events.len()))
        });
        let start = end.saturating_sub(limit);
        Ok(Page {
            items: events[start..end].iter().rev().cloned().collect(),
            next_before: (start > 0).then_some(start as u64),
        })
    }

    /// A user's flows with their events, newest first: `limit` of them (default 10, at
    /// most [`MAX_USER_FLOWS`]) that entered the user's trail before `before` (ms).
    pub async fn user_events(
        &self,
        user: &UserId,
        before: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Page<UserFlow>, AdapterError> {
        let limit = page_size(limit, 10, MAX_USER_FLOWS)?;
        let timeline = self
            .store()
            .timeline_page(&keys::user_flows(user), before, limit)
            .await?;
        let next_before = (timeline.len() == limit)
            .then(|| timeline.last().map(|(_, at)| *at))
            .flatten();
        let mut items = Vec::with_capacity(timeline.len());
        for (flow_id, at_ms) in timeline {
            let Some(id) = FlowId::parse(&flow_id) else {
                continue;
            };
            let mut events = self.events_of(&id).await?;
            events.reverse();
            if !events.is_empty() {
                items.push(UserFlow {
                    flow_id,
                    at_ms,
                    events,
                });
            }
        }
        Ok(Page { items, next_before })
    }

    async fn events_of(&self, id: &FlowId) -> Result<Vec<AuditEvent>, AdapterError> {
        self.store()
            .log_entries(&keys::flow_events(id))
            .await?
            .iter()
            .map(|entry| serde_json::from_slice(entry).map_err(AdapterError::internal))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::oob;
    use crate::flow::tests::{ctx, head};

    #[tokio::test]
    async fn an_event_names_its_origin_and_carries_no_secret() {
        let flow = oob::start(head(&[]), oob::Start::default(), &ctx(0))
            .expect("starts")
            .next;
        let origin = Origin {
            actor: Actor::Browser,
            ip: "203.0.113.9".parse().ok(),
            user_agent: Some(format!("Firefox\n{}", "x".repeat(500))),
        };
        let event = ORIGIN
            .scope(origin, async { event(None, &flow, "start", 7) })
            .await;
        assert_eq!(event.actor, AuditActor::Browser);
        assert_eq!(event.ip.as_deref(), Some("203.0.113.9"));
        let agent = event.user_agent.clone().unwrap_or_default();
        assert!(agent.starts_with("Firefox") && !agent.contains('\n'));
        assert_eq!(agent.chars().count(), MAX_USER_AGENT);
        assert_eq!(event.status_before, None);
        // Without an origin (no request behind it), assent itself acted.
        assert_eq!(event_without_origin(&flow).actor, AuditActor::Service);
        let line = serde_json::to_string(&event).unwrap_or_default();
        for field in ["\"atMs\":7", "\"actor\":\"browser\"", "\"event\":\"start\""] {
            assert!(line.contains(field), "{line}");
        }
    }

    fn event_without_origin(flow: &Flow) -> AuditEvent {
        event(Some(flow), flow, "result pickup", 7)
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None, 10, 50).ok(), Some(10));
        assert_eq!(page_size(Some(50), 10, 50).ok(), Some(50));
        assert!(page_size(Some(0), 10, 50).is_err());
        assert!(page_size(Some(51), 10, 50).is_err());
    }
}
