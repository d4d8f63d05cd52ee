//! Bar charts drawn by the server as SVG, for the analytics dashboard: no script, no file
//! from elsewhere, so the chart passes the console's CSP and shows without JavaScript.
//!
//! This module computes the geometry (the scale, its ticks, one bar per series and bucket,
//! the bucket labels) and a sentence summarising the numbers; `templates/analytics/_chart.html`
//! draws it, so every label is escaped by askama like any other value. The SVG is an image for
//! assistive technology (`role="img"`, named by the title, described by the summary); the page
//! shows the same numbers in a table.
//!
//! Counts are never negative; a negative value is drawn as zero, and values up to `i64::MAX`
//! keep their scale (computed in `f64`, sums in `i128`), so no input breaks the drawing.

/// The drawing's coordinate system (the SVG's `viewBox`); CSS scales it to the page's width.
pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// A bar is at most this wide (one bucket would otherwise fill the chart).
const MAX_BAR: f64 = 48.0;
/// At most this many bucket labels under the axis (every n-th bucket beyond).
const MAX_X_LABELS: usize = 8;

/// One series: its name (legend, summary), the CSS class of its bars, a value per bucket.
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'static str,
    pub values: Vec<i64>,
}

/// A bucket: its short label under the axis and its full label (summary, tooltips).
pub struct Bucket {
    pub short: String,
    pub long: String,
}

pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub class: &'static str,
    /// `3 Mar 2026: 12 received` (the bar's tooltip).
    pub label: String,
}

/// A horizontal grid line with its value on the left.
pub struct Tick {
    pub y: f64,
    pub label: String,
}

/// A bucket's label under the axis, centred at `x`.
pub struct XLabel {
    pub x: f64,
    pub label: String,
}

pub struct LegendItem {
    pub name: String,
    pub class: &'static str,
}

/// A chart ready to draw.
pub struct BarChart {
    /// Unique on the page: the ids of its title and description derive from it.
    pub id: &'static str,
    pub title: String,
    pub summary: String,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub x_labels: Vec<XLabel>,
    pub legend: Vec<LegendItem>,
    /// Nothing to draw (no bucket, or every value zero): the chart says `empty_text` instead.
    pub empty: bool,
    pub empty_text: String,
    pub center_x: f64,
    pub center_y: f64,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `1234567` → `1,234,567`.
pub fn group_digits(v: i128) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A tick's value, short: `950`, `1.5k`, `20M`, `3B`, …
fn compact(v: f64) -> String {
    const UNITS: [(f64, &str); 6] = [
        (1e18, "E"),
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "B"),
        (1e6, "M"),
        (1e3, "k"),
    ];
    for (scale, unit) in UNITS {
        if v >= scale {
            let n = v / scale;
            return if n >= 10.0 || n.fract() == 0.0 {
                format!("{n:.0}{unit}")
            } else {
                format!("{n:.1}{unit}")
            };
        }
    }
    format!("{v:.0}")
}

/// The top of the scale and the step between ticks: a step of 1, 2 or 5 times a power of ten,
/// whole numbers only, four to five steps up to the first multiple at or above `max`.
fn scale(max: f64) -> (f64, f64) {
    let raw = (max / 4.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0);
    ((max / step).ceil().max(1.0) * step, step)
}

/// A chart of `series` (bars side by side in each bucket) over `buckets`. `title` names it;
/// `empty_text` is what it says when there is nothing to draw.
pub fn bars(
    id: &'static str,
    title: &str,
    empty_text: &str,
    buckets: &[Bucket],
    series: &[Series<'_>],
) -> BarChart {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bottom = HEIGHT - BOTTOM;
    let value = |s: &Series<'_>, i: usize| s.values.get(i).copied().unwrap_or(0).max(0);
    let max = series
        .iter()
        .flat_map(|s| (0..buckets.len()).map(move |i| value(s, i)))
        .max()
        .unwrap_or(0);
    let empty = buckets.is_empty() || series.is_empty() || max == 0;
    let mut chart = BarChart {
        id,
        title: title.to_owned(),
        summary: summary(title, empty_text, buckets, series),
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: WIDTH - RIGHT,
        top: TOP,
        bottom,
        bars: Vec::new(),
        ticks: Vec::new(),
        x_labels: Vec::new(),
        legend: series
            .iter()
            .map(|s| LegendItem {
                name: s.name.to_owned(),
                class: s.class,
            })
            .collect(),
        empty,
        empty_text: empty_text.to_owned(),
        center_x: round1(LEFT + plot_w / 2.0),
        center_y: round1(TOP + plot_h / 2.0),
    };
    if empty {
        return chart;
    }
    #[allow(clippy::cast_precision_loss)] // a scale: a few significant digits are enough
    let (top, step) = scale(max as f64);
    let mut v = 0.0;
    while v <= top {
        chart.ticks.push(Tick {
            y: round1(bottom - v / top * plot_h),
            label: compact(v),
        });
        v += step;
    }
    #[allow(clippy::cast_precision_loss)]
    let group = plot_w / buckets.len() as f64;
    #[allow(clippy::cast_precision_loss)]
    let bar_w = (group * 0.8 / series.len() as f64).min(MAX_BAR);
    #[allow(clippy::cast_precision_loss)]
    let inner = bar_w * series.len() as f64;
    let every = buckets.len().div_ceil(MAX_X_LABELS);
    for (i, b) in buckets.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let center = LEFT + group * (i as f64 + 0.5);
        for (k, s) in series.iter().enumerate() {
            let n = value(s, i);
            #[allow(clippy::cast_precision_loss)]
            let h = n as f64 / top * plot_h;
            #[allow(clippy::cast_precision_loss)]
            let x = center - inner / 2.0 + bar_w * k as f64;
            chart.bars.push(Bar {
                x: round1(x),
                y: round1(bottom - h),
                w: round1(bar_w),
                h: round1(h),
                class: s.class,
                label: format!(
                    "{}: {} {}",
                    b.long,
                    group_digits(i128::from(n)),
                    s.name.to_lowercase()
                ),
            });
        }
        if i % every == 0 {
            chart.x_labels.push(XLabel {
                x: round1(center),
                label: b.short.clone(),
            });
        }
    }
    chart
}

/// `Messages per day, 1 Mar 2026 to 7 Mar 2026. Received: 120 in total, most on 3 Mar 2026
/// (40). Sent: …`: what a person looking at the chart would read from it.
fn summary(title: &str, empty_text: &str, buckets: &[Bucket], series: &[Series<'_>]) -> String {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return format!("{title}: {empty_text}");
    };
    let mut out = if buckets.len() == 1 {
        format!("{title}, {}.", first.long)
    } else {
        format!("{title}, {} to {}.", first.long, last.long)
    };
    for s in series {
        let values = || (0..buckets.len()).map(|i| s.values.get(i).copied().unwrap_or(0).max(0));
        let total: i128 = values().map(i128::from).sum();
        out.push_str(&format!(" {}: {} in total", s.name, group_digits(total)));
        // The first bucket holding the highest value.
        let best = values()
            .enumerate()
            .fold(None::<(usize, i64)>, |best, (i, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((i, v)),
            });
        if let Some((i, v)) = best.filter(|(_, v)| *v > 0) {
            if let Some(b) = buckets.get(i) {
                out.push_str(&format!(
                    ", most on {} ({})",
                    b.long,
                    group_digits(i128::from(v))
                ));
            }
        }
        out.push('.');
    }
    out
}

/// One part of a [`ShareBar`]: its name, bar class, count, and where it is drawn (in percent
/// of the bar's length).
pub struct Share {
    pub name: &'static str,
    pub class: &'static str,
    pub value: String,
    pub percent: String,
    pub x: f64,
    pub w: f64,
}

/// A whole split into parts (conversations by status, a campaign's recipients by how far they
/// got): one horizontal bar, each part as long as its share, drawn in a `0..100` box.
pub struct ShareBar {
    /// Unique on the page: the ids of its title and description derive from it.
    pub id: String,
    pub title: String,
    /// `Open 12 (40%), Pending 3 (10%), Resolved 15 (50%).`
    pub summary: String,
    pub parts: Vec<Share>,
    pub empty: bool,
}

/// The share bar of `parts` (`(name, class, count)`; a negative count is drawn as zero).
pub fn shares(id: String, title: &str, parts: &[(&'static str, &'static str, i64)]) -> ShareBar {
    let total: i128 = parts.iter().map(|(_, _, v)| i128::from((*v).max(0))).sum();
    let mut x = 0.0;
    let mut out = Vec::with_capacity(parts.len());
    for (name, class, v) in parts {
        let v = (*v).max(0);
        #[allow(clippy::cast_precision_loss)] // a share on screen: a few digits are enough
        let share = if total == 0 {
            0.0
        } else {
            v as f64 / total as f64 * 100.0
        };
        out.push(Share {
            name,
            class,
            value: group_digits(i128::from(v)),
            percent: if total == 0 {
                "0%".into()
            } else if share > 0.0 && share < 1.0 {
                "<1%".into()
            } else {
                format!("{share:.0}%")
            },
            x: round1(x),
            w: round1(share),
        });
        x += share;
    }
    let summary = out
        .iter()
        .map(|p| format!("{} {} ({})", p.name, p.value, p.percent))
        .collect::<Vec<_>>()
        .join(", ");
    ShareBar {
        id,
        title: title.to_owned(),
        summary: format!("{summary}."),
        parts: out,
        empty: total == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_bar_splits_its_whole_in_order() {
        let b = shares(
            "s".into(),
            "By status",
            &[
                ("Open", "a", 1),
                ("Pending", "b", 0),
                ("Resolved", "c", 3),
                ("Odd", "d", -5),
            ],
        );
        assert!(!b.empty);
        let drawn: Vec<(f64, f64)> = b.parts.iter().map(|p| (p.x, p.w)).collect();
        assert_eq!(
            drawn,
            [(0.0, 25.0), (25.0, 0.0), (25.0, 75.0), (100.0, 0.0)]
        );
        assert_eq!(
            b.summary,
            "Open 1 (25%), Pending 0 (0%), Resolved 3 (75%), Odd 0 (0%)."
        );
        let tiny = shares("t".into(), "t", &[("a", "a", 1), ("b", "b", 999)]);
        assert_eq!(tiny.parts[0].percent, "<1%");
        let none = shares("n".into(), "n", &[("a", "a", 0)]);
        assert!(none.empty);
        assert_eq!(none.parts[0].percent, "0%");
        let huge = shares(
            "h".into(),
            "h",
            &[("a", "a", i64::MAX), ("b", "b", i64::MAX)],
        );
        assert_eq!((huge.parts[1].x, huge.parts[1].w), (50.0, 50.0));
    }
    use askama::Template;

    /// The chart drawn by the page's own partial.
    #[derive(Template)]
    #[template(source = r#"{% include "analytics/_chart.html" %}"#, ext = "html")]
    struct Drawn<'a> {
        c: &'a BarChart,
    }

    fn days(n: usize) -> Vec<Bucket> {
        (1..=n)
            .map(|d| Bucket {
                short: format!("{d} Mar"),
                long: format!("{d} Mar 2026"),
            })
            .collect()
    }

    fn chart(buckets: &[Bucket], a: Vec<i64>, b: Vec<i64>) -> BarChart {
        bars(
            "messages",
            "Messages per day",
            "No messages in this period",
            buckets,
            &[
                Series {
                    name: "Received",
                    class: "bar-in",
                    values: a,
                },
                Series {
                    name: "Sent",
                    class: "bar-out",
                    values: b,
                },
            ],
        )
    }

    fn draw(c: &BarChart) -> String {
        Drawn { c }.render().unwrap()
    }

    #[test]
    fn one_bar_per_series_and_bucket_scaled_to_a_round_top() {
        let c = chart(&days(3), vec![10, 40, 0], vec![5, 30, 1]);
        assert!(!c.empty);
        assert_eq!(c.bars.len(), 6);
        // 40 → a scale of 0..40 in steps of 10.
        let ticks: Vec<&str> = c.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(ticks, ["0", "10", "20", "30", "40"]);
        // The tallest bar is the plot's height, standing on the axis; 30 is three quarters.
        let tallest = &c.bars[2];
        assert_eq!(tallest.label, "2 Mar 2026: 40 received");
        assert!((tallest.h - (HEIGHT - TOP - BOTTOM)).abs() < 0.11);
        assert!((c.bars[3].h - 0.75 * (HEIGHT - TOP - BOTTOM)).abs() < 0.11);
        assert!((tallest.y + tallest.h - (HEIGHT - BOTTOM)).abs() < 0.11);
        // A zero is a bar of no height; bars stay inside the plot, in order.
        assert_eq!(c.bars[4].h, 0.0);
        assert!(c.bars.windows(2).all(|w| w[0].x < w[1].x));
        assert!(c
            .bars
            .iter()
            .all(|b| b.x >= LEFT && b.x + b.w <= WIDTH - RIGHT + 0.1));
        assert_eq!(
            c.summary,
            "Messages per day, 1 Mar 2026 to 3 Mar 2026. Received: 50 in total, most on 2 Mar 2026 (40). Sent: 36 in total, most on 2 Mar 2026 (30)."
        );
        let svg = draw(&c);
        assert_eq!(svg.matches("<rect").count(), 6, "{svg}");
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"aria-labelledby="messages-title""#));
        assert!(svg.contains(r#"<title id="messages-title">Messages per day</title>"#));
    }

    #[test]
    fn nothing_to_draw_says_so() {
        for c in [
            chart(&[], vec![], vec![]),
            chart(&days(7), vec![0; 7], vec![0; 7]),
            chart(&days(2), vec![], vec![]),
        ] {
            assert!(c.empty);
            assert!(c.bars.is_empty() && c.ticks.is_empty());
            let svg = draw(&c);
            assert!(svg.contains("No messages in this period"), "{svg}");
            assert!(!svg.contains("<rect"));
        }
        assert_eq!(
            chart(&[], vec![], vec![]).summary,
            "Messages per day: No messages in this period"
        );
    }

    #[test]
    fn one_bucket_has_bars_of_a_sensible_width() {
        let c = chart(&days(1), vec![3], vec![1]);
        assert_eq!(c.bars.len(), 2);
        assert!(c.bars.iter().all(|b| b.w <= MAX_BAR));
        assert_eq!(c.x_labels.len(), 1);
        assert_eq!(
            c.summary,
            "Messages per day, 1 Mar 2026. Received: 3 in total, most on 1 Mar 2026 (3). Sent: 1 in total, most on 1 Mar 2026 (1)."
        );
        // A scale of at least one whole step.
        let c = chart(&days(1), vec![1], vec![0]);
        let ticks: Vec<&str> = c.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(ticks, ["0", "1"]);
    }

    #[test]
    fn negative_and_huge_values_do_not_break_it() {
        let c = chart(&days(3), vec![-5, i64::MAX, 7], vec![i64::MIN, 0, i64::MAX]);
        assert_eq!(c.bars.len(), 6);
        for b in &c.bars {
            assert!(
                b.h.is_finite() && b.h >= 0.0 && b.y >= TOP - 0.1,
                "{}",
                b.label
            );
        }
        assert_eq!(c.bars[0].h, 0.0, "a negative count is drawn as zero");
        assert!(c.ticks.iter().all(|t| t.y.is_finite()));
        assert_eq!(c.ticks.last().unwrap().label, "10E");
        assert!(
            c.summary
                .contains("Received: 9,223,372,036,854,775,814 in total"),
            "{}",
            c.summary
        );
        draw(&c);
        // Fewer values than buckets: the missing ones are zero.
        let c = chart(&days(3), vec![1], vec![]);
        assert_eq!(c.bars.len(), 6);
    }

    #[test]
    fn many_buckets_are_labelled_sparsely() {
        let c = chart(&days(90), vec![1; 90], vec![2; 90]);
        assert_eq!(c.bars.len(), 180);
        assert!(c.x_labels.len() <= MAX_X_LABELS);
        assert_eq!(c.x_labels[0].label, "1 Mar");
        assert!(c.bars.iter().all(|b| b.w > 0.0));
    }

    #[test]
    fn labels_are_escaped() {
        let evil = Bucket {
            short: "<script>alert(1)</script>".into(),
            long: "\"><img src=x onerror=alert(1)>".into(),
        };
        let c = bars(
            "x",
            "<b>Title</b>",
            "<i>none</i>",
            &[evil],
            &[Series {
                name: "A & B",
                class: "bar-in",
                values: vec![1],
            }],
        );
        let svg = draw(&c);
        assert!(
            !svg.contains("<script>") && !svg.contains("<img") && !svg.contains("<b>"),
            "{svg}"
        );
        assert!(
            svg.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{svg}"
        );
        assert!(svg.contains("A &#38; B"), "{svg}");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(-1000), "-1,000");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(20_000_000.0), "20M");
        assert_eq!(scale(7.0), (8.0, 2.0));
        assert_eq!(scale(100.0), (100.0, 50.0));
        assert_eq!(scale(41.0), (60.0, 20.0));
    }
}
