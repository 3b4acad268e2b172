//! `kintsugi`: the sync server, a phone in a terminal, and a one-command demo.
//!
//! Errors reach the user as one line on stderr with a non-zero exit status; nothing here
//! panics on user input, and no debug dump is ever printed.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Everything this binary writes (keys, ciphertext, backups, exports) is for its user only.
    kintsugi_server::owner_only::restrict_umask();
    let cli = cli::Cli::parse();
    // The server sets up its own logging from its settings (plain or JSON).
    if !matches!(cli.command, cli::Command::Serve(_)) {
        init_logging();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, without repeating a cause its parent already says.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

/// Client commands only warn, so their output stays clean.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINTSUGI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
