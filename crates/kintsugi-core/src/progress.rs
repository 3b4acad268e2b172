//! Progress: each partner's check-ins over time, set against typical recovery ranges.
//!
//! The ranges are typical figures from couples-therapy practice after infidelity (see
//! docs/domain.md for the source and the caveats): honest conversations rising from about 1 to
//! 4+ a week over 3-6 months; trust from 2-3 to 7-8 over 6-18 months; 8-12 therapy sessions over
//! 3-12 months; emotional closeness up 30-50% over 6-12 months. A range is a band that widens
//! over time: its upper edge reaches the end value at the fast end of the span, its lower edge at
//! the slow end. Where a couple stands is read against the band at the weeks they have been
//! checking in. These are orientation, not a verdict: every couple heals at its own pace.

use serde::Serialize;

use crate::week::IsoWeek;

/// A typical recovery range, as a band over weeks since the first check-in.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TypicalRange {
    pub measure: &'static str,
    pub description: &'static str,
    /// (low, high) at week 0.
    pub start: (f64, f64),
    /// (low, high) once recovered.
    pub end: (f64, f64),
    /// The upper edge reaches `end.1` after this many weeks.
    pub fast_weeks: f64,
    /// The lower edge reaches `end.0` after this many weeks.
    pub slow_weeks: f64,
}

impl TypicalRange {
    /// The band (low, high) after `weeks` weeks.
    pub fn band(&self, weeks: f64) -> (f64, f64) {
        let along = |span: f64| (weeks.max(0.0) / span).min(1.0);
        (
            self.start.0 + (self.end.0 - self.start.0) * along(self.slow_weeks),
            self.start.1 + (self.end.1 - self.start.1) * along(self.fast_weeks),
        )
    }
}

pub const TRUST: TypicalRange = TypicalRange {
    measure: "trust",
    description: "trust from 2-3 to 7-8 (of 10) in 6-18 months",
    start: (2.0, 3.0),
    end: (7.0, 8.0),
    fast_weeks: 26.0,
    slow_weeks: 78.0,
};

pub const CONVERSATIONS: TypicalRange = TypicalRange {
    measure: "conversations",
    description: "honest conversations from about 1 to 4+ a week in 3-6 months",
    start: (1.0, 1.0),
    end: (4.0, 4.0),
    fast_weeks: 13.0,
    slow_weeks: 26.0,
};

pub const CLOSENESS: TypicalRange = TypicalRange {
    measure: "closeness",
    description: "emotional closeness up 30-50% in 6-12 months",
    start: (0.0, 0.0),
    end: (30.0, 50.0),
    fast_weeks: 26.0,
    slow_weeks: 52.0,
};

pub const THERAPY: TypicalRange = TypicalRange {
    measure: "therapy_sessions",
    description: "8-12 couples-therapy sessions in 3-12 months",
    start: (0.0, 0.0),
    end: (8.0, 12.0),
    fast_weeks: 13.0,
    slow_weeks: 52.0,
};

/// One partner's figures for one week.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeekFigures {
    pub week: String,
    pub trust: i64,
    pub conversations: i64,
    pub closeness: Option<i64>,
    pub forgiveness: Option<i64>,
}

/// Where a value stands against the typical band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    BelowTypical,
    WithinTypical,
    AheadOfTypical,
}

/// A value read against a range.
#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    pub measure: &'static str,
    pub value: f64,
    pub typical_low: f64,
    pub typical_high: f64,
    pub weeks_in: i64,
    pub verdict: Verdict,
}

impl Standing {
    fn read(range: &TypicalRange, value: f64, weeks_in: i64) -> Self {
        let (low, high) = range.band(weeks_in as f64);
        let verdict = if value < low - 1e-9 {
            Verdict::BelowTypical
        } else if value > high + 1e-9 {
            Verdict::AheadOfTypical
        } else {
            Verdict::WithinTypical
        };
        Standing {
            measure: range.measure,
            value,
            typical_low: low,
            typical_high: high,
            weeks_in,
            verdict,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PartnerProgress {
    pub name: String,
    pub weeks: Vec<WeekFigures>,
    /// Latest trust, conversations and closeness change, against the typical bands.
    pub standing: Vec<Standing>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    /// The couple's first check-in week, the origin of every band.
    pub first_week: Option<String>,
    pub partners: Vec<PartnerProgress>,
    pub therapy_sessions: usize,
    pub therapy_standing: Option<Standing>,
    pub ranges: Vec<TypicalRange>,
}

/// Input for one partner: name and check-ins as (week, figures), any order.
pub type PartnerWeeks = (String, Vec<(IsoWeek, WeekFigures)>);

/// Computes the progress of the couple. `now` is the current week, used for therapy.
pub fn compute(partners: Vec<PartnerWeeks>, therapy_sessions: usize, now: IsoWeek) -> Progress {
    let first = partners
        .iter()
        .flat_map(|(_, weeks)| weeks.iter().map(|(w, _)| *w))
        .min();
    let partners = partners
        .into_iter()
        .map(|(name, mut weeks)| {
            weeks.sort_by_key(|(w, _)| *w);
            let standing = match (first, weeks.first(), weeks.last()) {
                (Some(origin), Some((_, earliest)), Some((latest_week, latest))) => {
                    let weeks_in = origin.weeks_until(*latest_week);
                    let mut standing = vec![
                        Standing::read(&TRUST, latest.trust as f64, weeks_in),
                        Standing::read(&CONVERSATIONS, latest.conversations as f64, weeks_in),
                    ];
                    if let (Some(start), Some(now)) = (earliest.closeness, latest.closeness)
                        && start > 0
                    {
                        let change = now.saturating_sub(start) as f64 * 100.0 / start as f64;
                        let mut reading = Standing::read(&CLOSENESS, change, weeks_in);
                        // On a 1-10 scale a partner who starts high cannot rise 30%: reaching
                        // the top of the scale is as far as anyone can go.
                        let ceiling = 10i64.saturating_sub(start) as f64 * 100.0 / start as f64;
                        if reading.verdict == Verdict::BelowTypical && change >= ceiling {
                            reading.verdict = Verdict::WithinTypical;
                        }
                        standing.push(reading);
                    }
                    standing
                }
                _ => Vec::new(),
            };
            PartnerProgress {
                name,
                weeks: weeks.into_iter().map(|(_, f)| f).collect(),
                standing,
            }
        })
        .collect();
    Progress {
        first_week: first.map(|w| w.to_string()),
        partners,
        therapy_sessions,
        therapy_standing: first.map(|origin| {
            Standing::read(
                &THERAPY,
                therapy_sessions as f64,
                origin.weeks_until(now).max(0),
            )
        }),
        ranges: vec![TRUST, CONVERSATIONS, CLOSENESS, THERAPY],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(n: u8) -> IsoWeek {
        IsoWeek {
            year: 2026,
            week: n,
        }
    }

    fn figures(n: u8, trust: i64, conversations: i64, closeness: i64) -> (IsoWeek, WeekFigures) {
        let f = WeekFigures {
            week: week(n).to_string(),
            trust,
            conversations,
            closeness: Some(closeness),
            forgiveness: Some(5),
        };
        (week(n), f)
    }

    #[test]
    fn bands_widen_from_start_to_end() {
        assert_eq!(TRUST.band(0.0), (2.0, 3.0));
        let (low, high) = TRUST.band(26.0);
        assert!((low - (2.0 + 5.0 / 3.0)).abs() < 1e-9 && high == 8.0);
        assert_eq!(TRUST.band(200.0), (7.0, 8.0));
        assert_eq!(THERAPY.band(13.0), (2.0, 12.0));
    }

    #[test]
    fn progress_reads_each_partner_against_the_ranges() {
        let alice = (
            "Alice".to_string(),
            vec![figures(14, 8, 4, 6), figures(1, 3, 1, 4)],
        );
        let bob = (
            "Bob".to_string(),
            vec![figures(1, 2, 1, 5), figures(14, 3, 1, 5)],
        );
        let p = compute(vec![alice, bob], 3, week(14));
        assert_eq!(p.first_week.as_deref(), Some("2026-W01"));
        let a = &p.partners[0];
        assert_eq!(
            a.weeks.iter().map(|w| w.trust).collect::<Vec<_>>(),
            vec![3, 8],
            "sorted by week"
        );
        let verdict = |p: &PartnerProgress, m: &str| {
            p.standing
                .iter()
                .find(|s| s.measure == m)
                .map(|s| s.verdict)
        };
        // 13 weeks in: trust band about 2.8-5.5, conversations band 2.5-4.
        assert_eq!(verdict(a, "trust"), Some(Verdict::AheadOfTypical));
        assert_eq!(verdict(a, "conversations"), Some(Verdict::WithinTypical));
        assert_eq!(
            verdict(a, "closeness"),
            Some(Verdict::AheadOfTypical),
            "4 -> 6 is +50% at 13 weeks"
        );
        let b = &p.partners[1];
        assert_eq!(verdict(b, "trust"), Some(Verdict::WithinTypical));
        assert_eq!(verdict(b, "conversations"), Some(Verdict::BelowTypical));
        assert_eq!(
            verdict(b, "closeness"),
            Some(Verdict::BelowTypical),
            "no change after 13 weeks"
        );
        let therapy = p.therapy_standing.expect("therapy");
        assert_eq!(
            (therapy.value, therapy.verdict),
            (3.0, Verdict::WithinTypical)
        );
    }

    #[test]
    fn closeness_at_the_top_of_the_scale_is_never_below_typical() {
        let alice = (
            "Alice".to_string(),
            vec![figures(1, 5, 2, 9), figures(40, 8, 4, 10)],
        );
        let p = compute(vec![alice], 0, week(40));
        let closeness = p.partners[0]
            .standing
            .iter()
            .find(|s| s.measure == "closeness")
            .expect("closeness");
        assert_eq!(
            closeness.verdict,
            Verdict::WithinTypical,
            "9 -> 10 is all the scale allows"
        );
    }

    #[test]
    fn no_checkins_means_no_standing() {
        let p = compute(vec![("Alice".into(), vec![])], 0, week(3));
        assert!(p.first_week.is_none());
        assert!(p.partners[0].standing.is_empty());
        assert!(p.therapy_standing.is_none());
    }
}
