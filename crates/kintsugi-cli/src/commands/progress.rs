//! `kintsugi progress`: a table of where each partner stands, a terminal chart of trust, and
//! with `--chart FILE` a real SVG or PNG chart.

use std::path::Path;

use kintsugi_core::progress::{PartnerProgress, Standing};
use kintsugi_core::{Device, Progress, Verdict};

use super::chart;
use crate::output::Output;

pub fn run(device: &Device, chart_file: Option<&Path>, out: Output) -> anyhow::Result<()> {
    let progress = device.progress()?;
    if let Some(file) = chart_file {
        chart::draw(&progress, file)?;
        out.note(format!("wrote the chart to {}", file.display()));
    }
    out.print(&progress, || table(&progress))
}

fn table(p: &Progress) -> String {
    let Some(first) = &p.first_week else {
        return "no check-ins yet; each of you can check in with `kintsugi checkin --trust N --conversations N`"
            .into();
    };
    let mut lines = vec![format!(
        "Since {first}, set against typical recovery ranges:"
    )];
    for partner in &p.partners {
        lines.extend(partner_lines(partner));
    }
    if let Some(s) = &p.therapy_standing {
        lines.push(format!(
            "Therapy: {} session(s); typical by now {:.0}-{:.0}: {}",
            p.therapy_sessions,
            s.typical_low,
            s.typical_high,
            verdict(s.verdict)
        ));
    }
    lines.push(String::new());
    lines.extend(
        p.ranges
            .iter()
            .map(|r| format!("  typical: {}", r.description)),
    );
    lines.join("\n")
}

fn partner_lines(p: &PartnerProgress) -> Vec<String> {
    let Some(last) = p.weeks.last() else {
        return vec![format!("{}: no check-ins yet", p.name)];
    };
    let mut lines = vec![format!(
        "{} ({} week(s), latest {})",
        p.name,
        p.weeks.len(),
        last.week
    )];
    for s in &p.standing {
        lines.push(standing_line(s));
    }
    let trust: Vec<i64> = p.weeks.iter().map(|w| w.trust).collect();
    lines.push(format!(
        "  {:<14} {}  ({})",
        "trust by week",
        sparkline(&trust),
        trust
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    ));
    lines
}

fn standing_line(s: &Standing) -> String {
    let (value, band) = match s.measure {
        "closeness" => (
            format!("{:+.0}%", s.value),
            format!("{:+.0}% to {:+.0}%", s.typical_low, s.typical_high),
        ),
        "conversations" => (
            format!("{:.0}/week", s.value),
            format!("{:.1}-{:.1}", s.typical_low, s.typical_high),
        ),
        _ => (
            format!("{:.0}/10", s.value),
            format!("{:.1}-{:.1}", s.typical_low, s.typical_high),
        ),
    };
    format!(
        "  {:<14} {:<9} typical now {:<16} {}",
        s.measure,
        value,
        band,
        verdict(s.verdict)
    )
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::BelowTypical => "below typical",
        Verdict::WithinTypical => "within typical",
        Verdict::AheadOfTypical => "ahead of typical",
    }
}

/// Scores 1-10 as block characters, one per week.
fn sparkline(values: &[i64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| BLOCKS[((v.clamp(&1, &10) - 1) * 7 / 9) as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_the_scale() {
        assert_eq!(sparkline(&[1, 5, 10, 11, -3]), "▁▄██▁");
    }
}
