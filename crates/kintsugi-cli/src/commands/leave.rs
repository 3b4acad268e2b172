//! `kintsugi leave`: leave the space, erasing this partner's private documents from the server.

use kintsugi_core::Device;

use crate::output::Output;

pub async fn run(device: &Device, yes: bool, out: Output) -> anyhow::Result<()> {
    let question = "Leave the space? Your private journal is erased from the server and all \
                    your devices are revoked; this cannot be undone.";
    super::confirm::confirm(question, yes, "kintsugi leave")?;
    let left = device.leave().await?;
    out.print(&left, || {
        let space = if left.space_erased {
            "You were the last partner: the whole space is erased from the server."
        } else {
            "The shared agreement and check-ins stay with your partner."
        };
        format!(
            "You left the space: {} private document(s) erased and {} device(s) revoked on the server. {space} This device keeps its copy until `kintsugi wipe --yes`.",
            left.documents_removed, left.devices_removed
        )
    })
}
