use clap::Parser;

use adapter_simulator::{config::Config, Simulator};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    adapter_simulator::init_tracing();
    let config = Config::parse();
    let simulator = match Simulator::start(config).await {
        Ok(simulator) => simulator,
        Err(error) => {
            tracing::error!(%error, "simulator could not start");
            return std::process::ExitCode::FAILURE;
        }
    };
    match simulator.serve(adapter_simulator::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "simulator stopped with an error");
            std::process::ExitCode::FAILURE
        }
    }
}
