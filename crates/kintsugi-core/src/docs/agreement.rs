//! The boundaries agreement: the boundaries and expectations both partners agree to.
//!
//! Boundaries live in a map keyed by a random id (never a list two phones append to), and each
//! text is an Automerge `Text`, edited with `update_text`, so two offline edits of the same
//! boundary merge character by character. Status is derived, never stored: a boundary is
//! `agreed` only while every partner's approval records exactly the current text, so
//! concurrent edits and approvals can never leave a stored status inconsistent.

use std::collections::HashMap;

use automerge::ObjType;
use autosurgeon::{Doc, ReadDoc};
use autosurgeon::{Hydrate, Reconcile, Text, reconcile_prop};
use serde::Serialize;

use crate::clock::UnixMillis;
use crate::docs::{resolve_key, root_map};
use crate::error::{CoreError, Result};

/// Longest boundary text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// How long a boundary's text may grow by typing into it: an app's editor may hold a written,
/// long-form agreement, where a boundary given whole (`add`, `edit`) stays a line or a few.
pub const MAX_TYPED_CHARS: usize = 200_000;

/// One edit of a text as an editor reports it: delete `delete` characters at `at`, then insert
/// `insert` there (positions and lengths in Unicode code points).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextSplice {
    pub at: usize,
    pub delete: usize,
    pub insert: String,
}

/// One boundary or expectation as stored in the document.
#[derive(Clone, Debug, Hydrate, Reconcile)]
pub struct Boundary {
    pub text: Text,
    pub category: String,
    /// Member id (hex) of the partner who proposed it.
    pub proposed_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: UnixMillis,
    /// Member id (hex) -> the approval that member gave.
    pub approvals: HashMap<String, Approval>,
    pub retired_at: Option<UnixMillis>,
}

/// A partner's approval of one exact text.
#[derive(Clone, Debug, PartialEq, Hydrate, Reconcile)]
pub struct Approval {
    pub text: String,
    pub at: UnixMillis,
}

/// A partner of the space, as recorded in the agreement when they joined.
#[derive(Clone, Debug, Hydrate, Reconcile)]
pub struct Member {
    pub name: String,
    pub joined_at: UnixMillis,
}

/// Derived from the data, never stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Proposed,
    Agreed,
    Retired,
}

impl Status {
    /// The word the CLI and JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::Agreed => "agreed",
            Status::Retired => "retired",
        }
    }
}

/// What a person sees of a boundary.
#[derive(Clone, Debug, Serialize)]
pub struct BoundaryView {
    pub id: String,
    pub text: String,
    pub category: String,
    pub status: Status,
    pub proposed_by: String,
    pub approved_by: Vec<String>,
    pub created_at: UnixMillis,
}

/// Validates a boundary text at the edge, before anything is written.
pub fn check_text(text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CoreError::InvalidInput("a boundary needs some text".into()));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(CoreError::InvalidInput(format!(
            "a boundary is at most {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(text.to_string())
}

/// Adds a boundary proposed (and so approved) by `member`.
pub fn add(
    tx: &mut impl Doc,
    id: &str,
    text: &str,
    category: &str,
    member: &str,
    now: UnixMillis,
) -> Result<()> {
    let boundaries = root_map(tx, "boundaries")?;
    let boundary = Boundary {
        text: Text::with_value(text),
        category: category.to_string(),
        proposed_by: member.to_string(),
        created_at: now,
        approvals: HashMap::from([(
            member.to_string(),
            Approval {
                text: text.to_string(),
                at: now,
            },
        )]),
        retired_at: None,
    };
    reconcile_prop(tx, &boundaries, id, &boundary).map_err(reconcile_error)
}

/// Refuses to change a boundary this device sees as retired: retiring keeps it as it was.
pub fn check_not_retired(doc: &impl ReadDoc, id: &str) -> Result<()> {
    let boundary = boundary_obj(doc, id)?;
    check_obj_not_retired(doc, &boundary, id)
}

/// `check_not_retired` on a boundary already looked up: reads only its `retired_at`.
fn check_obj_not_retired(doc: &impl ReadDoc, boundary: &automerge::ObjId, id: &str) -> Result<()> {
    let retired = match doc.get(boundary, "retired_at") {
        Ok(Some((automerge::Value::Scalar(value), _))) => !value.is_null(),
        Ok(Some(_)) => true,
        Ok(None) => false,
        Err(error) => return Err(CoreError::Shape(error.to_string())),
    };
    if retired {
        return Err(CoreError::InvalidInput(format!(
            "boundary {id} is retired; it is kept as it was, so propose a new one with `kintsugi boundary add`"
        )));
    }
    Ok(())
}

/// Replaces the text through `update_text` (a character diff) and records that the editor
/// approves the new text; the partner must approve again. Refused once retired.
pub fn edit(tx: &mut impl Doc, id: &str, text: &str, member: &str, now: UnixMillis) -> Result<()> {
    let (boundary, text_obj) = writable_text(tx, id)?;
    tx.update_text(&text_obj, text)
        .map_err(|e| CoreError::Shape(e.to_string()))?;
    approve_text(tx, &boundary, id, text, member, now)
}

/// Types `splices` into a boundary's text, in order. The typist's approval is not renewed: the
/// text being typed is a draft until they approve it. Refused once retired, or when a splice
/// reaches past the end of the text or the text would grow past `MAX_TYPED_CHARS`.
pub fn type_text(tx: &mut impl Doc, id: &str, splices: &[TextSplice]) -> Result<()> {
    let (_, text_obj) = writable_text(tx, id)?;
    let mut length = tx.length(&text_obj);
    for splice in splices {
        if splice.at.saturating_add(splice.delete) > length {
            return Err(CoreError::InvalidInput(format!(
                "an edit at character {} deleting {} reaches past the end of the text ({length} characters)",
                splice.at, splice.delete
            )));
        }
        length = length - splice.delete + splice.insert.chars().count();
        if length > MAX_TYPED_CHARS {
            return Err(CoreError::InvalidInput(format!(
                "a boundary is at most {MAX_TYPED_CHARS} characters"
            )));
        }
        tx.splice_text(&text_obj, splice.at, splice.delete as isize, &splice.insert)
            .map_err(|e| CoreError::Shape(e.to_string()))?;
    }
    Ok(())
}

/// A boundary that is not retired and its text object.
fn writable_text(tx: &impl Doc, id: &str) -> Result<(automerge::ObjId, automerge::ObjId)> {
    let boundary = boundary_obj(tx, id)?;
    check_obj_not_retired(tx, &boundary, id)?;
    match tx.get(&boundary, "text") {
        Ok(Some((automerge::Value::Object(ObjType::Text), obj))) => Ok((boundary, obj)),
        _ => Err(CoreError::Shape(format!("boundary {id} has no text"))),
    }
}

/// Records that `member` approves the boundary's current text. Refused once retired.
/// Records `member`'s approval of the boundary's current text; returns false, writing
/// nothing, when they approved exactly this text already.
pub fn approve(tx: &mut impl Doc, id: &str, member: &str, now: UnixMillis) -> Result<bool> {
    let (boundary, text_obj) = writable_text(tx, id)?;
    let current = tx
        .text(&text_obj)
        .map_err(|e| CoreError::Shape(e.to_string()))?;
    if approved_text(tx, &boundary, member).as_deref() == Some(current.as_str()) {
        return Ok(false);
    }
    approve_text(tx, &boundary, id, &current, member, now)?;
    Ok(true)
}

/// The text `member` last approved on `boundary`, if any.
fn approved_text(doc: &impl ReadDoc, boundary: &automerge::ObjId, member: &str) -> Option<String> {
    let approvals = match doc.get(boundary, "approvals") {
        Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => obj,
        _ => return None,
    };
    let approval = match doc.get(&approvals, member) {
        Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => obj,
        _ => return None,
    };
    match doc.get(&approval, "text") {
        Ok(Some((automerge::Value::Scalar(text), _))) => text.as_str().map(str::to_string),
        _ => None,
    }
}

/// Retires a boundary: it stays in the agreement and its history, marked retired. Retiring
/// it again is refused, so the first `retired_at` stands.
pub fn retire(tx: &mut impl Doc, id: &str, now: UnixMillis) -> Result<()> {
    let boundary = boundary_obj(tx, id)?;
    check_obj_not_retired(tx, &boundary, id)?;
    tx.put(&boundary, "retired_at", now)
        .map_err(|e| CoreError::Shape(e.to_string()))
}

/// Records a partner in the agreement, so status can ask for every partner's approval.
pub fn add_member(tx: &mut impl Doc, member: &str, name: &str, now: UnixMillis) -> Result<()> {
    let members = root_map(tx, "members")?;
    reconcile_prop(
        tx,
        &members,
        member,
        &Member {
            name: name.to_string(),
            joined_at: now,
        },
    )
    .map_err(reconcile_error)
}

/// Records which member a device (its Automerge actor) belongs to, for `history`.
pub fn add_device(tx: &mut impl Doc, device: &str, member: &str) -> Result<()> {
    let devices = root_map(tx, "devices")?;
    tx.put(&devices, device, member)
        .map_err(|e| CoreError::Shape(e.to_string()))
}

/// Member names by member id.
pub fn member_names(doc: &impl ReadDoc) -> Result<HashMap<String, String>> {
    let members: HashMap<String, Member> = crate::docs::hydrate_entries(doc, "members")?;
    Ok(members.into_iter().map(|(id, m)| (id, m.name)).collect())
}

/// Member ids by device id.
pub fn device_members(doc: &impl ReadDoc) -> Result<HashMap<String, String>> {
    crate::docs::hydrate_entries(doc, "devices")
}

/// Every boundary, oldest first, with derived status and names.
pub fn list(doc: &impl ReadDoc) -> Result<Vec<BoundaryView>> {
    let boundaries: HashMap<String, Boundary> = crate::docs::hydrate_entries(doc, "boundaries")?;
    let members: HashMap<String, Member> = crate::docs::hydrate_entries(doc, "members")?;
    let name = |id: &str| {
        members
            .get(id)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut views: Vec<BoundaryView> = boundaries
        .into_iter()
        .map(|(id, b)| {
            let text = b.text.as_str().to_string();
            let mut approved_by: Vec<String> = b
                .approvals
                .iter()
                .filter(|(_, a)| a.text == text)
                .map(|(m, _)| name(m))
                .collect();
            approved_by.sort();
            BoundaryView {
                status: status(&b, &members),
                proposed_by: name(&b.proposed_by),
                category: b.category,
                created_at: b.created_at,
                approved_by,
                text,
                id,
            }
        })
        .collect();
    views.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(views)
}

/// `agreed` only while there are two partners and each approved exactly the current text.
pub fn status(boundary: &Boundary, members: &HashMap<String, Member>) -> Status {
    if boundary.retired_at.is_some() {
        return Status::Retired;
    }
    let current = boundary.text.as_str();
    let all_approved = members.len() >= 2
        && members
            .keys()
            .all(|m| boundary.approvals.get(m).is_some_and(|a| a.text == current));
    if all_approved {
        Status::Agreed
    } else {
        Status::Proposed
    }
}

/// Resolves a full id or a unique prefix of one, as people type them.
pub fn resolve_id(doc: &impl ReadDoc, typed: &str) -> Result<String> {
    resolve_key(doc, "boundaries", typed, "boundary", "boundary list")
}

fn boundary_obj(doc: &impl ReadDoc, id: &str) -> Result<automerge::ObjId> {
    let boundaries = root_map(doc, "boundaries")?;
    match doc.get(&boundaries, id) {
        Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => Ok(obj),
        _ => Err(CoreError::UnknownId {
            what: "boundary",
            id: id.to_string(),
            list: "boundary list",
        }),
    }
}

fn approve_text(
    tx: &mut impl Doc,
    boundary: &automerge::ObjId,
    id: &str,
    text: &str,
    member: &str,
    now: UnixMillis,
) -> Result<()> {
    let shape = |e: automerge::AutomergeError| CoreError::Shape(e.to_string());
    let approvals = match tx.get(boundary, "approvals") {
        Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => obj,
        _ => {
            return Err(CoreError::Shape(format!("boundary {id} has no approvals")));
        }
    };
    // Written field by field, as `Approval` is shaped: reconciling the struct would first
    // read back every approval of the boundary.
    let approval = match tx.get(&approvals, member) {
        Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => obj,
        _ => tx
            .put_object(&approvals, member, ObjType::Map)
            .map_err(shape)?,
    };
    tx.put(&approval, "text", text).map_err(shape)?;
    tx.put(&approval, "at", now).map_err(shape)
}

pub(crate) fn hydrate_error(e: autosurgeon::HydrateError) -> CoreError {
    CoreError::Shape(e.to_string())
}

pub(crate) fn reconcile_error(e: autosurgeon::ReconcileError) -> CoreError {
    CoreError::Shape(format!("could not write it: {e}"))
}
