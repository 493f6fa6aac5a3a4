use clap::Parser;

use adapter_gateway::{config::Config, shutdown_signal, Gateway};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    adapter_gateway::init_tracing();
    let config = Config::parse();
    match Gateway::start(config).await {
        Ok(gateway) => match gateway.serve(shutdown_signal()).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "gateway stopped with an error");
                std::process::ExitCode::FAILURE
            }
        },
        Err(error) => {
            tracing::error!(%error, "gateway could not start");
            std::process::ExitCode::FAILURE
        }
    }
}
