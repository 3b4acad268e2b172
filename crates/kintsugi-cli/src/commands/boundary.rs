//! `kintsugi boundary`: propose, edit, approve, retire and list the agreement's boundaries.

use kintsugi_core::{BoundaryView, Device};
use serde_json::json;

use crate::cli::BoundaryCommand;
use crate::output::{Output, timestamp};

pub fn run(device: &Device, command: BoundaryCommand, out: Output) -> anyhow::Result<()> {
    match command {
        BoundaryCommand::Add { text, category } => {
            let id = device.add_boundary(&text, &category)?;
            out.print(&json!({ "id": id }), || id.clone())
        }
        BoundaryCommand::Edit { id, text } => {
            let id = device.edit_boundary(&id, &text)?;
            out.print(&json!({ "id": id }), || {
                format!("edited {id}; your partner is asked to approve it again")
            })
        }
        BoundaryCommand::Approve { id } => {
            let (id, approved) = device.approve_boundary_once(&id)?;
            let status = device.boundary(&id)?.status;
            let value = json!({ "id": id, "status": status, "already_approved": !approved });
            out.print(&value, || match approved {
                true => format!("approved {id}"),
                false => format!("already approved {id} as it reads now; nothing was changed"),
            })
        }
        BoundaryCommand::Retire { id } => {
            let id = device.retire_boundary(&id)?;
            out.print(&json!({ "id": id, "status": "retired" }), || {
                format!("retired {id}")
            })
        }
        BoundaryCommand::List => {
            let list = device.boundaries()?;
            out.print(&json_list(&list), || {
                if list.is_empty() {
                    "no boundaries yet; propose one with `kintsugi boundary add TEXT`".into()
                } else {
                    list.iter().map(line).collect::<Vec<_>>().join("\n")
                }
            })
        }
        BoundaryCommand::Show { id } => {
            let boundary = device.boundary(&id)?;
            out.print(&json_one(&boundary), || {
                format!(
                    "{}\n  status: {}\n  category: {}\n  proposed by {} on {}\n  approved by: {}",
                    boundary.text,
                    boundary.status.as_str(),
                    boundary.category,
                    boundary.proposed_by,
                    timestamp(boundary.created_at),
                    boundary.approved_by.join(", ")
                )
            })
        }
    }
}

fn json_one(b: &BoundaryView) -> serde_json::Value {
    json!({
        "id": b.id,
        "text": b.text,
        "category": b.category,
        "status": b.status,
        "proposed_by": b.proposed_by,
        "approved_by": b.approved_by,
        "created_at": timestamp(b.created_at),
    })
}

fn json_list(list: &[BoundaryView]) -> serde_json::Value {
    serde_json::Value::Array(list.iter().map(json_one).collect())
}

fn line(b: &BoundaryView) -> String {
    format!(
        "{}  {:<8}  {}  [{}; approved by {}]",
        b.id,
        b.status.as_str(),
        b.text,
        b.category,
        b.approved_by.join(", ")
    )
}
