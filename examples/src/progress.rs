//! A one-line progress bar on standard error, drawn only when standard error is a terminal
//! (`std::io::IsTerminal`), so piped or captured output stays clean.

use std::io::{IsTerminal, Write};

/// Width of the bar itself, in cells.
const BAR_CELLS: usize = 30;

/// A progress bar redrawn in place with `\r`.
#[derive(Debug)]
pub struct ProgressBar {
    enabled: bool,
    drawn: bool,
}

impl ProgressBar {
    /// A bar that draws when standard error is a terminal.
    pub fn stderr() -> Self {
        Self::with_enabled(std::io::stderr().is_terminal())
    }

    /// A bar that draws only when `enabled`.
    pub fn with_enabled(enabled: bool) -> Self {
        Self {
            enabled,
            drawn: false,
        }
    }

    /// Whether the bar draws at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Redraws the bar: `label`, `fraction` (clamped to 0..=1) and a free-form `detail`.
    pub fn draw(&mut self, label: &str, fraction: f64, detail: &str) {
        if !self.enabled {
            return;
        }
        let line = render(label, fraction, detail);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Clears the bar's line.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `label [#######.......]  42% detail`.
fn render(label: &str, fraction: f64, detail: &str) -> String {
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // The fraction is clamped to 0..=1, so both casts are small and non-negative.
    let (filled, percent) = (
        (fraction * BAR_CELLS as f64).round() as usize,
        (fraction * 100.0).round() as u32,
    );
    format!(
        "{label:<16} [{}{}] {percent:>3}% {detail}",
        "#".repeat(filled),
        ".".repeat(BAR_CELLS - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_with_the_fraction_and_clamps() {
        assert_eq!(
            render("noop", 0.5, "1 s"),
            format!(
                "noop             [{}{}]  50% 1 s",
                "#".repeat(15),
                ".".repeat(15)
            )
        );
        assert!(render("x", 7.0, "").contains("100%"));
        assert!(render("x", f64::NAN, "").contains("  0%"));
    }

    #[test]
    fn a_disabled_bar_never_draws() {
        let mut bar = ProgressBar::with_enabled(false);
        bar.draw("x", 0.5, "");
        assert!(!bar.drawn);
    }
}
