//! Horizontal bar charts for the terminal, in Unicode eighth blocks.

/// Eighths of a cell, from empty to full.
const EIGHTHS: [char; 9] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// A bar `width` cells wide at most, `value / max` of it filled (padded to `width`).
pub(crate) fn bar(value: f64, max: f64, width: usize) -> String {
    let fraction = if max > 0.0 && value.is_finite() {
        (value / max).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (fraction * (width * 8) as f64).round() as usize;
    let mut out: String = std::iter::repeat_n('█', eighths / 8).collect();
    if eighths % 8 > 0 {
        out.push(EIGHTHS[eighths % 8]);
    }
    // A non-zero value always shows (on a scale that has a maximum).
    if out.is_empty() && value > 0.0 && max > 0.0 {
        out.push('▏');
    }
    let filled = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(filled)));
    out
}

/// One row of a two-series chart.
pub(crate) struct Row {
    /// The x value (`4`).
    pub(crate) label: String,
    /// The two series' values and how to print them.
    pub(crate) values: [(f64, String); 2],
    /// Text after the row (`← recommended`).
    pub(crate) note: String,
}

/// Two bar series side by side, each scaled to its own maximum:
///
/// ```text
///  size │ queries/s                       │ p99 latency
///     1 │ ██████████▌             10 234  │ ███████████████   1.24 ms
/// ```
pub(crate) fn chart(x_name: &str, series: [&str; 2], rows: &[Row], width: usize) -> String {
    let max = |i: usize| rows.iter().map(|r| r.values[i].0).fold(0.0, f64::max);
    let (max0, max1) = (max(0), max(1));
    let label_w = rows
        .iter()
        .map(|r| r.label.chars().count())
        .chain([x_name.chars().count()])
        .max()
        .unwrap_or(1);
    let text_w = |i: usize| {
        rows.iter()
            .map(|r| r.values[i].1.chars().count())
            .max()
            .unwrap_or(0)
    };
    let (text0, text1) = (text_w(0), text_w(1));
    let col0 = width + 1 + text0;
    let col1 = width + 1 + text1;
    let header = format!(" {x_name:>label_w$} │ {:<col0$} │ {}", series[0], series[1]);
    let mut out = format!("{header}\n");
    out.push_str(&format!(
        "─{}─┼─{}─┼─{}─\n",
        "─".repeat(label_w),
        "─".repeat(col0),
        "─".repeat(col1)
    ));
    for r in rows {
        out.push_str(&format!(
            " {:>label_w$} │ {} {:>text0$} │ {} {:>text1$}",
            r.label,
            bar(r.values[0].0, max0, width),
            r.values[0].1,
            bar(r.values[1].0, max1, width),
            r.values[1].1,
        ));
        if !r.note.is_empty() {
            out.push_str("  ");
            out.push_str(&r.note);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_maximum() {
        assert_eq!(bar(10.0, 10.0, 4), "████");
        assert_eq!(bar(5.0, 10.0, 4), "██  ");
        assert_eq!(bar(0.0, 10.0, 4), "    ");
        assert_eq!(bar(0.01, 10.0, 4), "▏   ");
        assert_eq!(bar(1.0, 0.0, 2), "  ");
        assert_eq!(bar(1.0, 8.0, 1), "▏");
    }

    #[test]
    fn charts_align_their_columns() {
        let rows = [
            Row {
                label: "1".into(),
                values: [(1.0, "1".into()), (2.0, "2 ms".into())],
                note: String::new(),
            },
            Row {
                label: "16".into(),
                values: [(2.0, "2".into()), (1.0, "1 ms".into())],
                note: "← best".into(),
            },
        ];
        let text = chart("size", ["q/s", "p99"], &rows, 8);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[3].ends_with("← best"), "{text}");
        let bar_col = |l: &str| l.find('│').unwrap();
        assert!(lines
            .iter()
            .all(|l| l.starts_with('─') || bar_col(l) == bar_col(lines[0])));
    }
}
