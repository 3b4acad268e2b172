//! The progress chart: each partner's trust by week, one labelled line each, over the typical
//! recovery range shaded behind them. plotters lays out text with a system TrueType font (DejaVu
//! Sans on Debian, or the file in `KINTSUGI_FONT`), for SVG and PNG alike.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use kintsugi_core::Progress;
use kintsugi_core::progress::TRUST;
use kintsugi_core::week::IsoWeek;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

const SIZE: (u32, u32) = (900, 540);
const PALETTE: [RGBColor; 4] = [
    RGBColor(196, 78, 82),
    RGBColor(76, 114, 176),
    RGBColor(85, 168, 104),
    RGBColor(129, 114, 178),
];
const FONT_FILES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Writes the chart to `file`; the extension chooses SVG or PNG.
pub fn draw(progress: &Progress, file: &Path) -> anyhow::Result<()> {
    if progress.first_week.is_none() {
        bail!(
            "no check-ins yet, so there is nothing to chart; check in first with `kintsugi checkin`"
        );
    }
    register_font()?;
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let drawn = match extension.as_deref() {
        Some("svg") => plot(progress, SVGBackend::new(file, SIZE).into_drawing_area()),
        Some("png") => plot(progress, BitMapBackend::new(file, SIZE).into_drawing_area()),
        _ => bail!(
            "the chart file must end in .svg or .png, not {}",
            file.display()
        ),
    };
    drawn.with_context(|| format!("cannot write the chart to {}", file.display()))
}

/// plotters needs font metrics to lay out text; it has no font of its own.
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let candidates = std::env::var("KINTSUGI_FONT").into_iter().chain(FONT_FILES.iter().map(|f| f.to_string()));
            for path in candidates {
                if let Ok(bytes) = std::fs::read(&path) {
                    // plotters keeps fonts for the life of the process.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                        return Ok(());
                    }
                }
            }
            Err("charts need a TrueType font: install fonts-dejavu-core, or set KINTSUGI_FONT to a .ttf file".into())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

fn plot<DB: DrawingBackend>(progress: &Progress, area: DrawingArea<DB, Shift>) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let (origin, series) = weekly_series(progress)?;
    let last = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|(x, _)| *x as i64))
        .max()
        .unwrap_or(0)
        .max(1);

    area.fill(&WHITE).map_err(plot_error)?;
    let mut chart = frame(&area, origin, last)?;
    draw_band(&mut chart, last)?;
    draw_partners(&mut chart, &series)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(plot_error)?;
    area.present().map_err(plot_error)?;
    Ok(())
}

/// The chart's axes: x in weeks since the first check-in, y the trust scale.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Each partner's trust points, x in weeks since `origin` (the first check-in's week).
type Series<'a> = Vec<(&'a str, Vec<(f64, f64)>)>;

/// The week of the first check-in and each partner's points since it.
fn weekly_series(progress: &Progress) -> anyhow::Result<(IsoWeek, Series<'_>)> {
    let origin = progress
        .first_week
        .as_deref()
        .map(IsoWeek::parse)
        .transpose()?
        .context("no first week")?;
    let series = progress
        .partners
        .iter()
        .map(|p| {
            let points = p
                .weeks
                .iter()
                .filter_map(|w| {
                    IsoWeek::parse(&w.week)
                        .ok()
                        .map(|week| (origin.weeks_until(week) as f64, w.trust as f64))
                })
                .collect();
            (p.name.as_str(), points)
        })
        .collect();
    Ok((origin, series))
}

/// The caption, the axes and their labels, for weeks 0 to `last`.
fn frame<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    origin: IsoWeek,
    last: i64,
) -> anyhow::Result<Chart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Trust over time, against the typical recovery range",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..last as f64, 0f64..10.5)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(format!("weeks since {origin}"))
        .y_desc("trust (1-10)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_error)?;
    Ok(chart)
}

/// The typical recovery range, shaded, with its legend entry.
fn draw_band<DB: DrawingBackend>(chart: &mut Chart<'_, DB>, last: i64) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let upper = (0..=last).map(|w| (w as f64, TRUST.band(w as f64).1));
    let lower = (0..=last).rev().map(|w| (w as f64, TRUST.band(w as f64).0));
    let band: Vec<(f64, f64)> = upper.chain(lower).collect();
    chart
        .draw_series(std::iter::once(Polygon::new(
            band,
            RGBColor(120, 120, 120).mix(0.18).filled(),
        )))
        .map_err(plot_error)?
        .label(format!("typical: {}", TRUST.description))
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 16, y + 5)],
                RGBColor(120, 120, 120).mix(0.3).filled(),
            )
        });

    Ok(())
}

/// One labelled line with dots for each partner.
fn draw_partners<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    series: &Series<'_>,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    for (i, (name, points)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(3),
            ))
            .map_err(plot_error)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(3))
            });
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(plot_error)?;
    }
    Ok(())
}

fn plot_error<E: std::error::Error + Send + Sync + 'static>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kintsugi_core::progress::{WeekFigures, compute};

    fn progress() -> Progress {
        let partner = |name: &str, base: i64| {
            let weeks = (1..=6u8)
                .map(|w| {
                    let week = IsoWeek {
                        year: 2026,
                        week: w,
                    };
                    let figures = WeekFigures {
                        week: week.to_string(),
                        trust: base + i64::from(w),
                        conversations: i64::from(w),
                        closeness: Some(5),
                        forgiveness: None,
                    };
                    (week, figures)
                })
                .collect();
            (name.to_string(), weeks)
        };
        compute(
            vec![partner("Alice", 2), partner("Bob", 1)],
            2,
            IsoWeek {
                year: 2026,
                week: 7,
            },
        )
    }

    #[test]
    fn svg_chart_has_a_labelled_line_per_partner_and_the_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("progress.svg");
        draw(&progress(), &file).expect("draw");
        let svg = std::fs::read_to_string(&file).expect("read");
        assert!(svg.starts_with("<svg"), "an SVG document");
        let lines = svg
            .split("<polyline")
            .skip(1)
            .filter(|l| {
                l.split("points=\"")
                    .nth(1)
                    .is_some_and(|p| p.split(' ').filter(|s| s.contains(',')).count() == 6)
            })
            .count();
        assert_eq!(lines, 2, "one six-week line per partner");
        assert!(svg.contains("<polygon"), "the typical range is shaded");
        assert!(
            svg.contains("\nAlice\n") && svg.contains("\nBob\n"),
            "lines are labelled"
        );
    }

    #[test]
    fn png_chart_is_a_real_image_with_both_partners_colours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("progress.png");
        draw(&progress(), &file).expect("draw");
        let image = image::open(&file).expect("a PNG that decodes").to_rgb8();
        assert_eq!(image.dimensions(), SIZE);
        for colour in &PALETTE[..2] {
            let found = image
                .pixels()
                .filter(|p| p.0 == [colour.0, colour.1, colour.2])
                .count();
            assert!(found > 100, "a line in {colour:?} has {found} pixels");
        }
    }

    #[test]
    fn other_extensions_and_empty_progress_are_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = draw(&progress(), &dir.path().join("chart.pdf")).expect_err("pdf");
        assert!(err.to_string().contains(".svg or .png"), "{err}");
        let empty = compute(
            vec![],
            0,
            IsoWeek {
                year: 2026,
                week: 1,
            },
        );
        let err = draw(&empty, &dir.path().join("chart.svg")).expect_err("empty");
        assert!(err.to_string().contains("check in first"), "{err}");
    }
}
