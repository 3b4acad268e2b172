//! `kintsugi`: the sync server, a phone in a terminal, and a one-command demo.
//!
//! Errors reach the user as one line on stderr (one JSON object on stdout with `--json`)
//! with a non-zero exit status; nothing here
//! panics on user input, and no debug dump is ever printed.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Everything this binary writes (keys, ciphertext, backups, exports) is for its user only.
    kintsugi_server::owner_only::restrict_umask();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
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
    let json = cli.json;
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // A running `sync --watch` carried the command out and its output is printed already.
        Err(error) if error.is::<commands::AlreadyReported>() => ExitCode::FAILURE,
        Err(error) => {
            output::report_error(&error, json);
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused: with `--json` one error object like any other (`--help` and
/// `--version` print as usual).
fn usage_error(error: clap::Error) -> ExitCode {
    let wants_json = std::env::args_os().any(|arg| arg == "--json");
    if !wants_json || !error.use_stderr() {
        error.exit();
    }
    let rendered = error.render().to_string();
    let message = rendered.lines().next().unwrap_or_default();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let hint = "see `kintsugi --help` for the commands and their arguments";
    let report = serde_json::json!({
        "error": { "code": "usage", "message": format!("{message}; {hint}") }
    });
    println!("{report}");
    ExitCode::from(2)
}

/// Client commands only warn, so their output stays clean.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINTSUGI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
