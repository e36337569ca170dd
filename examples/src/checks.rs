//! Expected outcomes of an example run: each check prints one `ok` / `FAIL` line, and the run
//! exits non-zero when any failed, so an example doubles as a smoke check.

use std::fmt::Display;

/// A tally of expected outcomes.
#[derive(Debug, Default)]
pub struct Checks {
    passed: usize,
    failures: Vec<String>,
}

impl Checks {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `what` held (`ok`) or not; `detail` is printed either way.
    pub fn expect(&mut self, ok: bool, what: &str, detail: impl Display) {
        let detail = detail.to_string();
        let sep = if detail.is_empty() { "" } else { " — " };
        if ok {
            self.passed += 1;
            println!("  ok    {what}{sep}{detail}");
        } else {
            println!("  FAIL  {what}{sep}{detail}");
            self.failures.push(what.to_owned());
        }
    }

    /// Checks that passed.
    pub fn passed(&self) -> usize {
        self.passed
    }

    /// What failed, in order.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_remembered_in_order() {
        let mut c = Checks::new();
        c.expect(true, "a", "");
        c.expect(false, "b", "detail");
        c.expect(false, "c", 3);
        assert_eq!(c.passed(), 1);
        assert_eq!(c.failures(), ["b".to_owned(), "c".to_owned()]);
    }
}
