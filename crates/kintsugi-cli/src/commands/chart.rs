//! The progress chart: each partner's trust by week, one labelled line each, over the typical
//! recovery range shaded behind them. SVG needs nothing else; PNG renders its text with a system
//! TrueType font (DejaVu Sans on Debian, or the file in `KINTSUGI_FONT`).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use kintsugi_core::Progress;
use kintsugi_core::progress::TRUST;
use kintsugi_core::week::IsoWeek;
use plotters::coord::Shift;
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
    let origin = progress
        .first_week
        .as_deref()
        .map(IsoWeek::parse)
        .transpose()?
        .context("no first week")?;
    let series: Vec<(&str, Vec<(f64, f64)>)> = progress
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
    let last = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|(x, _)| *x as i64))
        .max()
        .unwrap_or(0)
        .max(1);

    area.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&area)
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

fn plot_error<E: std::error::Error + Send + Sync + 'static>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
