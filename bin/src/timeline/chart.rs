//! The Gantt chart of a [`Timeline`], drawn with `plotters`.

use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{MarkKind, PHASE, Status, Timeline};
use crate::plot;

/// The unit of the time axis for a run of `span_ns`: its name and length.
fn unit(span_ns: u64) -> (&'static str, f64) {
    if span_ns < 2_000_000 {
        ("µs", 1e3)
    } else if span_ns < 2_000_000_000 {
        ("ms", 1e6)
    } else if span_ns < 300_000_000_000 {
        ("s", 1e9)
    } else {
        ("min", 60e9)
    }
}

/// A bar as drawn: pixels `x0..x1` on its lane, standing for `tasks` attempts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Drawn<L> {
    pub(super) x0: i32,
    pub(super) x1: i32,
    pub(super) tasks: u64,
    pub(super) status: Status,
    pub(super) retried: bool,
    /// What names it, made into text only if it is drawn and fits.
    pub(super) label: Option<L>,
}

/// Where a bar's fill ends: a pixel short of its end when it is wide, so
/// that bars that follow each other at once still show as two.
fn right<L>(bar: &Drawn<L>) -> i32 {
    if bar.x1 - bar.x0 >= 4 {
        bar.x1 - 1
    } else {
        bar.x1
    }
}

/// Bars of one lane, sorted by start, in pixels: at least one pixel wide, and
/// merged where they would touch or overlap, so none hides another.
pub(super) fn pixel_bars<L>(
    bars: impl Iterator<Item = (f64, f64, Status, bool, Option<L>, u64)>,
) -> Vec<Drawn<L>> {
    let mut drawn: Vec<Drawn<L>> = Vec::new();
    for (from, to, status, retried, label, tasks) in bars {
        let x0 = from.round() as i32;
        let x1 = (to.round() as i32).max(x0 + 1);
        match drawn.last_mut() {
            Some(last) if x0 < last.x1 => {
                last.x1 = last.x1.max(x1);
                last.tasks += tasks;
                last.status = last.status.max(status);
                last.retried |= retried;
                last.label = None;
            }
            _ => drawn.push(Drawn {
                x0,
                x1,
                tasks,
                status,
                retried,
                label,
            }),
        }
    }
    drawn
}

/// The chart, as a [`plot`] figure.
pub(super) struct Chart<'a>(pub(super) &'a Timeline);

impl plot::Figure for Chart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> plot::DrawResult<DB> {
        let t = self.0;
        root.fill(&WHITE)?;
        let (width, height) = root.dim_in_pixel();
        let text = (width / 70).clamp(11, 18);
        // Top to bottom: the supervisor's lane (if it had phases), then the
        // workers in the order they first ran something.
        let supervisor = !t.phases.is_empty();
        let lanes = t.lanes.len() + usize::from(supervisor);
        let lanes_u32 = lanes.max(1) as u32;
        let end_ns = t.end_ns().max(1_000);
        let (unit_name, unit_ns) = unit(end_ns);
        let x_max = end_ns as f64 / unit_ns * 1.02;

        let legend_height = text * 3;
        let (main, footer) = root.split_vertically(height.saturating_sub(legend_height));
        let mut names: Vec<String> = Vec::with_capacity(lanes);
        if supervisor {
            names.push("supervisor".into());
        }
        names.extend(t.lanes.iter().map(|l| t.lane_name(l)));
        let label_width = names
            .iter()
            .map(|n| n.chars().count() as u32)
            .max()
            .unwrap_or(4);
        let mut subtitle = format!(
            "{} task attempt{} on {} worker{}",
            t.tasks,
            if t.tasks == 1 { "" } else { "s" },
            t.lanes.len(),
            if t.lanes.len() == 1 { "" } else { "s" }
        );
        if t.aggregated > 0 {
            let _ = write!(
                subtitle,
                "; {} after the first {} merged into spans",
                t.aggregated, t.limit
            );
        }
        let caption = format!("{}  ({subtitle})", t.title);
        let mut chart = ChartBuilder::on(&main)
            .caption(caption, (plot::FONT, text + 3))
            .margin(text)
            .x_label_area_size(text * 3)
            .y_label_area_size((label_width * text * 6 / 10 + text).min(width / 3))
            .build_cartesian_2d(0f64..x_max, (0u32..lanes_u32 - 1).into_segmented())?;
        let row = |lane: usize| lanes_u32 - 1 - lane as u32;
        let y_names = names.clone();
        let lane_font = text.min(((height as f64 * 0.7 / lanes.max(1) as f64) as u32).max(6));
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(format!("time since start ({unit_name})"))
            .x_label_formatter(&|x| format!("{x}"))
            .y_labels(lanes.max(1))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(r) if *r < lanes_u32 => {
                    let lane = (lanes_u32 - 1 - *r) as usize;
                    y_names.get(lane).cloned().unwrap_or_default()
                }
                _ => String::new(),
            })
            .x_label_style((plot::FONT, text))
            .y_label_style((plot::FONT, lane_font))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;

        let to_px = |ns: u64, row: u32| {
            chart.backend_coord(&(ns as f64 / unit_ns, SegmentValue::Exact(row)))
        };
        let band = |lane: usize| {
            let r = row(lane);
            let top = to_px(0, r + 1).1;
            let bottom = to_px(0, r).1;
            let pad = ((bottom - top) as f64 * 0.15).ceil() as i32;
            (top + pad, (bottom - pad).max(top + pad + 1))
        };
        let x_px = |ns: u64| {
            let (x0, _) = chart.backend_coord(&(0.0, SegmentValue::Exact(0)));
            let (x1, _) = chart.backend_coord(&(x_max, SegmentValue::Exact(0)));
            x0 as f64 + (ns as f64 / unit_ns) / x_max * f64::from(x1 - x0)
        };
        let label_style = TextStyle::from((plot::FONT, lane_font.min(text)).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let char_px = f64::from(lane_font.min(text)) * 0.62;

        // The supervisor's phases.
        if supervisor {
            let (top, bottom) = band(0);
            let phases = t.phases.iter().map(|p| {
                (
                    x_px(p.start_ns),
                    x_px(p.end_ns),
                    Status::Other,
                    false,
                    Some(p.label.clone()),
                    1,
                )
            });
            let mut phases: Vec<_> = phases.collect();
            phases.sort_by(|a, b| a.0.total_cmp(&b.0));
            // Few and each worth its name: phases are never merged, only
            // kept from overlapping where they touch.
            let mut after = i32::MIN;
            let phases = phases
                .into_iter()
                .map(|(from, to, status, retried, label, tasks)| {
                    let from = from.max(f64::from(after));
                    let to = to.max(from + 1.0);
                    after = to.round() as i32;
                    (from, to, status, retried, label, tasks)
                });
            for d in pixel_bars(phases) {
                root.draw(&Rectangle::new(
                    [(d.x0, top), (right(&d), bottom)],
                    PHASE.filled(),
                ))?;
                draw_label(root, &d, (top, bottom), char_px, &label_style, |p| {
                    p.clone()
                })?;
            }
        }
        // The workers' bars and merged spans, lane by lane.
        let first = usize::from(supervisor);
        type Entry<'b> = (f64, f64, Status, bool, Option<&'b super::Bar>, u64);
        let mut per_lane: Vec<Vec<Entry>> = vec![Vec::new(); t.lanes.len()];
        let bar_text = |bar: &super::Bar| {
            let label = match t.label(bar) {
                Some(label) => label.to_string(),
                None => bar.index.to_string(),
            };
            if bar.attempt > 1 {
                format!("{label} (try {})", bar.attempt)
            } else {
                label
            }
        };
        for bar in &t.bars {
            per_lane[bar.lane as usize].push((
                x_px(bar.start_ns),
                x_px(bar.start_ns + bar.dur_ns),
                bar.status,
                bar.retried || bar.attempt > 1,
                Some(bar),
                1,
            ));
        }
        for span in &t.spans {
            per_lane[span.lane as usize].push((
                x_px(span.start_ns),
                x_px(span.end_ns),
                span.status,
                false,
                None,
                span.tasks.max(2),
            ));
        }
        for (lane, bars) in per_lane.iter_mut().enumerate() {
            bars.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (top, bottom) = band(first + lane);
            for d in pixel_bars(bars.drain(..)) {
                let colour = d.status.rgb();
                root.draw(&Rectangle::new(
                    [(d.x0, top), (right(&d), bottom)],
                    colour.filled(),
                ))?;
                if d.retried {
                    root.draw(&Rectangle::new(
                        [(d.x0, top), (d.x1, bottom)],
                        BLACK.stroke_width(2),
                    ))?;
                }
                draw_label(root, &d, (top, bottom), char_px, &label_style, |b| {
                    bar_text(b)
                })?;
            }
        }
        // Deaths, retries, timeouts.
        for mark in &t.marks {
            let (top, bottom) = band(first + mark.lane as usize);
            let x = x_px(mark.at_ns).round() as i32;
            let mid = (top + bottom) / 2;
            let size = ((bottom - top) / 2).clamp(3, 9);
            match mark.kind {
                MarkKind::Died => {
                    root.draw(&Cross::new((x, mid), size, BLACK.stroke_width(3)))?;
                }
                MarkKind::TimedOut => {
                    root.draw(&PathElement::new(
                        [(x, top - 2), (x, bottom + 2)],
                        BLACK.stroke_width(2),
                    ))?;
                }
                MarkKind::Retry => {
                    root.draw(&Circle::new((x, top), 3, BLACK.filled()))?;
                }
            }
        }
        draw_legend(&footer, text)?;
        Ok(())
    }
}

fn draw_label<DB: DrawingBackend, L>(
    root: &DrawingArea<DB, Shift>,
    bar: &Drawn<L>,
    (top, bottom): (i32, i32),
    char_px: f64,
    style: &TextStyle,
    text: impl Fn(&L) -> String,
) -> plot::DrawResult<DB> {
    let Some(label) = &bar.label else {
        return Ok(());
    };
    let label = text(label);
    let fits = (label.chars().count() as f64 * char_px) < f64::from(bar.x1 - bar.x0 - 4)
        && char_px * 1.4 < f64::from(bottom - top);
    if fits {
        root.draw(&Text::new(
            label,
            ((bar.x0 + bar.x1) / 2, (top + bottom) / 2),
            style.clone(),
        ))?;
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: u32,
) -> plot::DrawResult<DB> {
    let style = TextStyle::from((plot::FONT, text).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let y = (text * 3 / 2) as i32;
    let box_px = text as i32;
    let mut x = text as i32 * 2;
    let item = |x: &mut i32, name: &str| -> i32 {
        let at = *x;
        *x += box_px
            + 6
            + (name.chars().count() as f64 * f64::from(text) * 0.55) as i32
            + text as i32;
        at
    };
    for status in Status::ALL {
        let at = item(&mut x, status.name());
        area.draw(&Rectangle::new(
            [(at, y - box_px / 2), (at + box_px, y + box_px / 2)],
            status.rgb().filled(),
        ))?;
        area.draw(&Text::new(
            status.name(),
            (at + box_px + 6, y),
            style.clone(),
        ))?;
    }
    let at = item(&mut x, "retried (outlined)");
    area.draw(&Rectangle::new(
        [(at, y - box_px / 2), (at + box_px, y + box_px / 2)],
        BLACK.stroke_width(2),
    ))?;
    area.draw(&Text::new(
        "retried (outlined)",
        (at + box_px + 6, y),
        style.clone(),
    ))?;
    let at = item(&mut x, "death");
    area.draw(&Cross::new((at + box_px / 2, y), 5, BLACK.stroke_width(3)))?;
    area.draw(&Text::new("death", (at + box_px + 6, y), style.clone()))?;
    area.draw(&Text::new("(narrow bars merged)", (x, y), style.clone()))?;
    Ok(())
}
