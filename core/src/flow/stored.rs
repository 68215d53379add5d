//! A flow record as stored, in either layout: the current one (`{"head", "state":
//! {"<kind>": ...}}`, decoded in one pass) and the earlier flat one (the head's fields and
//! `"state": {"kind": ...}` side by side), which serde could only decode by buffering the
//! whole record twice. Flows written before an upgrade still decode, so none in flight is
//! lost; every write uses the current layout.

use serde::Deserialize;

use super::{
    Flow, FlowState, Head, ciba, device_authorization, new_device, oob, qr, registration,
    transaction,
};

/// Decodes a stored flow of either layout.
pub(super) fn decode(bytes: &[u8]) -> serde_json::Result<Flow> {
    match serde_json::from_slice::<Flow>(bytes) {
        Ok(flow) => Ok(flow),
        // Not the current layout: the earlier one, or the current error if it is neither.
        Err(error) => serde_json::from_slice::<Flat>(bytes)
            .map(Flat::into_flow)
            .map_err(|_| error),
    }
}

/// The earlier layout: the head's fields at the top, the state tagged by `kind`.
#[derive(Deserialize)]
struct Flat {
    #[serde(flatten)]
    head: Head,
    state: TaggedState,
}

/// [`FlowState`] with the kind as a `kind` field beside the state's own.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum TaggedState {
    Oob(oob::State),
    Transaction(transaction::State),
    Ciba(ciba::State),
    Registration(registration::State),
    DeviceAuthorization(device_authorization::State),
    Qr(qr::State),
    NewDevice(new_device::State),
}

impl Flat {
    fn into_flow(self) -> Flow {
        let state = match self.state {
            TaggedState::Oob(state) => FlowState::Oob(state),
            TaggedState::Transaction(state) => FlowState::Transaction(state),
            TaggedState::Ciba(state) => FlowState::Ciba(state),
            TaggedState::Registration(state) => FlowState::Registration(state),
            TaggedState::DeviceAuthorization(state) => FlowState::DeviceAuthorization(state),
            TaggedState::Qr(state) => FlowState::Qr(state),
            TaggedState::NewDevice(state) => FlowState::NewDevice(state),
        };
        self.head.into_flow(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Status;

    /// A flow waiting for its push as the release before this layout stored it (taken from
    /// a real record): it must still decode after an upgrade.
    const FLAT: &str = r#"{"id":"Xw6sdEywvMrvbzV0jhPwu3Xo","client_id":"demo-federation","user_id":"oob-0","application":{"name":"Bench Bank","id":null,"iconUrl":null},"client_ip":"203.0.113.7","params":{},"message":{"title":"Sign-in request","body":"Approve sign-in to Bench Bank?"},"return_url":null,"created_at_ms":1796173163795,"devices":[{"id":"G6hvJ4peXrRC8UMx390V","kind":"Android","name":"bench phone","nickname":null,"target":"assent-bench","default":true,"method":"PINGID_MOBILE","otp_enabled":true,"push_enabled":true,"backup":false}],"result_picked_up":false,"manage_devices":false,"pushes_sent":1,"browser_binding":"bb4c5385795ffa28a2f1c5e110b5a604623797187763fca3c459ec4624702ac1","one_time_device":null,"policy":{"use_code":false,"otp_fallback":true,"number_matching":false,"otp_length":6},"otp_failures":0,"codes_sent":0,"state":{"kind":"oob","state":"push_waiting","push":{"auth_id":"Xw6sdEywvMrvbzV0jhPwu3Xo.0AGtVYEi6sDa","device_id":"G6hvJ4peXrRC8UMx390V","sent_at_ms":1796173163798,"expires_at_ms":1796173283798,"silent":false}}}"#;

    #[test]
    fn a_flow_stored_in_the_flat_layout_still_decodes() {
        let flow = decode(FLAT.as_bytes()).expect("the flat layout decodes");
        assert_eq!(flow.id.as_str(), "Xw6sdEywvMrvbzV0jhPwu3Xo");
        assert_eq!(flow.user_id.as_str(), "oob-0");
        assert_eq!(flow.application.name, "Bench Bank");
        assert_eq!(flow.devices.len(), 1);
        assert_eq!(flow.pushes_sent, 1);
        assert!(flow.browser_binding.is_some());
        assert_eq!(flow.policy.otp_length, 6);
        let push = flow.push().expect("the push still waits");
        assert_eq!(push.device_id.as_str(), "G6hvJ4peXrRC8UMx390V");
        assert_eq!(push.expires_at_ms, 1_796_173_283_798);
        assert_eq!(
            flow.status(1_796_173_200_000),
            Status::PushConfirmationWaiting
        );
    }

    #[test]
    fn a_flow_is_written_in_the_nested_layout_and_reads_back_the_same() {
        let flow = decode(FLAT.as_bytes()).expect("the flat layout decodes");
        let written = serde_json::to_vec(&flow).expect("encodes");
        let json: serde_json::Value = serde_json::from_slice(&written).expect("JSON");
        assert!(json["head"]["id"].is_string(), "{json}");
        assert_eq!(json["state"]["oob"]["state"], "push_waiting", "{json}");
        assert_eq!(decode(&written).expect("decodes"), flow);
    }

    #[test]
    fn a_record_of_neither_layout_is_an_error_not_a_flow() {
        let mut broken: serde_json::Value = serde_json::from_str(FLAT).expect("JSON");
        broken["state"]["kind"] = "teleport".into();
        let bytes = serde_json::to_vec(&broken).expect("encodes");
        assert!(decode(&bytes).is_err());
        assert!(decode(b"{}").is_err());
        assert!(decode(b"not json").is_err());
    }
}
