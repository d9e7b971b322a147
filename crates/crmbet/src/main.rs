//! The crmbet command line: serve, migrate, etl, train, demo, account, bench.

mod cli;
mod command;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::telemetry::Telemetry;

// Small, short-lived allocations dominate serving; mimalloc handles them with less locking
// and fewer page faults than the system allocator (measured by `crmbet bench serve`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match command::configuration(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    // Before the runtime: the trace exporter's HTTP client must not be built inside it.
    let telemetry = match Telemetry::init(&config) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(command::run(cli, config));
    drop(runtime);
    telemetry.shutdown();
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
