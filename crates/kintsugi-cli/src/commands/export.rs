//! `kintsugi export`: a document as JSON, or in Automerge's own binary format.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use kintsugi_core::{Device, DocKind};

use crate::cli::ExportFormat;
use crate::output::Output;

pub fn run(
    device: &Device,
    doc: &str,
    format: ExportFormat,
    file: Option<&Path>,
    out: Output,
) -> anyhow::Result<()> {
    let kind = DocKind::parse(doc)?;
    let bytes = match format {
        ExportFormat::Json => {
            let mut text = serde_json::to_vec_pretty(&device.export_json(kind)?)?;
            text.push(b'\n');
            text
        }
        ExportFormat::Automerge => device.export_automerge(kind)?,
    };
    match file {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            out.print(
                &serde_json::json!({ "file": path, "bytes": bytes.len() }),
                || format!("wrote {} bytes to {}", bytes.len(), path.display()),
            )
        }
        None => std::io::stdout()
            .write_all(&bytes)
            .context("cannot write to stdout"),
    }
}
