//! Between the wire types of `assent-proto` and the domain's values: ids and kinds are
//! checked here, at the edge.

use assent_core::audit::{Actor, AuditEvent, Origin, Page, UserFlow};
use assent_core::device_management::{DeviceView, PasscodeDeviceView};
use assent_core::flow::{
    Application, DeviceRequest, FinalizePasswordless, FlowKind, Method, OneTimeDevice, StartFlow,
};
use assent_core::user::{Change, ProfileUpdate, UserId, UserProfile};
use assent_proto::adapter::{self as wire, FinalizePasswordlessRequest, StartFlowRequest};
use assent_proto::admin::{AdminUser, FlowEvents, PasscodeDevice, UserEvents, UserFlowEvents};
use assent_proto::authn::Method as WireMethod;
use assent_proto::device::{PairedDevice, PendingRequest};
use serde::Deserialize;
use serde::de::value::{Error as ValueError, StringDeserializer};

/// The flow a federation server asked for; the error says what is wrong with its user id.
pub(crate) fn start_flow(request: StartFlowRequest) -> Result<StartFlow, String> {
    let user = match request.user {
        None => None,
        Some(user) => Some(ProfileUpdate {
            id: user_id(user.id)?,
            username: user.username,
            first_name: Change::from_input(user.first_name),
            last_name: Change::from_input(user.last_name),
            email: Change::from_input(user.email),
            phone: Change::from_input(user.phone),
            voice: Change::from_input(user.voice_number),
            language: Change::from_input(user.language),
            groups: user.groups,
            attributes: user.attributes,
        }),
    };
    let client_ip = client_ip(request.client_ip)?;
    Ok(StartFlow {
        kind: flow_kind(request.kind),
        user,
        application: application(request.application),
        client_ip,
        client_device: request.client_device,
        dynamic_params: request.dynamic_params,
        template_id: request.template_id,
        return_url: request.return_url,
        one_time_device: request.one_time_device.map(|device| OneTimeDevice {
            public_jwk: device.public_jwk,
            name: device.name,
            os: device.os,
            os_version: device.os_version,
            model: device.model,
        }),
    })
}

/// A finalize of a passwordless sign-in; the error says what is wrong with the address.
pub(crate) fn finalize_passwordless(
    request: FinalizePasswordlessRequest,
) -> Result<FinalizePasswordless, String> {
    Ok(FinalizePasswordless {
        sub: request.sub,
        context: request.passwordless_context,
        application: application(request.application),
        client_ip: client_ip(request.client_ip)?,
        groups: request.groups,
    })
}

/// The browser's address, when given.
fn client_ip(raw: Option<String>) -> Result<Option<std::net::IpAddr>, String> {
    raw.map(|ip| {
        ip.parse()
            .map_err(|_| "clientIp is not an IPv4 or IPv6 address".to_owned())
    })
    .transpose()
}

/// A user id by the rules it is read from JSON with.
fn user_id(raw: String) -> Result<UserId, String> {
    UserId::deserialize(StringDeserializer::<ValueError>::new(raw))
        .map_err(|error| error.to_string())
}

fn flow_kind(kind: wire::FlowKind) -> FlowKind {
    match kind {
        wire::FlowKind::Oob => FlowKind::Oob,
        wire::FlowKind::Transaction => FlowKind::Transaction,
        wire::FlowKind::Ciba => FlowKind::Ciba,
        wire::FlowKind::Registration => FlowKind::Registration,
        wire::FlowKind::DeviceAuthorization => FlowKind::DeviceAuthorization,
        wire::FlowKind::Qr => FlowKind::Qr,
        wire::FlowKind::NewDevice => FlowKind::NewDevice,
        wire::FlowKind::Passwordless => FlowKind::Passwordless,
    }
}

fn application(application: wire::Application) -> Application {
    Application {
        name: application.name,
        id: application.id,
        icon_url: application.icon_url,
    }
}

/// A request waiting for a device, as the Device API shows it.
pub(crate) fn pending_request(request: DeviceRequest) -> PendingRequest {
    PendingRequest {
        auth_id: request.auth_id.to_string(),
        kind: request.kind,
        user_id: request.user_id.to_string(),
        title: request.title,
        body: request.body,
        application: wire::Application {
            name: request.application.name,
            id: request.application.id,
            icon_url: request.application.icon_url,
        },
        client_ip: request.client_ip,
        dynamic_params: request.dynamic_params.as_map().clone(),
        expires_at: request.expires_at,
        silent: request.silent,
        number_choices: request.number_choices,
        admin_message: request.admin_message,
    }
}

/// A paired device, as its user and the operator see it.
pub(crate) fn paired_device(device: DeviceView) -> PairedDevice {
    PairedDevice {
        id: device.id,
        name: device.name,
        nickname: device.nickname,
        os: device.os,
        os_version: device.os_version,
        model: device.model,
        paired_at: device.paired_at,
        primary: device.primary,
    }
}

/// A passcode device, as the operator sees it.
pub(crate) fn passcode_device(device: PasscodeDeviceView) -> PasscodeDevice {
    PasscodeDevice {
        id: device.id,
        method: match device.method {
            Method::PingidMobile => WireMethod::PingidMobile,
            Method::Sms => WireMethod::Sms,
            Method::Voice => WireMethod::Voice,
            Method::Email => WireMethod::Email,
            Method::Totp => WireMethod::Totp,
            Method::SecurityKey => WireMethod::SecurityKey,
            Method::Platform => WireMethod::Platform,
            Method::Yubikey => WireMethod::Yubikey,
            Method::OathToken => WireMethod::OathToken,
        },
        target: device.target,
        paired_at: device.paired_at,
        disabled: device.disabled,
    }
}

/// A profile for the operator: everything but the user code's hash.
pub(crate) fn admin_user(profile: UserProfile) -> AdminUser {
    AdminUser {
        id: profile.id.to_string(),
        username: profile.username,
        first_name: profile.first_name,
        last_name: profile.last_name,
        email: profile.email,
        phone: profile.phone,
        voice: profile.voice,
        language: profile.language,
        groups: profile.groups,
        attributes: profile.attributes,
        has_user_code: profile.user_code_hash.is_some(),
    }
}

/// Who is behind `request`: `actor`, from the connection's peer address (never a
/// forwarding header a client could forge) with its `User-Agent`.
pub(crate) fn origin(request: &actix_web::HttpRequest, actor: Actor) -> Origin {
    Origin {
        actor,
        ip: request.peer_addr().map(|address| address.ip()),
        user_agent: request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    }
}

/// A page of a flow's audit trail.
pub(crate) fn flow_events(page: Page<AuditEvent>) -> FlowEvents {
    FlowEvents {
        events: page.items,
        next_before: page.next_before,
    }
}

/// A page of a user's audit trail.
pub(crate) fn user_events(page: Page<UserFlow>) -> UserEvents {
    UserEvents {
        flows: page
            .items
            .into_iter()
            .map(|flow| UserFlowEvents {
                flow_id: flow.flow_id,
                at_ms: flow.at_ms,
                events: flow.events,
            })
            .collect(),
        next_before: page.next_before,
    }
}
