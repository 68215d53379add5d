//! `assent-bench`: starts its own redis-server and a release build of assent on free
//! ports, drives each scenario for a bounded time, stops everything, and prints one table
//! per scenario with its same-run baseline and ratio. `scripts/bench` builds and runs it.

mod clients;
mod crypto;
mod processes;
mod scenario;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::clients::Caller;
use crate::crypto::CryptoCosts;
use crate::processes::{Assent, Redis};
use crate::scenario::Setting;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A process or tool could not be started or read.
    #[error("setup: {0}")]
    Setup(String),
    /// assent answered something a correct server would not.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// HTTP failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The device SDK failed.
    #[error("device: {0}")]
    Device(#[from] assent_device_sdk::SdkError),
    /// The crypto baseline failed.
    #[error("crypto: {0}")]
    Crypto(#[from] josekit::JoseError),
    /// Reading `/proc` or a pipe failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A worker task died.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Poll,
    Ciba,
    Oob,
    Longpoll,
}

/// Load generator for assent.
#[derive(Parser)]
struct Args {
    /// The scenarios to run (all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Seconds each timed part runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Connections (poll) or concurrent flows (ciba, oob).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open long polls in `longpoll`.
    #[arg(long, default_value_t = 10_000)]
    polls: usize,
    /// A quick run that only shows every scenario works (the test suite's smoke run).
    #[arg(long)]
    smoke: bool,
    /// The assent binary (a release build for real figures).
    #[arg(long, default_value = "target/release/assent")]
    assent: PathBuf,
}

#[tokio::main]
async fn main() {
    if let Err(error) = run(Args::parse()).await {
        let mut message = error.to_string();
        // reqwest's "error sending request" says why only in its sources.
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        eprintln!("assent-bench: {message}");
        std::process::exit(1);
    }
}

async fn run(mut args: Args) -> Result<(), BenchError> {
    if args.scenario.is_empty() {
        args.scenario = vec![
            Scenario::Poll,
            Scenario::Ciba,
            Scenario::Oob,
            Scenario::Longpoll,
        ];
    }
    if args.smoke {
        args.seconds = 2;
        args.concurrency = args.concurrency.min(4);
        args.polls = args.polls.min(100);
    }
    println!("{}", machine());
    let crypto = CryptoCosts::measure(if args.smoke { 20 } else { 500 })?;
    for scenario in &args.scenario {
        let redis = Redis::start()?;
        let env: &[(&str, &str)] = match scenario {
            Scenario::Longpoll => &[
                ("ASSENT_HTTP__LONG_POLL_MAX_SECS", "120"),
                ("ASSENT_POLICY__FLOW_TTL_SECS", "1200"),
                ("ASSENT_POLICY__PUSH_TIMEOUT_SECS", "900"),
            ],
            _ => &[],
        };
        let assent = Assent::start(&args.assent, &redis, env).await?;
        let setting = Setting {
            redis: &redis,
            assent: &assent,
            caller: Caller::new(&assent.url)?,
            duration: Duration::from_secs(args.seconds),
            concurrency: args.concurrency,
        };
        let table = match scenario {
            Scenario::Poll => scenario::poll::run(&setting).await?,
            Scenario::Ciba => scenario::ciba::run(&setting, &crypto).await?,
            Scenario::Oob => scenario::oob::run(&setting, &crypto).await?,
            Scenario::Longpoll => scenario::longpoll::run(&setting, args.polls).await?,
        };
        println!("{}", table.render());
    }
    Ok(())
}

/// The machine the figures come from.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("Machine: {cpu}, {cores} cores available.\n")
}
