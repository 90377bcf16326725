//! Charts of a bench history: one small chart per series (op, size, metric), drawn by
//! plotters as SVG; PNG is that SVG rasterised by resvg; HTML is one page holding the SVG and
//! the table. No SVG is written by hand.

use crate::error::{usage, Report, Result};
use cairn::ops::bench::history::{History, Series};
use cairn::ops::bench::human_size;
use chrono::{DateTime, Utc};
use plotters::prelude::*;
use std::path::Path;

/// Charts per row of the grid.
const COLUMNS: usize = 4;
const CHART_W: u32 = 300;
const CHART_H: u32 = 190;
const HEADER_H: u32 = 56;

/// The colour regressions are marked in; tests find the markers by it.
pub const REGRESSION_RGB: (u8, u8, u8) = (0xD6, 0x27, 0x28);
const LINE_RGB: (u8, u8, u8) = (0x1F, 0x77, 0xB4);

/// What `--plot` writes, from the file's extension; asked before any work is done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("svg") => Ok(Format::Svg),
            Some(e) if e.eq_ignore_ascii_case("png") => Ok(Format::Png),
            _ => Err(usage(
                format!(
                    "--plot {}: the file must end in .svg or .png",
                    path.display()
                ),
                "write e.g. --plot history.svg",
            )),
        }
    }
}

/// The caption above the charts: how many reports, when, on what, at which commits.
pub fn caption(h: &History) -> (String, String) {
    let n = h.reports.len();
    let (first, last) = (&h.reports[0], &h.reports[n - 1]);
    let title = format!(
        "cairn bench history: {n} reports, {} to {}, store {}",
        first.timestamp.format("%Y-%m-%d"),
        last.timestamp.format("%Y-%m-%d"),
        last.store
    );
    let mut machines: Vec<String> = Vec::new();
    for r in &h.reports {
        let m = match &r.host {
            Some(host) => format!("{host} ({})", r.machine),
            None => r.machine.clone(),
        };
        if !machines.contains(&m) {
            machines.push(m);
        }
    }
    let commits: Vec<&str> = h
        .reports
        .iter()
        .filter_map(|r| r.commit.as_deref())
        .collect();
    let mut sub = format!("machine: {}", machines.join("; "));
    match (commits.first(), commits.last()) {
        (Some(a), Some(b)) if a == b => sub.push_str(&format!(" · commit {a}")),
        (Some(a), Some(b)) => sub.push_str(&format!(" · commits {a} .. {b}")),
        _ => {}
    }
    let flagged = h.regressions().len();
    sub.push_str(&format!(
        " · {flagged} regression{} marked (beyond {}%)",
        if flagged == 1 { "" } else { "s" },
        h.options.regress_pct
    ));
    (title, sub)
}

fn draw_err(e: impl std::fmt::Display) -> crate::error::CliError {
    Report::new(format!("drawing the history chart: {e}")).into()
}

/// The whole grid as an SVG document.
pub fn svg(h: &History) -> Result<String> {
    let rows = h.series.len().div_ceil(COLUMNS).max(1);
    let cols = h.series.len().clamp(1, COLUMNS);
    let size = (CHART_W * cols as u32, HEADER_H + CHART_H * rows as u32);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (header, body) = root.split_vertically(HEADER_H);
        let (title, sub) = caption(h);
        header
            .draw_text(
                &title,
                &("sans-serif", 16).into_text_style(&header),
                (10, 8),
            )
            .map_err(draw_err)?;
        header
            .draw_text(&sub, &("sans-serif", 11).into_text_style(&header), (10, 32))
            .map_err(draw_err)?;
        let areas = body.split_evenly((rows, cols));
        for (area, s) in areas.iter().zip(&h.series) {
            chart(area, h, s)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    h: &History,
    s: &Series,
) -> Result
where
    DB::ErrorType: 'static,
{
    let pts: Vec<(f64, f64, bool)> = s
        .points
        .iter()
        .map(|p| {
            let t = h.reports[p.report].timestamp.timestamp() as f64;
            (t, p.value, p.regression)
        })
        .collect();
    let (mut x0, mut x1) = bounds(pts.iter().map(|p| p.0));
    if x1 - x0 < 1.0 {
        // One report, or all at one time: a day either side.
        x0 -= 86_400.0;
        x1 += 86_400.0;
    }
    let (lo, hi) = bounds(pts.iter().map(|p| p.1));
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.05).max(1e-9);
    let y0 = (lo - pad).max(0.0);
    let y1 = hi + pad;
    let mut c = ChartBuilder::on(area)
        .caption(s.title(), ("sans-serif", 13))
        .margin(6)
        .x_label_area_size(20)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    let date = |x: &f64| {
        DateTime::<Utc>::from_timestamp(*x as i64, 0)
            .map(|d| d.format("%m-%d").to_string())
            .unwrap_or_default()
    };
    c.configure_mesh()
        .x_labels(4)
        .y_labels(4)
        .x_label_formatter(&date)
        .y_label_formatter(&|y| short(*y))
        .label_style(("sans-serif", 10))
        .light_line_style(WHITE)
        .draw()
        .map_err(draw_err)?;
    let line = RGBColor(LINE_RGB.0, LINE_RGB.1, LINE_RGB.2);
    let red = RGBColor(REGRESSION_RGB.0, REGRESSION_RGB.1, REGRESSION_RGB.2);
    c.draw_series(LineSeries::new(
        pts.iter().map(|p| (p.0, p.1)),
        line.stroke_width(2),
    ))
    .map_err(draw_err)?;
    c.draw_series(
        pts.iter()
            .map(|p| Circle::new((p.0, p.1), 2, line.filled())),
    )
    .map_err(draw_err)?;
    c.draw_series(
        pts.iter()
            .filter(|p| p.2)
            .map(|p| Circle::new((p.0, p.1), 6, red.stroke_width(2))),
    )
    .map_err(draw_err)?;
    Ok(())
}

fn bounds(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    })
}

/// Axis labels: 1234567 -> 1.2M, 0.5 -> 0.5.
fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// Writes the chart to `path`, as SVG or PNG by its extension.
pub fn write(path: &Path, h: &History) -> Result {
    let svg = svg(h)?;
    let bytes = match Format::of(path)? {
        Format::Svg => svg.into_bytes(),
        Format::Png => png(&svg)?,
    };
    std::fs::write(path, bytes)
        .map_err(|e| Report::new(format!("writing {}: {e}", path.display())).into())
}

/// The SVG rasterised at twice its size, with the system's fonts for the text.
fn png(svg: &str) -> Result<Vec<u8>> {
    let mut opt = resvg::usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    // The chart asks for `sans-serif`, which fontdb maps to Arial unless told otherwise.
    let names: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
        .collect();
    let sans = [
        "DejaVu Sans",
        "Liberation Sans",
        "Noto Sans",
        "Arial",
        "Helvetica",
    ]
    .into_iter()
    .find(|want| names.iter().any(|n| n == want))
    .map(str::to_string)
    .or_else(|| names.first().cloned());
    let Some(sans) = sans else {
        return Err(
            Report::new("a PNG chart needs a system font, and none was found")
                .hint("install one (Debian: fonts-dejavu-core), or write an .svg chart instead")
                .into(),
        );
    };
    db.set_sans_serif_family(sans);
    let tree = resvg::usvg::Tree::from_str(svg, &opt).map_err(draw_err)?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(2.0)
        .ok_or_else(|| draw_err("empty chart"))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| draw_err("chart too large"))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(draw_err)
}

/// One self-contained page: the caption, the charts (inline SVG) and the table.
pub fn html(h: &History) -> Result<String> {
    use html_escape::encode_text as esc;
    let svg = svg(h)?;
    let svg = svg.trim_start_matches(|c| c != '<');
    let svg = match svg.strip_prefix("<?xml") {
        Some(rest) => &rest[rest.find("?>").map_or(0, |i| i + 2)..],
        None => svg,
    };
    let (title, sub) = caption(h);
    let mut rows = String::new();
    for r in h.rows() {
        let change = r
            .change_pct
            .map(|c| format!("{c:+.1}%"))
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>\n",
            if r.regression { " class=reg" } else { "" },
            esc(&r.op),
            esc(&human_size(r.size)),
            esc(cairn::ops::bench::history::unit(&r.metric)),
            r.timestamp.format("%Y-%m-%d %H:%M"),
            esc(r.commit.as_deref().unwrap_or("")),
            short(r.value),
            change,
            short(r.median),
            if r.regression { "regression" } else { "" },
        ));
    }
    let skipped: String = h
        .skipped
        .iter()
        .map(|s| format!("<li>{}: {}</li>\n", esc(&s.name), esc(&s.reason)))
        .collect();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("<h2>Skipped reports</h2><ul>\n{skipped}</ul>\n")
    };
    Ok(format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{t}</title>\n<style>\
body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;font-size:13px}}\
td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}}td.n{{text-align:right}}\
tr.reg{{background:#fde2e2}}</style></head>\n<body><h1>{t}</h1><p>{s}</p>\n{svg}\n\
<h2>Every value</h2><table><tr><th>op</th><th>size</th><th>metric</th><th>when</th>\
<th>commit</th><th>value</th><th>change</th><th>median({w})</th><th></th></tr>\n{rows}</table>\n{skipped}</body></html>\n",
        t = esc(&title),
        s = esc(&sub),
        w = h.options.window,
    ))
}
