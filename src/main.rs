//! The `assent` command: the service, and the tools around it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use assent::Application;
use assent::device::{Device, DeviceError, describe};
use assent::telemetry::{self, LogFormat};
use assent_core::Config;
use assent_core::config::{ConfigError, SecretHash};
use clap::{Parser, Subcommand};

/// assent: multi-factor authentication for federation servers, with a CIBA authenticator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// The configuration file; `ASSENT_*` variables override its keys.
        #[arg(long, env = "ASSENT_CONFIG", default_value = "conf/assent.toml")]
        config: PathBuf,
        /// Log line format.
        #[arg(long, env = "ASSENT_LOG_FORMAT", value_enum, default_value_t)]
        log_format: LogFormat,
    },
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Act as the native app of a paired device (a simulator for trying flows).
    Device {
        /// Where the device's pairing and private key are kept.
        #[arg(long, global = true, default_value = "assent-device.json")]
        state: PathBuf,
        #[command(subcommand)]
        command: DeviceCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add new current signing keys; the previous ones stay in the JWKS until the tokens
    /// they signed have expired. Needs the shared (Redis) store the servers use.
    Rotate {
        /// The configuration file (its `store` names the Redis to rotate in).
        #[arg(long, env = "ASSENT_CONFIG", default_value = "conf/assent.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum AutoAnswer {
    Approve,
    Deny,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration (with `ASSENT_*` overrides) and exit non-zero, naming the
    /// offending key, if it is wrong.
    Check {
        /// The configuration file.
        #[arg(long, env = "ASSENT_CONFIG", default_value = "conf/assent.toml")]
        config: PathBuf,
    },
    /// Print the SHA-256 form of a secret read from standard input, for the configuration.
    HashSecret,
    /// Print the Argon2 hash of a user's CIBA user code read from standard input.
    HashUserCode,
}

/// Loads and checks the configuration, with what only the senders can check (that the
/// SMTP `from` is a mailbox).
fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    assent_senders::validate(&config.delivery).map_err(|(key, reason)| ConfigError::Value {
        key: format!("delivery.{key}"),
        reason,
    })?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => serve(config, log_format),
        Command::Config(ConfigCommand::Check { config }) => match load_config(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{}: {error}", config.display());
                ExitCode::FAILURE
            }
        },
        Command::Device { state, command } => device(&state, command),
        Command::Keys(KeysCommand::Rotate { config }) => rotate_keys(&config),
        Command::Config(ConfigCommand::HashUserCode) => {
            let mut code = String::new();
            if std::io::stdin().read_line(&mut code).is_err() || code.trim().is_empty() {
                eprintln!("give the user code on standard input");
                return ExitCode::FAILURE;
            }
            match assent::secrets::hash_user_code(code.trim_end_matches(['\r', '\n'])) {
                Ok(hash) => {
                    println!("{hash}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config(ConfigCommand::HashSecret) => {
            let mut secret = String::new();
            if std::io::stdin().read_line(&mut secret).is_err() || secret.trim().is_empty() {
                eprintln!("give the secret on standard input");
                return ExitCode::FAILURE;
            }
            println!(
                "{}",
                SecretHash::of(secret.trim_end_matches(['\r', '\n'])).to_hex()
            );
            ExitCode::SUCCESS
        }
    }
}

fn serve(config_path: PathBuf, log_format: LogFormat) -> ExitCode {
    telemetry::init(log_format);
    let config = match load_config(&config_path) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(config = %config_path.display(), %error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let application = Application::build(config).await?;
        application.run_until_stopped().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    match outcome {
        Ok(()) => {
            tracing::info!("assent stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "assent failed");
            ExitCode::FAILURE
        }
    }
}

fn device(state: &std::path::Path, command: DeviceCommand) -> ExitCode {
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(run_device(state, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_device(state: &std::path::Path, command: DeviceCommand) -> Result<(), DeviceError> {
    match command {
        DeviceCommand::Pair { key, server, name } => {
            let device = Device::pair(&server, &key, &name).await?;
            device.save(state)?;
            println!(
                "paired device {} with user {} (key kept in {})",
                device.id(),
                device.user_id(),
                state.display()
            );
        }
        DeviceCommand::Pending { wait } => {
            let device = Device::load(state)?;
            let pending = device.pending(wait).await?;
            if pending.is_empty() {
                println!("no pending requests");
            }
            for request in &pending {
                println!("{}", describe(request));
            }
        }
        DeviceCommand::Approve { auth_id, number } => {
            let answer = Device::load(state)?
                .answer_id(&auth_id, true, number)
                .await?;
            println!("approved {}: flow is {}", answer.auth_id, answer.status);
        }
        DeviceCommand::Deny { auth_id } => {
            let answer = Device::load(state)?
                .answer_id(&auth_id, false, None)
                .await?;
            println!("denied {}: flow is {}", answer.auth_id, answer.status);
        }
        DeviceCommand::Otp => match Device::load(state)?.current_otp() {
            Some(code) => println!("{code}"),
            None => println!("this device has no passcode seed (paired before passcodes)"),
        },
        DeviceCommand::Keygen { server } => {
            let (device, public_jwk) = Device::keygen(&server)?;
            device.save(state)?;
            println!("{}", serde_json::Value::Object(public_jwk));
        }
        DeviceCommand::Adopt { id } => {
            let device = Device::load(state)?.adopt(&id)?;
            device.save(state)?;
            println!("one-time device {id} ready");
        }
        DeviceCommand::Devices => {
            println!("{}", Device::load(state)?.devices().await?);
        }
        DeviceCommand::Unpair => {
            let device = Device::load(state)?;
            device.unpair().await?;
            println!("device {} unpaired", device.id());
        }
        DeviceCommand::Scan { code } => {
            println!("{}", Device::load(state)?.scan(&code).await?);
        }
        DeviceCommand::Select { code, user } => {
            println!("{}", Device::load(state)?.select(&code, &user).await?);
        }
        DeviceCommand::Join { key } => {
            let users = Device::load(state)?.join(&key).await?;
            println!("device now paired with: {}", users.join(", "));
        }
        DeviceCommand::Authorize { server_payload } => {
            println!("{}", Device::load(state)?.authorize(&server_payload)?);
        }
        DeviceCommand::Watch { auto, count } => {
            let device = Device::load(state)?;
            let approve = matches!(auto, AutoAnswer::Approve);
            let mut answered = 0;
            println!("device {} watching for requests", device.id());
            loop {
                for request in device.pending(25).await? {
                    println!("{}", describe(&request));
                    match device.answer(&request, approve).await {
                        Ok(answer) => println!(
                            "  -> {}: flow is {}",
                            if approve { "approved" } else { "denied" },
                            answer.status
                        ),
                        Err(error) => println!("  -> not answered: {error}"),
                    }
                    answered += 1;
                    if count > 0 && answered >= count {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

fn rotate_keys(config_path: &std::path::Path) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}: {error}", config_path.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(assent::secrets::rotate_signing_keys(config)) {
        Ok(kids) => {
            println!("new current signing keys: {}", kids.join(", "));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// A single-threaded runtime for the client commands.
fn client_runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| eprintln!("cannot start the runtime: {error}"))
        .ok()
}
