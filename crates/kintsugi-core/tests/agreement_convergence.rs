//! Property test: random add/edit/approve/retire on three replicas (Alice's phone and tablet,
//! Bob's phone) with random merges always converge to the same boundaries and statuses, no
//! boundary or field is lost, and `agreed` never holds for a text a partner did not approve.
//! A replica that sees a boundary retired refuses to edit, approve or retire it and writes
//! nothing; one that has not seen the retirement yet still may, and both changes are kept.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge};
use kintsugi_core::UnixMillis;
use kintsugi_core::docs::agreement::{self, Status};
use kintsugi_core::docs::{DocKind, genesis};
use proptest::prelude::*;

const ALICE: &str = "a11ce";
const BOB: &str = "b0b";
/// Replica index -> the member it belongs to.
const OWNERS: [&str; 3] = [ALICE, ALICE, BOB];
const TEXTS: [&str; 5] = [
    "No contact with X",
    "No contact with X, including social media",
    "Absolutely no contact with X",
    "Phones stay unlocked",
    "We check in every Sunday",
];

#[derive(Clone, Debug)]
enum Op {
    Add {
        replica: usize,
        text: usize,
    },
    Edit {
        replica: usize,
        boundary: usize,
        text: usize,
    },
    Approve {
        replica: usize,
        boundary: usize,
    },
    Retire {
        replica: usize,
        boundary: usize,
    },
    Merge {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let replica = 0..3usize;
    prop_oneof![
        (replica.clone(), 0..TEXTS.len()).prop_map(|(replica, text)| Op::Add { replica, text }),
        (replica.clone(), 0..8usize, 0..TEXTS.len()).prop_map(|(replica, boundary, text)| {
            Op::Edit {
                replica,
                boundary,
                text,
            }
        }),
        (replica.clone(), 0..8usize)
            .prop_map(|(replica, boundary)| Op::Approve { replica, boundary }),
        (replica.clone(), 0..8usize)
            .prop_map(|(replica, boundary)| Op::Retire { replica, boundary }),
        (replica.clone(), replica).prop_map(|(from, to)| Op::Merge { from, to }),
    ]
}

struct World {
    replicas: Vec<Automerge>,
    /// Every (boundary, text) each member approved, by any of its replicas.
    approved: BTreeMap<&'static str, BTreeSet<(String, String)>>,
    /// Every boundary id ever added.
    added: BTreeSet<String>,
    time: i64,
}

impl World {
    fn new() -> Self {
        let replicas = (0..3u8)
            .map(|i| {
                let mut doc = genesis(DocKind::Agreement);
                doc.set_actor(ActorId::from([i + 1; 16]));
                doc
            })
            .collect::<Vec<_>>();
        let mut world = World {
            replicas,
            approved: BTreeMap::new(),
            added: BTreeSet::new(),
            time: 1,
        };
        // Each partner joined on their first device, as `init` and `join` do.
        world.edit(0, |tx, now| agreement::add_member(tx, ALICE, "Alice", now));
        world.edit(2, |tx, now| agreement::add_member(tx, BOB, "Bob", now));
        world
    }

    fn edit(
        &mut self,
        replica: usize,
        f: impl FnOnce(&mut Transaction<'_>, UnixMillis) -> kintsugi_core::Result<()>,
    ) {
        self.time += 1;
        let now = self.time;
        self.replicas[replica]
            .transact_with(
                |_| CommitOptions::default().with_time(now),
                |tx| f(tx, UnixMillis::from_millis(now)),
            )
            .map_err(|f| f.error)
            .expect("edit");
    }

    /// The boundary ids a replica knows, in a stable order.
    fn ids(&self, replica: usize) -> Vec<String> {
        agreement::list(&self.replicas[replica])
            .expect("list")
            .into_iter()
            .map(|b| b.id)
            .collect()
    }

    /// The `n`th boundary `replica` knows, wrapping around; none before the first is added.
    fn pick(&self, replica: usize, n: usize) -> Option<String> {
        let ids = self.ids(replica);
        ids.get(n % ids.len().max(1)).cloned()
    }

    fn text_of(&self, replica: usize, id: &str) -> String {
        agreement::list(&self.replicas[replica])
            .expect("list")
            .into_iter()
            .find(|b| b.id == id)
            .expect("boundary")
            .text
    }

    fn retired_on(&self, replica: usize, id: &str) -> bool {
        agreement::list(&self.replicas[replica])
            .expect("list")
            .into_iter()
            .any(|b| b.id == id && b.status == Status::Retired)
    }

    /// Edits a boundary as a device does: refused, with nothing written, where `replica` sees it
    /// retired; applied otherwise. Returns whether it was applied.
    fn change_boundary(
        &mut self,
        replica: usize,
        id: &str,
        f: impl FnOnce(&mut Transaction<'_>, UnixMillis) -> kintsugi_core::Result<()>,
    ) -> bool {
        if !self.retired_on(replica, id) {
            self.edit(replica, f);
            return true;
        }
        let heads = self.replicas[replica].get_heads();
        self.time += 1;
        let now = self.time;
        let refused = self.replicas[replica]
            .transact_with(
                |_| CommitOptions::default().with_time(now),
                |tx| f(tx, UnixMillis::from_millis(now)),
            )
            .map_err(|f| f.error);
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("is retired"), "not refused: {message:?}");
        assert_eq!(self.replicas[replica].get_heads(), heads, "a refusal wrote");
        false
    }

    fn record_approval(&mut self, member: &'static str, id: &str, text: &str) {
        let approved = self.approved.entry(member).or_default();
        approved.insert((id.to_string(), text.to_string()));
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Add { replica, text } => {
                let id = format!("b{}", self.added.len());
                let member = OWNERS[replica];
                self.edit(replica, |tx, now| {
                    agreement::add(tx, &id, TEXTS[text], "general", member, now)
                });
                self.record_approval(member, &id, TEXTS[text]);
                self.added.insert(id);
            }
            Op::Edit {
                replica,
                boundary,
                text,
            } => {
                let Some(id) = self.pick(replica, boundary) else {
                    return;
                };
                let member = OWNERS[replica];
                if self.change_boundary(replica, &id, |tx, now| {
                    agreement::edit(tx, &id, TEXTS[text], member, now)
                }) {
                    self.record_approval(member, &id, TEXTS[text]);
                }
            }
            Op::Approve { replica, boundary } => {
                let Some(id) = self.pick(replica, boundary) else {
                    return;
                };
                let member = OWNERS[replica];
                let text = self.text_of(replica, &id);
                if self.change_boundary(replica, &id, |tx, now| {
                    agreement::approve(tx, &id, member, now).map(|_| ())
                }) {
                    self.record_approval(member, &id, &text);
                }
            }
            Op::Retire { replica, boundary } => {
                let Some(id) = self.pick(replica, boundary) else {
                    return;
                };
                self.change_boundary(replica, &id, |tx, now| agreement::retire(tx, &id, now));
            }
            Op::Merge { from, to } if from != to => {
                let mut source = self.replicas[from].clone();
                self.replicas[to].merge(&mut source).expect("merge");
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
    fn replicas_converge_and_agreed_means_approved_by_both(ops in proptest::collection::vec(op(), 1..40)) {
        let mut world = World::new();
        for op in ops {
            world.apply(op);
        }
        world.sync_all();

        let views: Vec<_> = (0..3).map(|r| agreement::list(&world.replicas[r]).expect("list")).collect();
        let summary = |r: usize| views[r].iter().map(|b| (b.id.clone(), b.text.clone(), b.status, b.approved_by.clone())).collect::<Vec<_>>();
        prop_assert_eq!(summary(0), summary(1));
        prop_assert_eq!(summary(0), summary(2));
        prop_assert_eq!(world.replicas[0].get_heads(), world.replicas[2].get_heads());

        let ids: BTreeSet<String> = views[0].iter().map(|b| b.id.clone()).collect();
        prop_assert_eq!(&ids, &world.added, "a boundary was lost");
        for b in &views[0] {
            // Each of the three replicas may make the same edit concurrently, and each one's
            // insertion is kept: a text grows to at most three times the longest one typed.
            let longest = TEXTS.iter().map(|t| t.len()).max().unwrap_or(0);
            prop_assert!(!b.text.is_empty() && b.text.len() <= longest * 3, "text kept");
            prop_assert!(!b.category.is_empty(), "category kept");
            prop_assert!(!b.proposed_by.is_empty(), "proposer kept");
            if b.status == Status::Agreed {
                for member in [ALICE, BOB] {
                    let approved = world.approved.get(member).is_some_and(|set| set.contains(&(b.id.clone(), b.text.clone())));
                    prop_assert!(approved, "{} is agreed with text {:?} that {} never approved", b.id, b.text, member);
                }
            }
        }
    }
}
