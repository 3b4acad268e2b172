//! `kintsugi invite`: a one-time code, as text and as a terminal QR code.

use kintsugi_core::{CodeKind, Device};
use serde_json::json;

use crate::cli::InviteArgs;
use crate::output::{Output, qr_code};

pub async fn run(device: &Device, args: InviteArgs, out: Output) -> anyhow::Result<()> {
    let kind = if args.device {
        CodeKind::Device
    } else {
        CodeKind::Partner
    };
    let code = device.invite(kind).await?.encode();
    let value = json!({
        "code": code,
        "kind": if args.device { "device" } else { "partner" },
    });
    out.print(&value, || {
        let who = match kind {
            CodeKind::Partner => {
                "your partner: on their phone run `kintsugi join --name NAME` and \
                 paste it when asked"
            }
            CodeKind::Device => {
                "your other device only (it opens your private journal as it is now): run \
                 `kintsugi join --name NAME` there and paste it when asked"
            }
        };
        let qr = qr_code(&code);
        format!(
            "{qr}\n{code}\n\nSingle use; expires in 24 hours. Give it to {who}.\n\
             Until it is used it opens what the space holds now (with the server's data): share \
             it only in person or over an end-to-end encrypted channel, and delete every copy \
             once it was used. The join starts new keys, so a used code opens nothing after it."
        )
    })
}
