//! Weekly check-ins and the therapy log, in the shared check-ins document.
//!
//! A check-in is keyed by `member/week` (e.g. `3fa0…/2026-W40`), so a second check-in by the
//! same partner for the same week replaces the first, and the two partners' check-ins for one
//! week never collide. Therapy sessions are keyed by a random id.

use std::collections::HashMap;

use autosurgeon::{Doc, Hydrate, ReadDoc, Reconcile, Text, reconcile_prop};
use serde::Serialize;

use crate::clock::UnixMillis;
use crate::docs::agreement::reconcile_error;
use crate::docs::root_map;
use crate::error::{CoreError, Result};
use crate::week::IsoWeek;

/// Longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 5000;

/// One partner's answers for one ISO week.
#[derive(Clone, Debug, PartialEq, Hydrate, Reconcile)]
pub struct CheckIn {
    /// Member id (hex).
    pub member: String,
    /// ISO week, `2026-W40`.
    pub week: String,
    /// How much I trust my partner this week, 1-10.
    pub trust: i64,
    /// Honest conversations about the relationship this week.
    pub conversations: i64,
    /// Emotional closeness, 1-10.
    pub closeness: Option<i64>,
    /// Forgiveness, 1-10.
    pub forgiveness: Option<i64>,
    pub note: Text,
    /// Milliseconds since the Unix epoch.
    pub at: UnixMillis,
}

/// One couples-therapy session.
#[derive(Clone, Debug, Hydrate, Reconcile)]
pub struct TherapySession {
    /// ISO date, `2026-01-08`.
    pub date: String,
    /// Member ids (hex) of those who attended; empty means both partners.
    pub attended: Vec<String>,
    pub note: Text,
    /// Member id (hex) of who logged it.
    pub logged_by: String,
    pub at: UnixMillis,
}

/// The answers of a check-in, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Answers {
    pub trust: i64,
    pub conversations: i64,
    pub closeness: Option<i64>,
    pub forgiveness: Option<i64>,
    pub note: String,
}

impl Answers {
    /// Checks every answer at the edge, before anything is written.
    pub fn check(self) -> Result<Self> {
        scale("trust", Some(self.trust))?;
        scale("closeness", self.closeness)?;
        scale("forgiveness", self.forgiveness)?;
        if !(0..=100).contains(&self.conversations) {
            return Err(CoreError::InvalidInput(format!(
                "conversations is the number of honest conversations this week, 0 to 100, not {}",
                self.conversations
            )));
        }
        check_note(&self.note)?;
        Ok(self)
    }
}

fn scale(what: &str, value: Option<i64>) -> Result<()> {
    match value {
        Some(v) if !(1..=10).contains(&v) => Err(CoreError::InvalidInput(format!(
            "{what} is a score from 1 to 10, not {v}"
        ))),
        _ => Ok(()),
    }
}

pub fn check_note(note: &str) -> Result<()> {
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(CoreError::InvalidInput(format!(
            "a note is at most {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok(())
}

/// Records (or replaces) `member`'s check-in for `week`.
/// Whether `member` has a check-in for `week`.
pub fn exists(doc: &impl ReadDoc, member: &str, week: IsoWeek) -> bool {
    let Ok(Some((_, checkins))) = doc.get(&automerge::ROOT, "checkins") else {
        return false;
    };
    matches!(doc.get(&checkins, format!("{member}/{week}")), Ok(Some(_)))
}

pub fn record(
    tx: &mut impl Doc,
    member: &str,
    week: IsoWeek,
    answers: &Answers,
    now: UnixMillis,
) -> Result<String> {
    let checkins = root_map(tx, "checkins")?;
    let key = format!("{member}/{week}");
    let checkin = CheckIn {
        member: member.to_string(),
        week: week.to_string(),
        trust: answers.trust,
        conversations: answers.conversations,
        closeness: answers.closeness,
        forgiveness: answers.forgiveness,
        note: Text::with_value(&answers.note),
        at: now,
    };
    // A fresh object, not an update of the old one in place: two devices of one partner
    // replacing the same week concurrently then leave one whole check-in, never a mix of both.
    tx.put_object(&checkins, key.as_str(), automerge::ObjType::Map)
        .map_err(|e| CoreError::Shape(e.to_string()))?;
    reconcile_prop(tx, &checkins, key.as_str(), &checkin).map_err(reconcile_error)?;
    Ok(key)
}

/// Logs a therapy session under `id`.
pub fn log_session(tx: &mut impl Doc, id: &str, session: &TherapySession) -> Result<()> {
    let therapy = root_map(tx, "therapy")?;
    reconcile_prop(tx, &therapy, id, session).map_err(reconcile_error)
}

/// Every check-in, by week then member.
pub fn checkins(doc: &impl ReadDoc) -> Result<Vec<CheckIn>> {
    let map: HashMap<String, CheckIn> = crate::docs::hydrate_entries(doc, "checkins")?;
    let mut list: Vec<CheckIn> = map.into_values().collect();
    list.sort_by(|a, b| (&a.week, &a.member).cmp(&(&b.week, &b.member)));
    Ok(list)
}

/// Every therapy session with its id, by date.
pub fn sessions(doc: &impl ReadDoc) -> Result<Vec<(String, TherapySession)>> {
    let map: HashMap<String, TherapySession> = crate::docs::hydrate_entries(doc, "therapy")?;
    let mut list: Vec<(String, TherapySession)> = map.into_iter().collect();
    list.sort_by(|a, b| (&a.1.date, &a.0).cmp(&(&b.1.date, &b.0)));
    Ok(list)
}

/// A check-in as people see it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckInView {
    pub name: String,
    pub week: String,
    pub trust: i64,
    pub conversations: i64,
    pub closeness: Option<i64>,
    pub forgiveness: Option<i64>,
    pub note: String,
}

/// A therapy session as people see it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub date: String,
    pub attended: Vec<String>,
    pub note: String,
    pub logged_by: String,
}
