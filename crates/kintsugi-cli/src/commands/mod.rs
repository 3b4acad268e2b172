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
mod wipe;

use std::path::PathBuf;

use anyhow::Context;
use kintsugi_core::Device;

use crate::cli::{Cli, Command};
use crate::output::Output;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output { json: cli.json };
    let home = cli.home.clone();
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Bench(args) => bench::run(args, out).await,
        Command::Demo => demo::run(out).await,
        Command::Init(args) => enrol::init(&home_dir(home)?, args, out).await,
        Command::Join { enrol, code } => enrol::join(&home_dir(home)?, enrol, code, out).await,
        Command::Invite(args) => invite::run(&open(home)?, args, out).await,
        Command::Boundary(command) => boundary::run(&open(home)?, command, out),
        Command::Journal(command) => journal::run(&open(home)?, command, out),
        Command::Shared(_) => checkin::shared_list(&open(home)?, out),
        Command::Checkin(args) => checkin::check_in(&open(home)?, args, out),
        Command::Therapy(command) => checkin::therapy(&open(home)?, command, out),
        Command::Progress { chart } => progress::run(&open(home)?, chart.as_deref(), out),
        Command::History { doc } => history::run(&open(home)?, &doc, out),
        Command::Sync { watch } => sync::run(&open(home)?, watch, out).await,
        Command::Devices => devices::list(&open(home)?, out).await,
        Command::Recovery(command) => recovery::run(home, command, out).await,
        Command::Verify { confirm, yes } => verify::run(&open(home)?, confirm, yes, out).await,
        Command::Revoke { device, yes } => devices::revoke(&open(home)?, &device, yes, out).await,
        Command::Leave { yes } => leave::run(&open(home)?, yes, out).await,
        Command::Admin(command) => admin::run(command, out).await,
        Command::Wipe { yes } => wipe::run(&home_dir(home)?, yes, out),
        Command::Export {
            doc,
            format,
            out: file,
        } => export::run(&open(home)?, &doc, format, file.as_deref(), out),
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

fn open(home: Option<PathBuf>) -> anyhow::Result<Device> {
    Ok(Device::open(&home_dir(home)?)?)
}
