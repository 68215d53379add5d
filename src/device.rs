//! `assent device`: a device simulator that acts as the native app, a thin command line
//! over the device SDK (`assent-device-sdk`) — it pairs with a key pair kept in a local
//! file, lists pending requests, and answers them with signed proofs.

use std::fmt::Display;
use std::io::Write;
use std::path::Path;

use assent_device_sdk::proto::device::{DeviceList, PendingRequest};
use assent_device_sdk::{Client, Decision, Device, DeviceInfo, DeviceKey, DeviceRecord, SdkError};
use clap::Subcommand;

/// Why a simulator command failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The SDK failed: a file, a key, the server.
    #[error(transparent)]
    Sdk(#[from] SdkError),
    /// An answer could not be printed.
    #[error("output: {0}")]
    Output(String),
    /// Whoever read the output stopped reading (`| head -1`): nothing more to say, and
    /// nothing went wrong.
    #[error("output closed")]
    Closed,
}

/// What the simulator does.
#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Generate a key pair and pair it using a one-time pairing key.
    Pair {
        /// The pairing key (from the Admin API or a registration flow).
        #[arg(long)]
        key: String,
        /// The assent base URL.
        #[arg(
            long,
            env = "ASSENT_DEVICE_SERVER",
            default_value = "http://127.0.0.1:9031"
        )]
        server: String,
        /// The device's name.
        #[arg(long, default_value = "assent simulator")]
        name: String,
    },
    /// List the requests waiting for this device.
    Pending {
        /// Long-poll up to this many seconds for one to arrive.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Approve a pending request.
    Approve {
        /// The request's auth id.
        auth_id: String,
        /// Number matching: the number the browser shows.
        #[arg(long)]
        number: Option<u8>,
    },
    /// Print the app's current one-time passcode (for `useCode` or when offline).
    Otp,
    /// Deny a pending request.
    Deny {
        /// The request's auth id.
        auth_id: String,
    },
    /// Make a key pair for a one-time device and print its public JWK (no pairing).
    Keygen {
        /// The assent base URL.
        #[arg(
            long,
            env = "ASSENT_DEVICE_SERVER",
            default_value = "http://127.0.0.1:9031"
        )]
        server: String,
    },
    /// Take the id a flow gave this one-time device (`oneTimeDeviceId`).
    Adopt {
        /// The device id.
        id: String,
    },
    /// List the devices of this device's user.
    Devices,
    /// Unpair this device.
    Unpair,
    /// Scan a QR sign-on code (its token, or the URI it encodes).
    Scan {
        /// The token or URI.
        code: String,
    },
    /// After a scan with a shared device, sign in as one of its users.
    Select {
        /// The token or URI scanned.
        code: String,
        /// The user id to sign in as.
        user: String,
    },
    /// Pair this device with one more user (a shared device).
    Join {
        /// A pairing key issued for that user.
        #[arg(long)]
        key: String,
    },
    /// Sign a flow's serverPayload (device authorization) and print the mobilePayload.
    Authorize {
        /// The flow's `serverPayload`.
        server_payload: String,
    },
    /// Sign this trusted device's mobilePayload for a flow (a native app's `authenticate`)
    /// and print it.
    SignIn {
        /// The flow's id.
        flow_id: String,
    },
    /// Wait for requests and answer each as told.
    Watch {
        /// The answer to give every request.
        #[arg(long, value_enum)]
        auto: AutoAnswer,
        /// Stop after answering this many requests (0: never).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
}

/// How `watch` answers.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum AutoAnswer {
    /// Approve every request.
    Approve,
    /// Deny every request.
    Deny,
}

/// What the simulator says about itself when it pairs: the phone the tests and the
/// walk-throughs expect.
pub fn simulator_info(name: &str) -> DeviceInfo {
    DeviceInfo {
        name: name.to_owned(),
        os: "Android".to_owned(),
        os_version: "15".to_owned(),
        model: "assent simulator".to_owned(),
    }
}

/// The app's current one-time passcode, from the seed given at pairing.
pub fn current_otp(device: &Device) -> Option<String> {
    assent_core::otp::totp_now(
        device.totp_seed()?,
        assent_core::clock::Clock::now_secs(&assent_core::clock::SystemClock),
    )
}

/// Prints a pending request the way a phone would show it.
pub fn describe(request: &PendingRequest) -> String {
    let silent = if request.silent { " silent" } else { "" };
    let mut text = format!(
        "{}  [{}{silent}] {} — {} (for {})\n    {}",
        request.auth_id,
        request.kind,
        request.application.name,
        request.title,
        request.user_id,
        request.body
    );
    for (name, value) in &request.dynamic_params {
        text.push_str(&format!("\n    {name} = {value}"));
    }
    if let Some(ip) = &request.client_ip {
        text.push_str(&format!("\n    from {ip}"));
    }
    if !request.number_choices.is_empty() {
        let choices: Vec<String> = request.number_choices.iter().map(u8::to_string).collect();
        text.push_str(&format!(
            "\n    pick the number your browser shows: {}",
            choices.join(" / ")
        ));
    }
    if let Some(message) = &request.admin_message {
        text.push_str(&format!("\n    {message}"));
    }
    text
}

/// One line to standard output; a closed pipe ends the command quietly instead of
/// panicking as `println!` does.
fn say(line: impl Display) -> Result<(), DeviceError> {
    writeln!(std::io::stdout().lock(), "{line}").map_err(|error| match error.kind() {
        std::io::ErrorKind::BrokenPipe => DeviceError::Closed,
        _ => DeviceError::Output(error.to_string()),
    })
}

/// A wire value as one line of JSON.
fn say_json(value: &impl serde::Serialize) -> Result<(), DeviceError> {
    say(serde_json::to_string(value).map_err(|error| DeviceError::Output(error.to_string()))?)
}

/// Runs one command against the device kept in `state`.
pub async fn run(state: &Path, command: DeviceCommand) -> Result<(), DeviceError> {
    match command {
        DeviceCommand::Pair { key, server, name } => {
            let device = Device::pair(&server, &key, &simulator_info(&name)).await?;
            device.save(state)?;
            say(format_args!(
                "paired device {} with user {} (key kept in {})",
                device.id(),
                device.user_id(),
                state.display()
            ))?;
        }
        DeviceCommand::Pending { wait } => {
            let pending = Device::load(state)?.pending(wait).await?;
            if pending.is_empty() {
                say("no pending requests")?;
            }
            for request in &pending {
                say(describe(request))?;
            }
        }
        DeviceCommand::Approve { auth_id, number } => {
            let answer = Device::load(state)?
                .answer_by_id(&auth_id, Decision::Approve, number)
                .await?;
            say(format_args!(
                "approved {}: flow is {}",
                answer.auth_id, answer.status
            ))?;
        }
        DeviceCommand::Deny { auth_id } => {
            let answer = Device::load(state)?
                .answer_by_id(&auth_id, Decision::Deny, None)
                .await?;
            say(format_args!(
                "denied {}: flow is {}",
                answer.auth_id, answer.status
            ))?;
        }
        DeviceCommand::Otp => match current_otp(&Device::load(state)?) {
            Some(code) => say(code)?,
            None => say("this device has no passcode seed (paired before passcodes)")?,
        },
        DeviceCommand::Keygen { server } => {
            let key = DeviceKey::generate()?;
            let public_jwk = key.public_jwk().clone();
            // No id yet: the flow that brings this key gives it one (`adopt`).
            Client::new(&server)?.device("", "", key).save(state)?;
            say_json(&public_jwk)?;
        }
        DeviceCommand::Adopt { id } => {
            let record = DeviceRecord {
                device_id: id.clone(),
                ..DeviceRecord::load(state)?
            };
            Device::from_record(record)?.save(state)?;
            say(format_args!("one-time device {id} ready"))?;
        }
        DeviceCommand::Devices => {
            let devices = Device::load(state)?.devices(None).await?;
            say_json(&DeviceList { devices })?;
        }
        DeviceCommand::Unpair => {
            let device = Device::load(state)?;
            device.unpair().await?;
            say(format_args!("device {} unpaired", device.id()))?;
        }
        DeviceCommand::Scan { code } => {
            say_json(&Device::load(state)?.scan(&code).await?)?;
        }
        DeviceCommand::Select { code, user } => {
            say_json(&Device::load(state)?.select(&code, &user).await?)?;
        }
        DeviceCommand::Join { key } => {
            let joined = Device::load(state)?.join(&key).await?;
            say(format_args!(
                "device now paired with: {}",
                joined.users.join(", ")
            ))?;
        }
        DeviceCommand::Authorize { server_payload } => {
            say(Device::load(state)?.authorize(&server_payload)?)?;
        }
        DeviceCommand::SignIn { flow_id } => {
            say(Device::load(state)?
                .signer()
                .trusted_device_payload(&flow_id)?)?;
        }
        DeviceCommand::Watch { auto, count } => watch(state, auto, count).await?,
    }
    Ok(())
}

/// Answers every request as told, until `count` are answered (0: never).
async fn watch(state: &Path, auto: AutoAnswer, count: u64) -> Result<(), DeviceError> {
    let device = Device::load(state)?;
    let (decision, done) = match auto {
        AutoAnswer::Approve => (Decision::Approve, "approved"),
        AutoAnswer::Deny => (Decision::Deny, "denied"),
    };
    let mut answered = 0;
    say(format_args!("device {} watching for requests", device.id()))?;
    loop {
        for request in device.pending(25).await? {
            say(describe(&request))?;
            match device.answer(&request, decision, None).await {
                Ok(answer) => say(format_args!("  -> {done}: flow is {}", answer.status))?,
                Err(error) => say(format_args!("  -> not answered: {error}"))?,
            }
            answered += 1;
            if count > 0 && answered >= count {
                return Ok(());
            }
        }
    }
}
