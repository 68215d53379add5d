//! The `assent` command: the service, and the tools around it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use assent::Application;
use assent::device::{DeviceCommand, DeviceError};
use assent::telemetry::{self, LogFormat};
use assent_core::config::SecretHash;
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
        /// The configuration file (default: the demo configuration built into the
        /// binary, `conf/assent.toml`); `ASSENT_*` variables override its keys.
        #[arg(long, env = "ASSENT_CONFIG")]
        config: Option<PathBuf>,
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
        /// The configuration file (its `store` names the Redis to rotate in; default: the
        /// built-in one).
        #[arg(long, env = "ASSENT_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration (with `ASSENT_*` overrides) and exit non-zero, naming the
    /// offending key, if it is wrong.
    Check {
        /// The configuration file (default: the built-in one).
        #[arg(long, env = "ASSENT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the SHA-256 form of a secret read from standard input, for the configuration.
    HashSecret,
    /// Print the Argon2 hash of a user's CIBA user code read from standard input.
    HashUserCode,
}

/// Where the configuration comes from, as messages name it.
fn config_name(path: Option<&Path>) -> String {
    path.map_or_else(
        || "built-in conf/assent.toml".to_owned(),
        |path| path.display().to_string(),
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => serve(config, log_format),
        Command::Config(ConfigCommand::Check { config }) => {
            let name = config_name(config.as_deref());
            match assent::config::load(config.as_deref()) {
                Ok(_) => {
                    println!("{name}: ok");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{name}: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Device { state, command } => device(&state, command),
        Command::Keys(KeysCommand::Rotate { config }) => rotate_keys(config.as_deref()),
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

fn serve(config_path: Option<PathBuf>, log_format: LogFormat) -> ExitCode {
    telemetry::init(log_format);
    let name = config_name(config_path.as_deref());
    let config = match assent::config::load(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(config = %name, %error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(config = %name, public_url = %config.public_url, "configuration loaded");
    if config.public_url_derived && !config.listen.ip().is_loopback() {
        tracing::warn!(
            public_url = %config.public_url,
            "public_url is not set: links and the OpenID issuer use the listen address; \
             set public_url to the address clients use"
        );
    }
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
    match runtime.block_on(assent::device::run(state, command)) {
        Ok(()) | Err(DeviceError::Closed) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn rotate_keys(config_path: Option<&Path>) -> ExitCode {
    let config = match assent::config::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}: {error}", config_name(config_path));
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
