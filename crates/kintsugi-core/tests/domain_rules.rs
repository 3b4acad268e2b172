//! The rules of docs/domain.md that need no device: validation ranges at the edge (§4), id
//! resolution (§4), and how progress reads check-ins against the typical bands (§5). The table
//! mapping every rule of domain.md to its test is in docs/reliability.md.

use automerge::transaction::CommitOptions;
use kintsugi_core::UnixMillis;
use kintsugi_core::docs::agreement::{self, check_text};
use kintsugi_core::docs::checkins::{Answers, MAX_NOTE_CHARS, check_note};
use kintsugi_core::docs::journal::check_entry;
use kintsugi_core::docs::{DocKind, genesis};
use kintsugi_core::progress::{
    CLOSENESS, CONVERSATIONS, Progress, THERAPY, TRUST, TypicalRange, Verdict, WeekFigures, compute,
};
use kintsugi_core::week::{IsoWeek, parse_date};

fn answers(trust: i64, conversations: i64, closeness: Option<i64>) -> Answers {
    Answers {
        trust,
        conversations,
        closeness,
        forgiveness: closeness,
        note: String::new(),
    }
}

fn message<T: std::fmt::Debug>(result: kintsugi_core::Result<T>) -> String {
    result.expect_err("refused").to_string()
}

#[test]
fn scores_take_1_to_10_and_closeness_and_forgiveness_are_optional() {
    for score in [1, 10] {
        assert!(answers(score, 0, Some(score)).check().is_ok(), "{score}");
    }
    assert!(answers(5, 0, None).check().is_ok(), "closeness optional");
    assert_eq!(
        message(answers(11, 1, None).check()),
        "trust is a score from 1 to 10, not 11"
    );
    assert!(message(answers(0, 1, None).check()).contains("trust is a score from 1 to 10"));
    for bad in [0, 11] {
        let closeness = Answers {
            closeness: Some(bad),
            ..answers(5, 1, None)
        };
        assert!(message(closeness.check()).contains("closeness"), "{bad}");
        let forgiveness = Answers {
            forgiveness: Some(bad),
            ..answers(5, 1, None)
        };
        assert!(
            message(forgiveness.check()).contains("forgiveness"),
            "{bad}"
        );
    }
}

#[test]
fn conversations_take_0_to_100() {
    for ok in [0, 100] {
        assert!(answers(5, ok, None).check().is_ok(), "{ok}");
    }
    for bad in [-1, 101] {
        assert!(
            message(answers(5, bad, None).check()).contains("0 to 100"),
            "{bad}"
        );
    }
}

#[test]
fn notes_take_at_most_5000_characters() {
    assert!(
        check_note(&"é".repeat(MAX_NOTE_CHARS)).is_ok(),
        "counted in characters"
    );
    assert!(message(check_note(&"a".repeat(MAX_NOTE_CHARS + 1))).contains("5000"));
    let long_note = Answers {
        note: "a".repeat(MAX_NOTE_CHARS + 1),
        ..answers(5, 1, None)
    };
    assert!(long_note.check().is_err(), "a check-in note too");
}

#[test]
fn weeks_take_three_spellings_and_week_53_only_where_it_exists() {
    let want = IsoWeek {
        year: 2026,
        week: 40,
    };
    for spelling in ["2026-W40", "2026-w40", "2026W40", " 2026-W40 "] {
        assert_eq!(IsoWeek::parse(spelling).expect(spelling), want);
    }
    assert!(IsoWeek::parse("2026-W53").is_ok(), "2026 has 53 weeks");
    assert!(message(IsoWeek::parse("2025-W53")).starts_with("2025 has no week 53"));
    for bad in ["2026-W00", "2026-W54", "W40", "2026-40", "next week"] {
        assert!(IsoWeek::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn dates_are_year_month_day() {
    assert!(parse_date("2026-01-08").is_ok());
    for bad in ["08/01/2026", "2026-02-30", "2026-13-01", "today"] {
        let text = message(parse_date(bad));
        assert!(text.ends_with("is not a date like 2026-01-08"), "{text}");
    }
}

#[test]
fn boundary_text_is_trimmed_non_empty_and_at_most_2000_characters() {
    assert_eq!(check_text("  Home by 11  ").expect("text"), "Home by 11");
    assert_eq!(message(check_text(" \n\t ")), "a boundary needs some text");
    assert!(check_text(&"ü".repeat(2000)).is_ok());
    assert!(message(check_text(&"a".repeat(2001))).contains("2000"));
}

#[test]
fn journal_text_is_non_empty_and_at_most_20000_characters_with_mood_1_to_5() {
    assert!(check_entry(&"a".repeat(20_000), Some(1)).is_ok());
    assert!(check_entry("ok", Some(5)).is_ok() && check_entry("ok", None).is_ok());
    assert!(message(check_entry("   ", None)).contains("needs some text"));
    assert!(message(check_entry(&"a".repeat(20_001), None)).contains("20000"));
    for mood in [0, 6] {
        assert!(
            message(check_entry("ok", Some(mood))).contains("mood"),
            "{mood}"
        );
    }
}

#[test]
fn an_id_is_its_full_form_or_a_unique_prefix_and_an_exact_id_wins() {
    let mut doc = genesis(DocKind::Agreement);
    doc.transact_with(
        |_| CommitOptions::default(),
        |tx| {
            for id in ["abc", "abcd", "f00d"] {
                agreement::add(
                    tx,
                    id,
                    "Some text",
                    "general",
                    "m",
                    UnixMillis::from_millis(1),
                )?;
            }
            Ok::<_, kintsugi_core::CoreError>(())
        },
    )
    .map_err(|f| f.error)
    .expect("add");
    assert_eq!(agreement::resolve_id(&doc, "abc").expect("exact"), "abc");
    assert_eq!(agreement::resolve_id(&doc, "abcd").expect("full"), "abcd");
    assert_eq!(agreement::resolve_id(&doc, "f0").expect("prefix"), "f00d");
    assert_eq!(
        message(agreement::resolve_id(&doc, "ab")),
        "ab matches several; type more of the id"
    );
    assert_eq!(
        message(agreement::resolve_id(&doc, "99")),
        "no boundary with id 99; list them with `kintsugi boundary list`"
    );
    assert!(
        agreement::resolve_id(&doc, "  ").is_err(),
        "empty is unknown"
    );
}

/// The bands of domain.md §5 at weeks 0, 13, 26, 52 and 78, rounded as the table rounds them.
#[test]
fn bands_match_the_table_in_domain_md() {
    type Row = (&'static TypicalRange, [(f64, f64); 5]);
    let table: [Row; 4] = [
        (
            &TRUST,
            [(2.0, 3.0), (2.8, 5.5), (3.7, 8.0), (5.3, 8.0), (7.0, 8.0)],
        ),
        (
            &CONVERSATIONS,
            [(1.0, 1.0), (2.5, 4.0), (4.0, 4.0), (4.0, 4.0), (4.0, 4.0)],
        ),
        (
            &CLOSENESS,
            [
                (0.0, 0.0),
                (7.5, 25.0),
                (15.0, 50.0),
                (30.0, 50.0),
                (30.0, 50.0),
            ],
        ),
        (
            &THERAPY,
            [
                (0.0, 0.0),
                (2.0, 12.0),
                (4.0, 12.0),
                (8.0, 12.0),
                (8.0, 12.0),
            ],
        ),
    ];
    for (range, bands) in table {
        for (weeks, (low, high)) in [0.0, 13.0, 26.0, 52.0, 78.0].into_iter().zip(bands) {
            let (got_low, got_high) = range.band(weeks);
            let near = |a: f64, b: f64| (a - b).abs() < 0.051;
            assert!(
                near(got_low, low) && near(got_high, high),
                "{} at week {weeks}: {got_low:.2}-{got_high:.2}, the table says {low}-{high}",
                range.measure
            );
        }
    }
    assert_eq!(
        TRUST.band(-3.0),
        TRUST.band(0.0),
        "weeks before 0 read as 0"
    );
}

fn week(n: u8) -> IsoWeek {
    IsoWeek {
        year: 2026,
        week: n,
    }
}

fn figures(
    n: u8,
    trust: i64,
    conversations: i64,
    closeness: Option<i64>,
) -> (IsoWeek, WeekFigures) {
    let figures = WeekFigures {
        week: week(n).to_string(),
        trust,
        conversations,
        closeness,
        forgiveness: Some(7),
    };
    (week(n), figures)
}

fn verdict(progress: &Progress, partner: usize, measure: &str) -> Option<Verdict> {
    progress.partners[partner]
        .standing
        .iter()
        .find(|s| s.measure == measure)
        .map(|s| s.verdict)
}

#[test]
fn band_edges_are_inclusive() {
    // Week 0: trust 2-3, conversations 1-1.
    let at = |trust, conversations| {
        let p = compute(
            vec![("A".into(), vec![figures(1, trust, conversations, None)])],
            0,
            week(1),
        );
        (verdict(&p, 0, "trust"), verdict(&p, 0, "conversations"))
    };
    let within = Some(Verdict::WithinTypical);
    assert_eq!(at(2, 1), (within, within), "the low edge");
    assert_eq!(at(3, 1).0, within, "the high edge");
    assert_eq!(
        at(1, 0),
        (Some(Verdict::BelowTypical), Some(Verdict::BelowTypical))
    );
    assert_eq!(
        at(4, 2),
        (Some(Verdict::AheadOfTypical), Some(Verdict::AheadOfTypical))
    );
}

#[test]
fn more_than_4_conversations_a_week_reads_as_ahead() {
    let p = compute(
        vec![
            (
                "A".into(),
                vec![figures(1, 3, 1, None), figures(27, 8, 5, None)],
            ),
            (
                "B".into(),
                vec![figures(1, 3, 1, None), figures(27, 8, 4, None)],
            ),
        ],
        0,
        week(27),
    );
    assert_eq!(
        verdict(&p, 0, "conversations"),
        Some(Verdict::AheadOfTypical)
    );
    assert_eq!(
        verdict(&p, 1, "conversations"),
        Some(Verdict::WithinTypical)
    );
}

#[test]
fn standing_is_read_at_each_partners_latest_week_from_the_couples_first() {
    let alice = vec![figures(5, 3, 1, Some(4)), figures(1, 2, 1, Some(4))];
    let bob = vec![figures(9, 6, 3, None), figures(3, 2, 1, Some(5))];
    let p = compute(
        vec![("Alice".into(), alice), ("Bob".into(), bob)],
        0,
        week(9),
    );
    assert_eq!(
        p.first_week.as_deref(),
        Some("2026-W01"),
        "the earliest of either"
    );
    let bob = &p.partners[1];
    let trust = bob
        .standing
        .iter()
        .find(|s| s.measure == "trust")
        .expect("trust");
    assert_eq!(
        (trust.value, trust.weeks_in),
        (6.0, 8),
        "latest value, weeks since W01"
    );
    let measures: Vec<&str> = bob.standing.iter().map(|s| s.measure).collect();
    assert_eq!(
        measures,
        ["trust", "conversations"],
        "no closeness without it at both ends; forgiveness is not rated"
    );
    let alice = &p.partners[0];
    let closeness = alice.standing.iter().find(|s| s.measure == "closeness");
    assert_eq!(closeness.map(|s| (s.value, s.weeks_in)), Some((0.0, 4)));
    assert_eq!(
        alice
            .weeks
            .iter()
            .map(|w| w.week.as_str())
            .collect::<Vec<_>>(),
        ["2026-W01", "2026-W05"],
        "weeks sorted"
    );
}

#[test]
fn closeness_change_is_a_percent_and_the_top_of_the_scale_is_never_below() {
    let at_52 = |start, end| {
        let p = compute(
            vec![(
                "A".into(),
                vec![figures(1, 5, 2, Some(start)), figures(53, 8, 4, Some(end))],
            )],
            0,
            week(53),
        );
        let s = p.partners[0]
            .standing
            .iter()
            .find(|s| s.measure == "closeness")
            .cloned();
        s.map(|s| (s.value, s.verdict)).expect("closeness")
    };
    assert_eq!(at_52(5, 7), (40.0, Verdict::WithinTypical));
    assert_eq!(
        at_52(5, 6),
        (20.0, Verdict::BelowTypical),
        "the ceiling is not reached"
    );
    assert_eq!(
        at_52(10, 10),
        (0.0, Verdict::WithinTypical),
        "already at the top"
    );
    assert_eq!(
        at_52(8, 10),
        (25.0, Verdict::WithinTypical),
        "rose to the top"
    );
    assert_eq!(at_52(4, 8), (100.0, Verdict::AheadOfTypical));
}
