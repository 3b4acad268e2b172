//! `kintsugi wipe`: erase this device's local state, for a phone that is given away or reset.

use anyhow::bail;
use kintsugi_core::Device;
use serde_json::json;

use crate::output::Output;

pub fn run(device: Device, yes: bool, out: Output) -> anyhow::Result<()> {
    let pending = device.pending_changes();
    if !yes {
        let unsynced = match pending {
            0 => String::new(),
            n => format!(", including {n} change(s) never synced"),
        };
        bail!(
            "this erases everything of this device in {}{unsynced}; run `kintsugi sync` first if you can, then `kintsugi wipe --yes`",
            device.dir().display()
        );
    }
    let dir = device.wipe()?;
    out.print(
        &json!({ "wiped": dir, "unsynced_changes_lost": pending }),
        || format!("erased this device's state in {}", dir.display()),
    )
}
