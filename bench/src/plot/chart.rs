//! Chart primitives on plotters' SVG backend: horizontal bars in titled
//! groups, and lines of a metric over N. Each returns a standalone SVG
//! string: white background, `sans-serif` text, no scripts, no fonts.

use std::ops::Range;

use anyhow::Result;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The font family of every text: one every browser has.
const FONT: &str = "sans-serif";
/// Width of every chart, px.
const WIDTH: u32 = 880;
/// Height of one bar's row, px.
const ROW: u32 = 22;
/// Height of a group's title, px.
const GROUP_TITLE: u32 = 28;
/// Height of the x axis (labels and description), px.
const AXIS: u32 = 46;
/// Width of the row labels left of the bars, px.
const LABELS: u32 = 220;

/// Text colour (and a target's mark).
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
/// Secondary text colour.
const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);
/// switchboard (and a cluster's 2 nodes).
pub const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// The raw baseline (and a 1-node cluster).
pub const GREY: RGBColor = RGBColor(0x99, 0x99, 0x99);
/// The ezsockets peer.
pub const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
/// The protocol floor.
pub const TEAL: RGBColor = RGBColor(0x17, 0xbe, 0xcf);
/// The second peer (`phoenix_channels_client`).
pub const PINK: RGBColor = RGBColor(0xe3, 0x77, 0xc2);
/// A target met.
pub const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
/// A target missed.
pub const RED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// A second switchboard series.
pub const PURPLE: RGBColor = RGBColor(0x94, 0x67, 0xbd);
/// A second baseline series.
pub const BROWN: RGBColor = RGBColor(0x8c, 0x56, 0x4b);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// What a chart says around its plot.
pub struct Frame<'a> {
    /// The title, on top.
    pub title: &'a str,
    /// Lines under the title: how to read the chart.
    pub caption: &'a [&'a str],
    /// The x axis description, with its unit.
    pub x_desc: &'a str,
    /// The legend: a filled square (or a line, for `true`) and its text.
    pub legend: &'a [(&'a str, RGBColor, bool)],
}

/// One bar.
pub struct Bar {
    /// The row's label, left of the bar.
    pub label: String,
    /// Its length, in x units.
    pub value: f64,
    /// The text at its end.
    pub text: String,
    /// Its fill.
    pub color: RGBColor,
    /// A vertical mark across its row (a target), in x units.
    pub mark: Option<f64>,
}

/// Bars under one title.
pub struct Group {
    /// The title, left-aligned above the bars.
    pub title: String,
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
}

/// How the x axis of a bar chart is scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Linear from 0; bars start at 0.
    Linear,
    /// Logarithmic; bars start at 1 (a ratio's parity), marked by a line.
    Ratio,
}

/// `(N, value)` points of a metric over N.
pub type Points = Vec<(f64, f64)>;

/// One line of a chart over N: `(N, value)` points.
pub struct Series {
    /// Its legend text.
    pub name: String,
    /// Its colour.
    pub color: RGBColor,
    /// `(N, value)`, N ascending.
    pub points: Points,
}

/// A font of `size` px as rendered (plotters' SVG backend writes 1/1.24
/// of the size it is given).
fn font(size: u32, style: FontStyle) -> TextStyle<'static> {
    TextStyle::from((FONT, f64::from(size) * 1.24, style).into_font()).color(&INK)
}

/// A text style of `size` px.
fn text(size: u32) -> TextStyle<'static> {
    font(size, FontStyle::Normal)
}

/// A text style anchored at `h`, vertically centred.
fn anchored(size: u32, h: HPos) -> TextStyle<'static> {
    text(size).pos(Pos::new(h, VPos::Center))
}

/// Height of the title, caption and legend.
fn header_height(frame: &Frame) -> u32 {
    40 + 17 * frame.caption.len() as u32 + if frame.legend.is_empty() { 0 } else { 26 }
}

/// Draws the title, caption and legend at the top of `root`.
fn header(root: &Area, frame: &Frame) -> Result<()> {
    let bold = font(17, FontStyle::Bold);
    root.draw(&Text::new(frame.title, (16, 12), bold))?;
    let mut y = 40;
    for line in frame.caption {
        root.draw(&Text::new(*line, (16, y), text(12).color(&MUTED)))?;
        y += 17;
    }
    let mut x = 16;
    for (label, color, line) in frame.legend {
        let middle = y + 10;
        if *line {
            let path = vec![(x + 6, middle - 7), (x + 6, middle + 7)];
            root.draw(&PathElement::new(path, color.stroke_width(3)))?;
        } else {
            root.draw(&Rectangle::new(
                [(x, middle - 6), (x + 12, middle + 6)],
                color.filled(),
            ))?;
        }
        root.draw(&Text::new(
            *label,
            (x + 18, middle),
            anchored(12, HPos::Left),
        ))?;
        // ~6 px a character of 12 px sans-serif, then a gap.
        x += 18 + 6 * label.chars().count() as i32 + 24;
    }
    Ok(())
}

/// Horizontal bars in titled groups, sharing one x axis (drawn under the
/// last group). Values must be positive on [`Scale::Ratio`].
pub fn bars(frame: &Frame, scale: Scale, groups: &[Group]) -> Result<String> {
    let top = header_height(frame);
    let heights: Vec<u32> = groups
        .iter()
        .map(|group| GROUP_TITLE + ROW * group.bars.len() as u32 + 8)
        .collect();
    let height = top + heights.iter().sum::<u32>() + AXIS + 10;
    let values = groups
        .iter()
        .flat_map(|group| &group.bars)
        .flat_map(|bar| std::iter::once(bar.value).chain(bar.mark));
    let (min, max) = values.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        header(&root, frame)?;
        let mut below = root.split_vertically(top).1;
        for (index, group) in groups.iter().enumerate() {
            let last = index + 1 == groups.len();
            let own = heights[index] + if last { AXIS } else { 0 };
            let (area, rest) = below.split_vertically(own);
            below = rest;
            let axis = last.then_some(frame.x_desc);
            match scale {
                Scale::Linear => {
                    let range = 0.0..(max * 1.18).max(1.0);
                    draw_group(&root, &area, range, 0.0, group, axis, &short)?;
                }
                Scale::Ratio => {
                    let lo = 10f64.powf((min.min(1.0) / 2.5).log10().floor());
                    let hi = 10f64.powf((max.max(1.0) * 2.5).log10().ceil());
                    let range = (lo..hi).log_scale();
                    draw_group(&root, &area, range, 1.0, group, axis, &short)?;
                }
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// One group: its title, bars from `origin`, marks, value texts and labels.
fn draw_group<X>(
    root: &Area,
    area: &Area,
    x: X,
    origin: f64,
    group: &Group,
    axis: Option<&str>,
    format: &dyn Fn(&f64) -> String,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let bold = font(13, FontStyle::Bold);
    area.draw(&Text::new(group.title.as_str(), (16, 8), bold))?;
    let rows = group.bars.len();
    let mut chart = ChartBuilder::on(area)
        .margin_top(GROUP_TITLE)
        .margin_right(80)
        .margin_bottom(8)
        .x_label_area_size(if axis.is_some() { AXIS } else { 0 })
        .y_label_area_size(LABELS)
        .build_cartesian_2d(x, 0.0..rows as f64)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_y_mesh()
        .y_labels(0)
        .x_labels(10)
        .x_label_formatter(format)
        .label_style(text(12))
        .axis_desc_style(text(13))
        .x_max_light_lines(2)
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .light_line_style(RGBColor(0xf2, 0xf2, 0xf2));
    if let Some(desc) = axis {
        mesh.x_desc(desc);
    }
    mesh.draw()?;
    if origin > 0.0 {
        let parity = vec![(origin, 0.0), (origin, rows as f64)];
        chart.draw_series(std::iter::once(PathElement::new(
            parity,
            INK.stroke_width(1),
        )))?;
    }
    for (k, bar) in group.bars.iter().enumerate() {
        let y = (rows - 1 - k) as f64;
        let body = [(origin, y + 0.18), (bar.value, y + 0.82)];
        chart.draw_series(std::iter::once(Rectangle::new(body, bar.color.filled())))?;
        if let Some(mark) = bar.mark {
            let across = vec![(mark, y + 0.02), (mark, y + 0.98)];
            chart.draw_series(std::iter::once(PathElement::new(
                across,
                INK.stroke_width(3),
            )))?;
        }
        let left = bar.value < origin;
        let (h, dx) = if left {
            (HPos::Right, -5)
        } else {
            (HPos::Left, 5)
        };
        // The text goes past a mark just beyond the bar's end, not over it.
        let px = |v: f64| chart.backend_coord(&(v, y + 0.5)).0;
        let past = bar.mark.filter(|&mark| {
            let gap = px(mark) - px(bar.value);
            (if left { -gap } else { gap }) > 0 && gap.abs() < 60
        });
        let end = EmptyElement::at((past.unwrap_or(bar.value), y + 0.5))
            + Text::new(bar.text.clone(), (dx, 0), anchored(11, h));
        chart.draw_series(std::iter::once(end))?;
        let (_, row_y) = chart.backend_coord(&(origin, y + 0.5));
        let x = area.get_base_pixel().0 + LABELS as i32 - 8;
        root.draw(&Text::new(
            bar.label.as_str(),
            (x, row_y),
            anchored(12, HPos::Right),
        ))?;
    }
    Ok(())
}

/// Lines of a metric over N: one [`Series`] per side, each point
/// `(N, value)`, N on a log axis (decades: 100, 1,000, 10,000 ...), the
/// value linear from 0. The idle-memory rows chart through this, and a
/// scaling scenario (a figure at 100 / 1,000 / 10,000 receivers) only has
/// to hand it its points.
pub fn lines(frame: &Frame, y_desc: &str, series: &[Series]) -> Result<String> {
    let top = header_height(frame);
    let height = top + 380;
    let points = || series.iter().flat_map(|s| s.points.iter().copied());
    let (lo, hi) = points().fold((f64::MAX, 0.0_f64), |(lo, hi), (n, _)| {
        (lo.min(n), hi.max(n))
    });
    let y_max = points().map(|(_, v)| v).fold(0.0, f64::max) * 1.15;
    let x: Range<f64> = (lo / 2.0).max(0.5)..(hi * 2.0).max(2.0);
    let mut ticks: Vec<f64> = points().map(|(n, _)| n).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        header(&root, frame)?;
        let body = root.split_vertically(top).1;
        let mut chart = ChartBuilder::on(&body)
            .margin(16)
            .margin_right(40)
            .x_label_area_size(AXIS)
            .y_label_area_size(70)
            .build_cartesian_2d(x.log_scale().with_key_points(ticks), 0.0..y_max.max(1.0))?;
        chart
            .configure_mesh()
            .x_desc(frame.x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|n| thousands(*n))
            .y_label_formatter(&short)
            .label_style(text(12))
            .axis_desc_style(text(13))
            .y_max_light_lines(1)
            .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
            .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
            .draw()?;
        for (index, s) in series.iter().enumerate() {
            let style = s.color.stroke_width(2);
            chart.draw_series(LineSeries::new(s.points.iter().copied(), style))?;
            // Earlier series get bigger dots, so equal figures show as rings.
            let radius = 7_u32.saturating_sub(index as u32).max(3);
            let dots = s
                .points
                .iter()
                .map(|&p| Circle::new(p, radius, s.color.filled()));
            chart.draw_series(dots)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// `1234567` as `1,234,567` (rounded to an integer).
pub fn thousands(value: f64) -> String {
    let digits = format!("{}", value.round().abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < -0.5 {
        out.insert(0, '-');
    }
    out
}

/// An axis label: `1.5M`, `250k`, `12`, `0.05` (three significant digits).
pub fn short(value: &f64) -> String {
    let v = *value;
    let (scaled, unit) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = if scaled == 0.0 {
        0
    } else {
        (2 - scaled.abs().log10().floor() as i32).clamp(0, 4) as usize
    };
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_short() {
        assert_eq!(thousands(1_397_171.4), "1,397,171");
        assert_eq!(thousands(146.0), "146");
        assert_eq!(short(&1_500_000.0), "1.5M");
        assert_eq!(short(&250_000.0), "250k");
        assert_eq!(short(&0.01), "0.01");
        assert_eq!(short(&100.0), "100");
        assert_eq!(short(&0.0), "0");
    }
}
