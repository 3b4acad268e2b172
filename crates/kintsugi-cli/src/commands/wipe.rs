//! `kintsugi wipe`: erase this device's local state, for a phone that is given away, reset, or
//! whose folder is damaged beyond use. It never opens the documents, so it works on a damaged
//! folder too.

use std::path::Path;

use kintsugi_core::Device;
use serde_json::json;

use crate::output::Output;

pub fn run(home: &Path, yes: bool, out: Output) -> anyhow::Result<()> {
    let unsynced = Device::unsynced_changes(home)?;
    let what = match unsynced {
        Some(0) => String::new(),
        Some(n) => {
            format!(", including {n} change(s) never synced (run `kintsugi sync` first if you can)")
        }
        None => " (the folder is damaged, so unsynced changes cannot be counted)".into(),
    };
    let question = format!(
        "This erases everything of this device in {}{what}.",
        home.display()
    );
    super::confirm::confirm(&question, yes, "kintsugi wipe")?;
    Device::wipe(home)?;
    out.print(
        &json!({ "wiped": home, "unsynced_changes_lost": unsynced }),
        || format!("erased this device's state in {}", home.display()),
    )
}
