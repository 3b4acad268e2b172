//! `kintsugi init` and `kintsugi join`: make a space, or enter one with a code.

use std::path::Path;

use kintsugi_core::sync::client::read_ca_cert;
use kintsugi_core::{Device, Enrolment, system_clock};
use serde_json::json;

use crate::cli::EnrolArgs;
use crate::output::Output;

pub async fn init(home: &Path, args: EnrolArgs, out: Output) -> anyhow::Result<()> {
    let device_name = device_name(&args);
    let device = Device::init(enrolment(home, &args, &device_name)?).await?;
    print_identity(
        &device,
        out,
        "created a new space; invite your partner with `kintsugi invite`",
    )
}

pub async fn join(home: &Path, args: EnrolArgs, code: &str, out: Output) -> anyhow::Result<()> {
    let device_name = device_name(&args);
    let device = Device::join(enrolment(home, &args, &device_name)?, code).await?;
    print_identity(
        &device,
        out,
        "joined the space; run `kintsugi sync` to receive what is there",
    )
}

fn enrolment<'a>(
    home: &'a Path,
    args: &'a EnrolArgs,
    device_name: &'a str,
) -> anyhow::Result<Enrolment<'a>> {
    Ok(Enrolment {
        dir: home,
        server_url: &args.server,
        member_name: &args.name,
        device_name,
        ca_cert_pem: args.ca_cert.as_deref().map(read_ca_cert).transpose()?,
        clock: system_clock(),
    })
}

fn print_identity(device: &Device, out: Output, next: &str) -> anyhow::Result<()> {
    let id = device.identity();
    let value = json!({
        "space": id.space.to_string(),
        "member": id.member.to_string(),
        "device": id.device.to_string(),
        "name": id.member_name,
        "device_name": id.device_name,
    });
    out.print(&value, || {
        format!(
            "{} on {} ({}): {next}",
            id.member_name, id.device_name, id.device
        )
    })
}

/// `--device-name`, else the host name, else "terminal".
fn device_name(args: &EnrolArgs) -> String {
    args.device_name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "terminal".to_string())
}
