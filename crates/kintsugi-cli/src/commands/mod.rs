//! One file per subcommand; this module dispatches to them and holds what they share.

mod admin;
mod bench;
mod boundary;
mod chart;
mod checkin;
mod confirm;
mod demo;
mod devices;
mod enrol;
mod export;
mod history;
mod invite;
mod journal;
mod leave;
mod progress;
mod recovery;
mod serve;
mod sync;
mod verify;
mod watch_socket;
mod wipe;

use std::path::PathBuf;

use anyhow::Context;
use kintsugi_core::{CoreError, Device};

use crate::cli::{Cli, Command};
use crate::output::Output;

pub use watch_socket::AlreadyReported;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output { json: cli.json };
    let home = cli.home.clone();
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Bench(args) => bench::run(args, out).await,
        Command::Demo => demo::run(out).await,
        Command::Init(args) => enrol::init(&home_dir(home)?, args, out).await,
        Command::Join { enrol, code } => enrol::join(&home_dir(home)?, enrol, code, out).await,
        Command::Recovery(command) => recovery::run(home, command, out).await,
        Command::Admin(command) => admin::run(command, out).await,
        Command::Wipe { yes } => wipe::run(&home_dir(home)?, yes, out),
        command => {
            let home = home_dir(home)?;
            match Device::open(&home) {
                Ok(device) => run_on_device(&device, command, out).await,
                Err(CoreError::Busy(dir)) if watch_socket::may_forward(&command) => {
                    watch_socket::forward(&home, &command, dir).await
                }
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// The commands that work on an open device: on this process's own, or, for those
/// [`watch_socket::may_forward`] allows, on the one a running `sync --watch` holds.
async fn run_on_device(device: &Device, command: Command, out: Output) -> anyhow::Result<()> {
    match command {
        Command::Invite(args) => invite::run(device, args, out).await,
        Command::Boundary(command) => boundary::run(device, command, out),
        Command::Journal(command) => journal::run(device, command, out),
        Command::Shared(_) => checkin::shared_list(device, out),
        Command::Checkin(args) => checkin::check_in(device, args, out),
        Command::Therapy(command) => checkin::therapy(device, command, out),
        Command::Progress { chart } => progress::run(device, chart.as_deref(), out),
        Command::History { doc } => history::run(device, &doc, out),
        Command::Sync { watch } => sync::run(device, watch, out).await,
        Command::Devices => devices::list(device, out).await,
        Command::Verify { confirm, yes } => verify::run(device, confirm, yes, out).await,
        Command::Revoke { device: id, yes } => devices::revoke(device, &id, yes, out).await,
        Command::Leave { yes } => leave::run(device, yes, out).await,
        Command::Export {
            doc,
            format,
            out: file,
        } => export::run(device, &doc, format, file.as_deref(), out),
        Command::Serve(_)
        | Command::Bench(_)
        | Command::Demo
        | Command::Init(_)
        | Command::Join { .. }
        | Command::Recovery(_)
        | Command::Admin(_)
        | Command::Wipe { .. } => anyhow::bail!("this command does not run on an open device"),
    }
}

/// `--home`, else `KINTSUGI_HOME` (clap reads both), else `~/.kintsugi`.
fn home_dir(home: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match home {
        Some(home) => Ok(home),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".kintsugi"))
            .context("no --home given and $HOME is not set; pass --home DIR"),
    }
}
