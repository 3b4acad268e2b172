//! `kintsugi verify`: the roster's safety number, to compare with the partner's phone.

use kintsugi_core::{Device, Verification};

use crate::output::{Output, qr_code};

pub async fn run(device: &Device, confirm: bool, yes: bool, out: Output) -> anyhow::Result<()> {
    let mut shown = device.verification().await?;
    if confirm && !shown.verified {
        let question = format!(
            "Does your partner's phone show exactly this safety number?\n  {}",
            shown.fingerprint
        );
        super::confirm::confirm(&question, yes, "kintsugi verify --confirm")?;
        shown = device.confirm_verification(&shown.fingerprint).await?;
    }
    out.print(&shown, || text(&shown))
}

fn text(shown: &Verification) -> String {
    let state = if shown.verified {
        "You confirmed this roster as compared with your partner."
    } else {
        "Not compared yet, or the roster changed since: compare it with your partner's phone \
         side by side (each reads theirs aloud, or scans the other's code), then run \
         `kintsugi verify --confirm`. If the numbers differ, do not trust new devices."
    };
    format!(
        "{}\n{}\n\n{state}",
        qr_code(&shown.fingerprint),
        shown.fingerprint
    )
}
