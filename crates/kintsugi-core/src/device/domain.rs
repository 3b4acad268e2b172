//! The couple's tools beyond the agreement: weekly check-ins, the therapy log, sharing a journal
//! entry with the partner, progress, and the history of a document.

use std::collections::HashMap;

use automerge::ReadDoc;
use autosurgeon::Text;
use serde::Serialize;

use super::Device;
use crate::clock::UnixMillis;
use crate::docs::checkins::{self, Answers, CheckInView, SessionView, TherapySession};
use crate::docs::shared::{self, SharedEntry, SharedEntryView};
use crate::docs::{DocKind, agreement, journal};
use crate::error::{CoreError, Result};
use crate::progress::{self, Progress, WeekFigures};
use crate::week::{
    IsoWeek, date_of, format_date, parse_date, refuse_future_date, refuse_future_week,
};

/// One change in a document's history.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    /// Milliseconds since the epoch, as the author's device recorded it.
    pub at: UnixMillis,
    /// The partner whose device made the change.
    pub who: String,
    pub device: String,
    pub what: String,
}

impl Device {
    /// Records this partner's check-in for `week` (this week when `None`), replacing an earlier
    /// one for the same week. Returns the week.
    pub fn check_in(&self, week: Option<&str>, answers: Answers) -> Result<IsoWeek> {
        Ok(self.check_in_replacing(week, answers)?.0)
    }

    /// As [`Device::check_in`], with whether it replaced this partner's earlier check-in for
    /// the week.
    pub fn check_in_replacing(
        &self,
        week: Option<&str>,
        answers: Answers,
    ) -> Result<(IsoWeek, bool)> {
        let week = match week {
            Some(text) => refuse_future_week(IsoWeek::parse(text)?, self.now())?,
            None => IsoWeek::of_time(self.now()),
        };
        let answers = answers.check()?;
        let (member, now) = (self.replica.identity.member_key(), self.now());
        let replaced = self.edit(
            DocKind::Checkins,
            |_: &bool| format!("checked in for {week}"),
            |tx| {
                let replaced = checkins::exists(tx, &member, week);
                checkins::record(tx, &member, week, &answers, now)?;
                Ok(replaced)
            },
        )?;
        Ok((week, replaced))
    }

    pub fn checkins(&self) -> Result<Vec<CheckInView>> {
        let names = self.member_names()?;
        let list = self.replica.read(DocKind::Checkins, checkins::checkins)?;
        Ok(list
            .into_iter()
            .map(|c| CheckInView {
                name: name_of(&names, &c.member),
                week: c.week,
                trust: c.trust,
                conversations: c.conversations,
                closeness: c.closeness,
                forgiveness: c.forgiveness,
                note: c.note.as_str().to_string(),
            })
            .collect())
    }

    /// Logs a therapy session on `date` (today when `None`). `attended` names partners; empty
    /// means both, and is stored empty so a partner whose join has not synced yet still counts.
    pub fn log_therapy(
        &self,
        date: Option<&str>,
        attended: &[String],
        note: &str,
    ) -> Result<String> {
        let date = match date {
            Some(text) => refuse_future_date(parse_date(text)?, self.now())?,
            None => date_of(self.now()),
        };
        checkins::check_note(note)?;
        let names = self.member_names()?;
        let attended = attended
            .iter()
            .map(|name| member_named(&names, name))
            .collect::<Result<Vec<_>>>()?;
        let id = super::ops::new_entry_id();
        let session = TherapySession {
            date: format_date(date),
            attended,
            note: Text::with_value(note.trim()),
            logged_by: self.replica.identity.member_key(),
            at: self.now(),
        };
        self.edit(
            DocKind::Checkins,
            |_: &()| format!("logged therapy session {id}"),
            |tx| checkins::log_session(tx, &id, &session),
        )?;
        Ok(id)
    }

    pub fn therapy_sessions(&self) -> Result<Vec<SessionView>> {
        let names = self.member_names()?;
        let list = self.replica.read(DocKind::Checkins, checkins::sessions)?;
        Ok(list
            .into_iter()
            .map(|(id, s)| SessionView {
                id,
                date: s.date,
                attended: if s.attended.is_empty() {
                    let mut both: Vec<String> = names.values().cloned().collect();
                    both.sort();
                    both
                } else {
                    s.attended.iter().map(|m| name_of(&names, m)).collect()
                },
                note: s.note.as_str().to_string(),
                logged_by: name_of(&names, &s.logged_by),
            })
            .collect())
    }

    /// Copies one private journal entry into the shared document, for the partner to read.
    pub fn share_journal(&self, typed: &str) -> Result<String> {
        let (id, entry) = self.replica.read(DocKind::Journal, |doc| {
            let id = journal::resolve_id(doc, typed)?;
            Ok((id.clone(), journal::get(doc, &id)?))
        })?;
        let now = self.now();
        let copy = SharedEntry {
            text: Text::with_value(entry.text.as_str()),
            mood: entry.mood,
            tags: entry.tags,
            created_at: entry.created_at,
            shared_by: self.replica.identity.member_key(),
            shared_at: now,
        };
        self.edit(
            DocKind::Shared,
            |_: &()| format!("shared entry {id}"),
            |tx| shared::put(tx, &id, &copy),
        )?;
        self.edit(
            DocKind::Journal,
            |_: &()| format!("marked entry {id} shared"),
            |tx| journal::mark_shared(tx, &id, now),
        )?;
        Ok(id)
    }

    /// The journal entries either partner shared.
    pub fn shared_entries(&self) -> Result<Vec<SharedEntryView>> {
        let names = self.member_names()?;
        self.replica
            .read(DocKind::Shared, |doc| shared::list(doc, &names))
    }

    /// Each partner's weeks and where the couple stands against typical recovery ranges.
    pub fn progress(&self) -> Result<Progress> {
        let names = self.member_names()?;
        let list = self.replica.read(DocKind::Checkins, checkins::checkins)?;
        let sessions = self
            .replica
            .read(DocKind::Checkins, checkins::sessions)?
            .iter()
            // A session dated ahead (from an app that did not check) would stretch the chart.
            .filter(|(_, s)| {
                parse_date(&s.date).is_ok_and(|d| refuse_future_date(d, self.now()).is_ok())
            })
            .count();
        let mut by_member: Vec<(String, progress::PartnerWeeks)> = names
            .iter()
            .map(|(id, name)| (id.clone(), (name.clone(), Vec::new())))
            .collect();
        by_member.sort_by(|a, b| a.1.0.cmp(&b.1.0));
        for c in list {
            // The partner's device wrote these; a value out of range (an old or broken app, or
            // a hostile one) is left out rather than allowed to break both phones' progress.
            let answers = Answers {
                trust: c.trust,
                conversations: c.conversations,
                closeness: c.closeness,
                forgiveness: c.forgiveness,
                note: String::new(),
            };
            let week = IsoWeek::parse(&c.week).and_then(|w| refuse_future_week(w, self.now()));
            let (Ok(week), Ok(_)) = (week, answers.check()) else {
                tracing::warn!(week = %c.week, "a check-in with values out of range or in the future was left out of progress");
                continue;
            };
            let figures = WeekFigures {
                week: c.week.clone(),
                trust: c.trust,
                conversations: c.conversations,
                closeness: c.closeness,
                forgiveness: c.forgiveness,
            };
            match by_member.iter_mut().find(|(id, _)| *id == c.member) {
                Some((_, (_, weeks))) => weeks.push((week, figures)),
                None => {
                    by_member.push((c.member.clone(), (c.member.clone(), vec![(week, figures)])))
                }
            }
        }
        let partners = by_member.into_iter().map(|(_, p)| p).collect();
        Ok(progress::compute(
            partners,
            sessions,
            IsoWeek::of_time(self.now()),
        ))
    }

    /// Who changed what and when in a document, oldest first.
    pub fn history(&self, kind: DocKind) -> Result<Vec<HistoryEntry>> {
        let authors = self.authors()?;
        self.replica.read(kind, |doc| {
            let mut entries: Vec<HistoryEntry> = doc
                .get_changes(&[])
                .into_iter()
                .filter_map(|c| authors.entry(&c))
                .collect();
            // Causal order interleaves devices; people read history by time.
            entries.sort_by_key(|e| e.at);
            Ok(entries)
        })
    }

    /// What the changes `hashes` of `kind` did and who made them, in the order given (as
    /// live sync reports them); a hash this device does not hold is left out.
    pub fn describe_changes(
        &self,
        kind: DocKind,
        hashes: &[automerge::ChangeHash],
    ) -> Result<Vec<HistoryEntry>> {
        let authors = self.authors()?;
        self.replica.read(kind, |doc| {
            Ok(hashes
                .iter()
                .filter_map(|hash| doc.get_change_by_hash(hash))
                .filter_map(|c| authors.entry(&c))
                .collect())
        })
    }

    fn authors(&self) -> Result<Authors> {
        self.replica.read(DocKind::Agreement, |doc| {
            Ok(Authors {
                names: agreement::member_names(doc)?,
                devices: agreement::device_members(doc)?,
            })
        })
    }

    /// Partner names by member id, from the agreement.
    fn member_names(&self) -> Result<HashMap<String, String>> {
        self.replica
            .read(DocKind::Agreement, agreement::member_names)
    }
}

/// Who wrote a change: partner names by member id, and members by device (actor) id.
struct Authors {
    names: HashMap<String, String>,
    devices: HashMap<String, String>,
}

impl Authors {
    /// The change as a history entry; `None` for the documents' shared zero-actor skeleton.
    fn entry(&self, change: &automerge::Change) -> Option<HistoryEntry> {
        if change.actor_id().to_bytes() == [0u8; 16] {
            return None;
        }
        let device = change.actor_id().to_hex_string();
        let who = self
            .devices
            .get(&device)
            .map(|m| name_of(&self.names, m))
            .unwrap_or_else(|| "unknown device".into());
        Some(HistoryEntry {
            at: UnixMillis::from_millis(change.timestamp()),
            who,
            device,
            what: change.message().unwrap_or_default().to_string(),
        })
    }
}

fn name_of(names: &HashMap<String, String>, member: &str) -> String {
    names
        .get(member)
        .cloned()
        .unwrap_or_else(|| member.to_string())
}

/// The member id of the partner called `name` (case-insensitive, beyond ASCII too: "élodie" is
/// Élodie).
fn member_named(names: &HashMap<String, String>, name: &str) -> Result<String> {
    let wanted = name.trim().to_lowercase();
    names
        .iter()
        .find(|(_, n)| n.to_lowercase() == wanted)
        .map(|(id, _)| id.clone())
        .ok_or_else(|| {
            let mut known: Vec<&str> = names.values().map(String::as_str).collect();
            known.sort();
            CoreError::InvalidInput(format!(
                "no partner called {name:?}; the partners are {}",
                known.join(" and ")
            ))
        })
}
