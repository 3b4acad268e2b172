//! `kintsugi devices` and `kintsugi revoke`: who can sync, and cutting off a lost phone.

use kintsugi_core::{Device, DeviceView};

use crate::output::Output;

pub async fn list(device: &Device, out: Output) -> anyhow::Result<()> {
    let devices = device.devices().await?;
    out.print(&devices, || {
        devices.iter().map(line).collect::<Vec<_>>().join("\n")
    })
}

pub async fn revoke(device: &Device, id: &str, yes: bool, out: Output) -> anyhow::Result<()> {
    let target = device.device_to_revoke(id).await?;
    let question = format!(
        "Revoke {}'s {} ({}) and every device it linked? They will no longer sync.",
        target.member, target.name, target.id
    );
    super::confirm::confirm(&question, yes, &format!("kintsugi revoke {id}"))?;
    let revoked = device.revoke(id).await?;
    out.print(&revoked, || {
        let lines: Vec<String> = revoked
            .iter()
            .map(|d| format!("revoked {}", line(d)))
            .collect();
        lines.join("\n")
    })
}

fn line(d: &DeviceView) -> String {
    let mut flags = Vec::new();
    if d.this_device {
        flags.push("this device");
    }
    if d.revoked {
        flags.push("revoked");
    }
    if !d.in_roster {
        flags.push("not in the roster: its changes are refused");
    } else if !d.verified {
        flags.push("unverified: compare safety numbers with `kintsugi verify`");
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(" ({})", flags.join(", "))
    };
    let epoch = d
        .epoch
        .map_or("no key epoch".to_string(), |e| format!("key epoch {e}"));
    format!("{}  {}'s {}, {epoch}{flags}", d.id, d.member, d.name)
}
