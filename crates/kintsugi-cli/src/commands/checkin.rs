//! `kintsugi checkin`, `kintsugi therapy` and `kintsugi shared list`: the shared check-ins
//! document and the entries partners chose to share.

use kintsugi_core::{Answers, Device};
use serde_json::json;

use crate::cli::{CheckinArgs, TherapyCommand};
use crate::output::{Output, timestamp};

pub fn check_in(device: &Device, args: CheckinArgs, out: Output) -> anyhow::Result<()> {
    let answers = Answers {
        trust: args.trust,
        conversations: args.conversations,
        closeness: args.closeness,
        forgiveness: args.forgiveness,
        note: args.note.trim().to_string(),
    };
    let (week, replaced) = device.check_in_replacing(args.week.as_deref(), answers)?;
    let value = json!({
        "week": week.to_string(),
        "replaced": replaced,
        "name": device.identity().member_name,
        "trust": args.trust,
        "conversations": args.conversations,
        "closeness": args.closeness,
        "forgiveness": args.forgiveness,
    });
    out.print(&value, || match replaced {
        true => format!("checked in for {week}, replacing your earlier check-in for that week"),
        false => format!("checked in for {week}"),
    })
}

pub fn therapy(device: &Device, command: TherapyCommand, out: Output) -> anyhow::Result<()> {
    match command {
        TherapyCommand::Log {
            date,
            attended,
            note,
        } => {
            let id = device.log_therapy(date.as_deref(), &attended, &note)?;
            out.print(&json!({ "id": id }), || format!("logged session {id}"))
        }
        TherapyCommand::List => {
            let sessions = device.therapy_sessions()?;
            out.print(&sessions, || {
                if sessions.is_empty() {
                    return "no sessions yet; log one with `kintsugi therapy log`".into();
                }
                sessions
                    .iter()
                    .map(|s| {
                        let note = if s.note.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", s.note)
                        };
                        format!("{}  {}  {}{note}", s.id, s.date, s.attended.join(" & "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

pub fn shared_list(device: &Device, out: Output) -> anyhow::Result<()> {
    let entries = device.shared_entries()?;
    let value: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "text": e.text,
                "mood": e.mood,
                "tags": e.tags,
                "created_at": timestamp(e.created_at),
                "shared_by": e.shared_by,
                "shared_at": timestamp(e.shared_at),
            })
        })
        .collect();
    out.print(&value, || {
        if entries.is_empty() {
            return "nothing shared yet; share an entry with `kintsugi journal share ID`".into();
        }
        entries
            .iter()
            .map(|e| {
                format!(
                    "{}  shared by {} on {}\n  {}",
                    e.id,
                    e.shared_by,
                    timestamp(e.shared_at),
                    e.text
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}
