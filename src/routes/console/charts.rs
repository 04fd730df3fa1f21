//! The console's pictures as server-rendered SVG: geometry is worked out here, every word is
//! written by the template (and so escaped), and every chart carries its numbers as a table
//! for those who cannot see it.

use crate::console::{DayTally, LatencySample};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 52.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

pub struct Chart {
    pub id: &'static str,
    /// Where the x axis starts, and its height.
    pub left: String,
    pub base: String,
    pub title: String,
    /// The text alternative in one sentence.
    pub summary: String,
    pub legend: Vec<Series>,
    pub bars: Vec<Bar>,
    pub lines: Vec<Line>,
    pub x_labels: Vec<Label>,
    pub y_labels: Vec<Label>,
    /// The numbers, as a table: its head and rows.
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
}

pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub class: &'static str,
    /// What a pointer over it says.
    pub tip: String,
}

pub struct Line {
    pub class: &'static str,
    pub points: String,
}

pub struct Label {
    pub x: String,
    pub y: String,
    pub text: String,
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// A round top for the y axis at or above `max`.
fn ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(max.log10().floor());
    for factor in [1.0, 2.0, 5.0, 10.0] {
        if step * factor >= max {
            return step * factor;
        }
    }
    step * 10.0
}

fn y_axis(top: f64, unit: &str) -> Vec<Label> {
    [0.0, 0.5, 1.0]
        .iter()
        .map(|share| Label {
            x: n(LEFT - 6.0),
            y: n(HEIGHT - BOTTOM - share * (HEIGHT - BOTTOM - TOP) + 4.0),
            text: format!("{}{unit}", trim(top * share)),
        })
        .collect()
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A series of bars: its name, its style, and what it counts of a day.
type Measure = (&'static str, &'static str, fn(&DayTally) -> u64);

/// Bars by day, one per series side by side.
fn bars_by_day(
    id: &'static str,
    title: &str,
    days: &[DayTally],
    series: &[Measure],
    unit: &str,
) -> Chart {
    let max = days
        .iter()
        .flat_map(|d| series.iter().map(move |(_, _, of)| of(d)))
        .max()
        .unwrap_or(0) as f64;
    let top = ceiling(max);
    let plot = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / days.len().max(1) as f64;
    let bar = (slot * 0.8) / series.len().max(1) as f64;
    let mut bars = Vec::new();
    let mut x_labels = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let start = LEFT + i as f64 * slot + slot * 0.1;
        for (j, (name, class, of)) in series.iter().enumerate() {
            let value = of(day);
            let h = value as f64 / top * plot;
            bars.push(Bar {
                x: n(start + j as f64 * bar),
                y: n(HEIGHT - BOTTOM - h),
                w: n(bar.max(1.0)),
                h: n(h),
                class,
                tip: format!("{}: {value} {name}", day.label()),
            });
        }
        // Every other day is labelled: fourteen labels do not fit a phone.
        if i % 2 == days.len() % 2 {
            x_labels.push(Label {
                x: n(start + slot * 0.4),
                y: n(HEIGHT - 6.0),
                text: day.label(),
            });
        }
    }
    let totals: Vec<String> = series
        .iter()
        .map(|(name, _, of)| format!("{} {name}", days.iter().map(of).sum::<u64>()))
        .collect();
    let mut head = vec!["Day"];
    head.extend(series.iter().map(|(name, _, _)| *name));
    Chart {
        id,
        left: n(LEFT),
        base: n(HEIGHT - BOTTOM),
        title: title.to_owned(),
        summary: format!(
            "{title} over the last {} days: {} in all; the busiest day had {}.",
            days.len(),
            totals.join(", "),
            trim(max)
        ),
        legend: series
            .iter()
            .map(|(name, class, _)| Series { name, class })
            .collect(),
        bars,
        lines: Vec::new(),
        x_labels,
        y_labels: y_axis(top, unit),
        head,
        rows: days
            .iter()
            .map(|d| {
                let mut row = vec![d.label()];
                row.extend(series.iter().map(|(_, _, of)| of(d).to_string()));
                row
            })
            .collect(),
    }
}

pub fn invoices(days: &[DayTally]) -> Chart {
    bars_by_day(
        "chart-invoices",
        "Invoices made and paid per day",
        days,
        &[("made", "made", |d| d.made), ("paid", "paid", |d| d.paid)],
        "",
    )
}

pub fn sats(days: &[DayTally]) -> Chart {
    bars_by_day(
        "chart-sats",
        "Sats received per day",
        days,
        &[("sats", "sats", |d| d.sats)],
        "",
    )
}

pub fn deliveries(days: &[DayTally]) -> Chart {
    bars_by_day(
        "chart-deliveries",
        "Webhook and receipt deliveries per day",
        days,
        &[
            ("delivered", "paid", |d| d.delivered),
            ("failed attempts", "failed", |d| d.failed),
            ("given up", "dead", |d| d.dead),
        ],
        "",
    )
}

/// The callback's latency, minute by minute: p50 and p99 as lines.
pub fn latency(samples: &[LatencySample]) -> Chart {
    let max = samples
        .iter()
        .filter_map(|s| s.p99_ms.or(s.p50_ms))
        .fold(0.0f64, f64::max);
    let top = ceiling(max);
    let plot = HEIGHT - BOTTOM - TOP;
    let step = (WIDTH - LEFT) / (samples.len().max(2) - 1) as f64;
    let line = |of: fn(&LatencySample) -> Option<f64>| -> String {
        samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                of(s).map(|v| {
                    format!(
                        "{},{}",
                        n(LEFT + i as f64 * step),
                        n(HEIGHT - BOTTOM - v / top * plot)
                    )
                })
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let busy: Vec<&LatencySample> = samples.iter().filter(|s| s.requests > 0).collect();
    let summary = match busy.last() {
        None => "Callback latency over the last hour: no callbacks yet since this instance started."
            .to_owned(),
        Some(last) => format!(
            "Callback latency over the last hour, minute by minute: {} callbacks; the latest busy minute's median {} ms and 99th percentile {} ms; the highest 99th percentile {} ms.",
            samples.iter().map(|s| s.requests).sum::<u64>(),
            last.p50_ms.map_or("-".into(), trim),
            last.p99_ms.map_or("-".into(), trim),
            trim(max)
        ),
    };
    let label = |s: &LatencySample| {
        let text = crate::accounts::when(s.at);
        text.get(11..16).unwrap_or(&text).to_owned()
    };
    let x_labels = [samples.first(), samples.last()]
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| Label {
            x: n(if i == 0 { LEFT } else { WIDTH - 20.0 }),
            y: n(HEIGHT - 6.0),
            text: label(s),
        })
        .collect();
    Chart {
        id: "chart-latency",
        left: n(LEFT),
        base: n(HEIGHT - BOTTOM),
        title: "Callback latency (p50 and p99)".into(),
        summary,
        legend: vec![
            Series {
                name: "p50",
                class: "p50",
            },
            Series {
                name: "p99",
                class: "p99",
            },
        ],
        bars: Vec::new(),
        lines: vec![
            Line {
                class: "p50",
                points: line(|s| s.p50_ms),
            },
            Line {
                class: "p99",
                points: line(|s| s.p99_ms),
            },
        ],
        x_labels,
        y_labels: y_axis(top, " ms"),
        head: vec!["Minute (UTC)", "Callbacks", "p50 ms", "p99 ms"],
        rows: samples
            .iter()
            .map(|s| {
                vec![
                    label(s),
                    s.requests.to_string(),
                    s.p50_ms.map_or("-".into(), trim),
                    s.p99_ms.map_or("-".into(), trim),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(i: u64, made: u64, paid: u64) -> DayTally {
        DayTally {
            day: 1_796_601_600 + i * 86_400,
            made,
            paid,
            ..DayTally::default()
        }
    }

    #[test]
    fn bars_stand_on_the_axis_and_the_tallest_reaches_a_round_top() {
        let chart = invoices(&[day(0, 0, 0), day(1, 7, 3)]);
        assert_eq!(chart.bars.len(), 4);
        let tallest: f64 = chart.bars[2].h.parse().unwrap();
        assert!((tallest - 7.0 / 10.0 * (HEIGHT - BOTTOM - TOP)).abs() < 0.1);
        assert_eq!(chart.bars[0].h, "0.0");
        assert_eq!(chart.y_labels.last().unwrap().text, "10");
        assert_eq!(chart.rows[1], ["12-08", "7", "3"]);
        assert!(
            chart.summary.contains("7 made, 3 paid"),
            "{}",
            chart.summary
        );
    }

    #[test]
    fn axes_are_round_numbers() {
        assert_eq!(ceiling(0.0), 1.0);
        assert_eq!(ceiling(7.0), 10.0);
        assert_eq!(ceiling(12.0), 20.0);
        assert_eq!(ceiling(480.0), 500.0);
        assert_eq!(ceiling(1000.0), 1000.0);
    }

    #[test]
    fn a_latency_chart_without_samples_says_so() {
        let chart = latency(&[]);
        assert!(chart.summary.contains("no callbacks yet"));
        assert!(chart.lines.iter().all(|l| l.points.is_empty()));
    }
}
