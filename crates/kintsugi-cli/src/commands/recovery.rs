//! `kintsugi recovery show|use`: print the recovery kit once, or enrol a new device with it.
//!
//! `use` reads the kit from stdin only, so it never lands in argv or shell history.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::bail;
use kintsugi_core::{Device, Enrolment, read_ca_cert, system_clock};
use serde_json::json;

use super::enrol::{CodeKind, device_name_or_host, print_identity, read_code};
use super::home_dir;
use crate::cli::{RecoverArgs, RecoveryCommand};
use crate::output::Output;

const KIT: CodeKind = CodeKind {
    prompt: "Recovery kit (as printed by `kintsugi recovery show`): ",
    name: "recovery kit",
};

pub async fn run(
    home: Option<PathBuf>,
    command: RecoveryCommand,
    out: Output,
) -> anyhow::Result<()> {
    match command {
        RecoveryCommand::Show { new } => show(&Device::open(&home_dir(home)?)?, new, out).await,
        RecoveryCommand::Use(args) => recover(&home_dir(home)?, args, out).await,
    }
}

async fn show(device: &Device, new: bool, out: Output) -> anyhow::Result<()> {
    let kit = if new {
        device.new_recovery_kit().await?
    } else {
        device.take_recovery_kit()?
    };
    out.print(&json!({ "code": kit }), || {
        format!(
            "Your recovery kit (this device no longer keeps it: print it or write it down now, \
             and keep it offline, away from your phone):\n\n{kit}\n\nWith it alone you can \
             enrol a new device after losing all of yours: `kintsugi recovery use --server URL`."
        )
    })
}

async fn recover(home: &Path, args: RecoverArgs, out: Output) -> anyhow::Result<()> {
    let kit = read_code(
        &mut std::io::stdin().lock(),
        std::io::stdin().is_terminal(),
        KIT,
    )?;
    let kit = kit.trim();
    if kit.is_empty() {
        bail!(
            "no recovery kit given: paste it when asked, or pipe it in \
             (`kintsugi recovery use --server URL < kit.txt`)"
        );
    }
    let device_name = device_name_or_host(args.device_name.clone());
    let enrolment = Enrolment {
        dir: home,
        server_url: &args.server,
        member_name: "(recovering)",
        device_name: &device_name,
        ca_cert_pem: args.ca_cert.as_deref().map(read_ca_cert).transpose()?,
        clock: system_clock(),
    };
    let device = Device::recover(enrolment, kit).await?;
    print_identity(
        &device,
        out,
        "recovered: every other device of yours is revoked; run `kintsugi sync` to get your history",
    )
}
