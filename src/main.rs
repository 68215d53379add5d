//! The `assent` command: the service, and the tools around it.

use std::path::PathBuf;
use std::process::ExitCode;

use assent::Application;
use assent::telemetry::{self, LogFormat};
use assent_adapter::Config;
use assent_adapter::config::SecretHash;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => serve(config, log_format),
        Command::Config(ConfigCommand::Check { config }) => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{}: {error}", config.display());
                ExitCode::FAILURE
            }
        },
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
    let config = match Config::load(&config_path) {
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
