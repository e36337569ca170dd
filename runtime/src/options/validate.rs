//! Value rules shared by the key validators and the list-entry parsers: each checks one JSON
//! value and fails with a [`Fail`] (SPEC §3.3 reason + details), which the caller turns into a
//! top-level `invalid_runtime_opt{key, reason}` or an `invalid_entry{index, reason}`.

use serde_json::{Map, Value, json};

use super::error::OptionsError;

/// Upper bound of every `*_ms` key without a SPEC maximum (365 days): keeps deadline arithmetic
/// (`Instant + Duration`) far from overflow.
pub const MAX_DURATION_MS: u64 = 365 * 86_400_000;

/// A value failed a rule: the SPEC reason and extra details (`min`, `max`, `allowed`…).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fail {
    /// SPEC §3.3 reason name.
    pub reason: &'static str,
    /// Extra details (an object, possibly empty).
    pub details: Map<String, Value>,
}

impl Fail {
    pub(crate) fn new(reason: &'static str) -> Self {
        Self {
            reason,
            details: Map::new(),
        }
    }

    pub(crate) fn with(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_owned(), value);
        self
    }

    /// As a top-level `invalid_runtime_opt{key, reason}`.
    pub(crate) fn at(self, key: &str) -> OptionsError {
        OptionsError::opt_with(key, self.reason, Value::Object(self.details))
    }

    /// As `invalid_runtime_opt{key, invalid_entry}` with `{index, reason, ..details}`.
    pub(crate) fn at_entry(self, key: &str, index: usize) -> OptionsError {
        OptionsError::entry(key, index, self.reason, Value::Object(self.details))
    }
}

pub(crate) type Checked<T> = Result<T, Fail>;

fn range_fail(min: u64, max: u64) -> Fail {
    let f = Fail::new("out_of_range").with("min", json!(min));
    if max == u64::MAX {
        f
    } else {
        f.with("max", json!(max))
    }
}

/// An integer ≥1 (`expected_positive_integer`), then `min..=max` (`out_of_range`).
pub(crate) fn positive_int(v: &Value, min: u64, max: u64) -> Checked<u64> {
    let n = v
        .as_u64()
        .filter(|n| *n >= 1)
        .ok_or_else(|| Fail::new("expected_positive_integer"))?;
    if n < min || n > max {
        return Err(range_fail(min, max));
    }
    Ok(n)
}

/// An integer ≥0 (`expected_non_negative_integer`), then `..=max` (`out_of_range`).
pub(crate) fn non_negative_int(v: &Value, max: u64) -> Checked<u64> {
    let n = v
        .as_u64()
        .ok_or_else(|| Fail::new("expected_non_negative_integer"))?;
    if n > max {
        return Err(range_fail(0, max));
    }
    Ok(n)
}

/// Null, or an integer ≥1 (`expected_positive_integer_or_null`).
pub(crate) fn opt_positive_int(v: &Value) -> Checked<Option<u64>> {
    if v.is_null() {
        return Ok(None);
    }
    v.as_u64()
        .filter(|n| *n >= 1)
        .map(Some)
        .ok_or_else(|| Fail::new("expected_positive_integer_or_null"))
}

/// Null, or a number (`expected_number_or_null`) in `min..=max` (`out_of_range`).
pub(crate) fn opt_number(v: &Value, min: f64, max: f64) -> Checked<Option<f64>> {
    if v.is_null() {
        return Ok(None);
    }
    let n = v
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Fail::new("expected_number_or_null"))?;
    if n < min || n > max {
        return Err(Fail::new("out_of_range")
            .with("min", json!(min))
            .with("max", json!(max)));
    }
    Ok(Some(n))
}

/// A boolean (`expected_boolean`).
pub(crate) fn boolean(v: &Value) -> Checked<bool> {
    v.as_bool().ok_or_else(|| Fail::new("expected_boolean"))
}

/// A string (`expected_string`).
pub(crate) fn string(v: &Value) -> Checked<&str> {
    v.as_str().ok_or_else(|| Fail::new("expected_string"))
}

/// A non-blank string (`expected_non_empty_string`, also for non-strings).
pub(crate) fn non_empty_string(v: &Value) -> Checked<&str> {
    v.as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Fail::new("expected_non_empty_string"))
}

/// Null or a string (`expected_string_or_null`).
pub(crate) fn opt_string(v: &Value) -> Checked<Option<&str>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(Fail::new("expected_string_or_null")),
    }
}

/// A list of strings (`expected_list_of_strings`, also for null).
pub(crate) fn list_of_strings(v: &Value) -> Checked<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(Fail::new("expected_list_of_strings"));
    };
    items
        .iter()
        .map(|i| i.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Fail::new("expected_list_of_strings"))
}

/// One of `allowed` after trimming and lowercasing (`expected_one_of{allowed}`).
pub(crate) fn one_of(v: &Value, allowed: &'static [&'static str]) -> Checked<&'static str> {
    let s = v.as_str().map(|s| s.trim().to_ascii_lowercase());
    s.and_then(|s| allowed.iter().copied().find(|a| *a == s))
        .ok_or_else(|| Fail::new("expected_one_of").with("allowed", json!(allowed)))
}

/// An event name or `*` pattern: 1–128 chars of `[a-z0-9_.*-]`.
pub(crate) fn valid_event_pattern(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.*-".contains(&b))
}

/// A template id slug: 1–64 chars `[a-z0-9][a-z0-9_-]*` (so `agent.spawn.<id>` is a valid tool
/// name, SPEC §4 step 1).
pub(crate) fn valid_slug(s: &str) -> bool {
    let mut b = s.bytes();
    s.len() <= 64
        && b.next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_distinguish_type_and_range() {
        assert_eq!(positive_int(&json!(5), 1, 10), Ok(5));
        assert_eq!(
            positive_int(&json!(0), 1, 10).unwrap_err().reason,
            "expected_positive_integer"
        );
        assert_eq!(
            positive_int(&json!(-3), 1, 10).unwrap_err().reason,
            "expected_positive_integer"
        );
        assert_eq!(
            positive_int(&json!(1.5), 1, 10).unwrap_err().reason,
            "expected_positive_integer"
        );
        assert_eq!(
            positive_int(&json!(11), 1, 10).unwrap_err(),
            Fail::new("out_of_range")
                .with("min", json!(1))
                .with("max", json!(10))
        );
        assert_eq!(non_negative_int(&json!(0), 5), Ok(0));
        assert_eq!(
            non_negative_int(&json!(-1), 5).unwrap_err().reason,
            "expected_non_negative_integer"
        );
    }

    #[test]
    fn slugs_and_event_patterns() {
        assert!(valid_slug("reviewer-2"));
        assert!(!valid_slug("Reviewer"));
        assert!(!valid_slug("-x"));
        assert!(!valid_slug(""));
        assert!(!valid_slug(&"a".repeat(65)));
        assert!(valid_event_pattern("security.*"));
        assert!(valid_event_pattern("conversation.tool.timeout"));
        assert!(!valid_event_pattern("Security.x"));
        assert!(!valid_event_pattern(""));
    }
}
