//! Property test: random check-ins, therapy sessions, journal entries and shares on three
//! replicas (Alice's phone and tablet, Bob's phone) with random merges converge, and no typed
//! document loses an entry or a field; a week's check-in replaced concurrently on two devices
//! ends as one whole check-in, never a mix of both.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge};
use autosurgeon::Text;
use kintsugi_core::UnixMillis;
use kintsugi_core::docs::checkins::{self, Answers, TherapySession};
use kintsugi_core::docs::journal::{self, Entry};
use kintsugi_core::docs::shared::{self, SharedEntry};
use kintsugi_core::docs::{DocKind, genesis};
use kintsugi_core::week::IsoWeek;
use proptest::prelude::*;

const ALICE: &str = "a11ce";
const BOB: &str = "b0b";
const OWNERS: [&str; 3] = [ALICE, ALICE, BOB];

#[derive(Clone, Debug)]
enum Op {
    CheckIn {
        replica: usize,
        week: u8,
        trust: i64,
        conversations: i64,
    },
    Therapy {
        replica: usize,
        day: u8,
    },
    /// Alice's devices only: the journal is private to her.
    Journal {
        replica: usize,
        mood: i64,
    },
    Share {
        replica: usize,
        entry: usize,
    },
    Merge {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..4u8, 1..=10i64, 0..8i64).prop_map(
            |(replica, week, trust, conversations)| Op::CheckIn {
                replica,
                week,
                trust,
                conversations
            }
        ),
        (0..3usize, 1..28u8).prop_map(|(replica, day)| Op::Therapy { replica, day }),
        (0..2usize, 1..=5i64).prop_map(|(replica, mood)| Op::Journal { replica, mood }),
        (0..2usize, 0..8usize).prop_map(|(replica, entry)| Op::Share { replica, entry }),
        (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Merge { from, to }),
    ]
}

/// One device: its copies of the shared documents, and Alice's journal on her devices.
struct Replica {
    checkins: Automerge,
    shared: Automerge,
    journal: Option<Automerge>,
}

struct World {
    replicas: Vec<Replica>,
    /// Every check-in written, by (member, week): (trust, conversations).
    written: BTreeMap<(String, String), BTreeSet<(i64, i64)>>,
    sessions: BTreeSet<String>,
    entries: BTreeSet<String>,
    shared: BTreeSet<String>,
    time: i64,
}

fn doc(kind: DocKind, actor: u8) -> Automerge {
    let mut doc = genesis(kind);
    doc.set_actor(ActorId::from([actor; 16]));
    doc
}

fn edit<T>(
    doc: &mut Automerge,
    now: i64,
    f: impl FnOnce(&mut Transaction<'_>) -> kintsugi_core::Result<T>,
) -> T {
    doc.transact_with(|_| CommitOptions::default().with_time(now), f)
        .map_err(|f| f.error)
        .expect("edit")
        .result
}

fn merge(to: &mut Automerge, from: &Automerge) {
    let mut from = from.clone();
    to.merge(&mut from).expect("merge");
}

impl World {
    fn new() -> Self {
        let replicas = (0..3u8)
            .map(|i| Replica {
                checkins: doc(DocKind::Checkins, i + 1),
                shared: doc(DocKind::Shared, i + 1),
                journal: (i < 2).then(|| doc(DocKind::Journal, i + 1)),
            })
            .collect();
        World {
            replicas,
            written: BTreeMap::new(),
            sessions: BTreeSet::new(),
            entries: BTreeSet::new(),
            shared: BTreeSet::new(),
            time: 1,
        }
    }

    fn apply(&mut self, op: Op) {
        self.time += 1;
        let now = self.time;
        match op {
            Op::CheckIn {
                replica,
                week,
                trust,
                conversations,
            } => {
                let week = IsoWeek { year: 2026, week };
                let answers = Answers {
                    trust,
                    conversations,
                    closeness: Some(5),
                    forgiveness: None,
                    note: format!("note {now}"),
                };
                let member = OWNERS[replica];
                edit(&mut self.replicas[replica].checkins, now, |tx| {
                    checkins::record(tx, member, week, &answers, UnixMillis::from_millis(now))
                });
                self.written
                    .entry((member.to_string(), week.to_string()))
                    .or_default()
                    .insert((trust, conversations));
            }
            Op::Therapy { replica, day } => {
                let id = format!("t{}", self.sessions.len());
                let session = TherapySession {
                    date: format!("2026-02-{day:02}"),
                    attended: vec![],
                    note: Text::with_value("talked"),
                    logged_by: OWNERS[replica].to_string(),
                    at: UnixMillis::from_millis(now),
                };
                edit(&mut self.replicas[replica].checkins, now, |tx| {
                    checkins::log_session(tx, &id, &session)
                });
                self.sessions.insert(id);
            }
            Op::Journal { replica, mood } => {
                let id = format!("j{}", self.entries.len());
                let entry = Entry {
                    text: Text::with_value(format!("entry {id}")),
                    mood: Some(mood),
                    tags: vec!["t".into()],
                    created_at: UnixMillis::from_millis(now),
                    shared_at: None,
                };
                let journal = self.replicas[replica]
                    .journal
                    .as_mut()
                    .expect("alice's device");
                edit(journal, now, |tx| journal::write(tx, &id, &entry));
                self.entries.insert(id);
            }
            Op::Share { replica, entry } => {
                let journal = self.replicas[replica]
                    .journal
                    .as_mut()
                    .expect("alice's device");
                let ids: Vec<String> = journal::list(journal)
                    .expect("list")
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                let Some(id) = ids.get(entry % ids.len().max(1)).cloned() else {
                    return;
                };
                let original = journal::get(journal, &id).expect("entry");
                edit(journal, now, |tx| {
                    journal::mark_shared(tx, &id, UnixMillis::from_millis(now))
                });
                let copy = SharedEntry {
                    text: Text::with_value(original.text.as_str()),
                    mood: original.mood,
                    tags: original.tags,
                    created_at: original.created_at,
                    shared_by: ALICE.into(),
                    shared_at: UnixMillis::from_millis(now),
                };
                edit(&mut self.replicas[replica].shared, now, |tx| {
                    shared::put(tx, &id, &copy)
                });
                self.shared.insert(id);
            }
            Op::Merge { from, to } if from != to => {
                let source = (
                    self.replicas[from].checkins.clone(),
                    self.replicas[from].shared.clone(),
                    self.replicas[from].journal.clone(),
                );
                let target = &mut self.replicas[to];
                merge(&mut target.checkins, &source.0);
                merge(&mut target.shared, &source.1);
                if let (Some(to), Some(from)) = (target.journal.as_mut(), source.2.as_ref()) {
                    merge(to, from);
                }
            }
            Op::Merge { .. } => {}
        }
    }

    fn sync_all(&mut self) {
        for _ in 0..2 {
            for from in 0..3 {
                for to in 0..3 {
                    self.apply(Op::Merge { from, to });
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("KINTSUGI_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128),
        ..ProptestConfig::default()
    })]

    #[test]
    fn typed_documents_converge_without_losing_entries_or_fields(ops in proptest::collection::vec(op(), 1..40)) {
        let mut world = World::new();
        for op in ops {
            world.apply(op);
        }
        world.sync_all();

        for r in 1..3 {
            prop_assert_eq!(world.replicas[0].checkins.get_heads(), world.replicas[r].checkins.get_heads());
            prop_assert_eq!(world.replicas[0].shared.get_heads(), world.replicas[r].shared.get_heads());
        }
        let journals: Vec<&Automerge> = world.replicas.iter().filter_map(|r| r.journal.as_ref()).collect();
        prop_assert_eq!(journals[0].get_heads(), journals[1].get_heads());

        let list = checkins::checkins(&world.replicas[2].checkins).expect("checkins hydrate");
        let keys: BTreeSet<(String, String)> = list.iter().map(|c| (c.member.clone(), c.week.clone())).collect();
        prop_assert_eq!(&keys, &world.written.keys().cloned().collect::<BTreeSet<_>>(), "a check-in was lost");
        for c in &list {
            let written = &world.written[&(c.member.clone(), c.week.clone())];
            prop_assert!(written.contains(&(c.trust, c.conversations)), "check-in {:?} mixes two writes", c);
            prop_assert_eq!(c.closeness, Some(5));
            prop_assert!(c.note.as_str().starts_with("note "), "note kept");
        }
        let sessions: BTreeSet<String> = checkins::sessions(&world.replicas[2].checkins).expect("sessions").into_iter().map(|(id, _)| id).collect();
        prop_assert_eq!(&sessions, &world.sessions);
        let entries = journal::list(journals[0]).expect("journal hydrates");
        prop_assert_eq!(&entries.iter().map(|e| e.id.clone()).collect::<BTreeSet<_>>(), &world.entries);
        for e in &entries {
            prop_assert_eq!(e.text.clone(), format!("entry {}", e.id));
            prop_assert!(e.mood.is_some() && e.tags == vec!["t".to_string()]);
            prop_assert_eq!(e.shared, world.shared.contains(&e.id));
        }
        let names = BTreeMap::from([(ALICE.to_string(), "Alice".to_string())]).into_iter().collect();
        let seen = shared::list(&world.replicas[2].shared, &names).expect("shared hydrates");
        prop_assert_eq!(&seen.iter().map(|e| e.id.clone()).collect::<BTreeSet<_>>(), &world.shared);
        let copies_intact = seen.iter().all(|e| e.shared_by == "Alice" && e.text == format!("entry {}", e.id));
        prop_assert!(copies_intact, "shared copies keep their text and sharer");
    }
}
