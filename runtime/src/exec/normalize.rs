//! SPEC §4 steps 1–2: the tool name, the argument object (size and depth bounds) and the
//! correlation / tool-call ids.

use std::io::Write;

use serde_json::Value;

use crate::error::Error;

/// Longest tool name.
pub(crate) const MAX_NAME: usize = 128;
/// Deepest argument nesting.
pub(crate) const MAX_DEPTH: usize = 64;

/// `[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*`, ≤128 bytes.
pub(crate) fn valid_tool_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME || !b[0].is_ascii_lowercase() {
        return false;
    }
    let mut prev_dot = false;
    for &c in &b[1..] {
        match c {
            b'.' if prev_dot => return false,
            b'.' => prev_dot = true,
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => prev_dot = false,
            _ => return false,
        }
    }
    !prev_dot
}

fn invalid(reason: &str) -> Error {
    Error::InvalidToolCall {
        reason: reason.to_owned(),
    }
}

/// Counts serialized bytes and stops as soon as the cap is passed.
struct Counter {
    n: usize,
    max: usize,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.n += buf.len();
        if self.n > self.max {
            return Err(std::io::Error::other("too large"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serialized size of `v`, or `None` once it exceeds `max`.
pub(crate) fn json_size(v: &Value, max: usize) -> Option<usize> {
    let mut c = Counter { n: 0, max };
    serde_json::to_writer(&mut c, v).ok().map(|()| c.n)
}

fn depth_ok(v: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match v {
        Value::Array(a) => a.iter().all(|x| depth_ok(x, depth + 1)),
        Value::Object(m) => m.values().all(|x| depth_ok(x, depth + 1)),
        _ => true,
    }
}

/// Step 1: checks the name, turns `null` args into `{}`, bounds size and depth.
pub(crate) fn normalize(name: &str, args: Value, max_args_bytes: usize) -> Result<Value, Error> {
    if !valid_tool_name(name) {
        return Err(invalid("invalid_name"));
    }
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        v @ Value::Object(_) => v,
        _ => return Err(invalid("args_not_object")),
    };
    if !depth_ok(&args, 1) {
        return Err(invalid("argument_too_complex"));
    }
    if json_size(&args, max_args_bytes).is_none() {
        return Err(invalid("args_too_large"));
    }
    Ok(args)
}

/// A tool-call id also names the call's scratch dir (`<data_dir>/tmp/<id>`), so beyond the id
/// rules it must be one plain path component: `[A-Za-z0-9._:-]`, not starting with `.`.
pub(crate) fn tool_call_id(
    given: Option<&str>,
    generate: impl FnOnce() -> String,
) -> Result<String, Error> {
    let id = call_id(given, generate)?;
    let plain = !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if plain {
        Ok(id)
    } else {
        Err(invalid("invalid_correlation_id"))
    }
}

/// Step 2: a caller id (trimmed, 1–128 printable ASCII, no whitespace) or a generated one.
pub(crate) fn call_id(
    given: Option<&str>,
    generate: impl FnOnce() -> String,
) -> Result<String, Error> {
    match given.map(str::trim) {
        None | Some("") => Ok(generate()),
        Some(s) if s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()) => Ok(s.to_owned()),
        Some(_) => Err(invalid("invalid_correlation_id")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for ok in [
            "fs.read",
            "command.run.todos",
            "a",
            "x-y_z.a-1",
            "workflow.run.a_b",
        ] {
            assert!(valid_tool_name(ok), "{ok}");
        }
        for bad in [
            "", "Fs.read", "1x", "fs..read", "fs.", ".fs", "fs read", "fs/read", "é",
        ] {
            assert!(!valid_tool_name(bad), "{bad}");
        }
        assert!(!valid_tool_name(&"a".repeat(129)));
    }

    #[test]
    fn args_rules() {
        let reason = |r: Result<Value, Error>| match r {
            Err(Error::InvalidToolCall { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(normalize("x", Value::Null, 10).unwrap(), json!({}));
        assert_eq!(reason(normalize("x", json!([1]), 100)), "args_not_object");
        assert_eq!(
            reason(normalize("x", json!({"a": "x".repeat(100)}), 50)),
            "args_too_large"
        );
        let mut deep = json!(1);
        for _ in 0..70 {
            deep = json!({ "a": deep });
        }
        assert_eq!(
            reason(normalize("x", deep, 1 << 20)),
            "argument_too_complex"
        );
        assert_eq!(reason(normalize("X", json!({}), 100)), "invalid_name");
    }

    #[test]
    fn ids() {
        assert_eq!(call_id(Some(" abc "), || "g".into()).unwrap(), "abc");
        assert_eq!(call_id(Some(""), || "g".into()).unwrap(), "g");
        assert_eq!(call_id(None, || "g".into()).unwrap(), "g");
        assert!(call_id(Some("a b"), || "g".into()).is_err());
        assert!(call_id(Some(&"a".repeat(129)), || "g".into()).is_err());
        for bad in ["..", ".", "../x", "/abs", "a/b", ".hidden", "a\\b"] {
            assert!(tool_call_id(Some(bad), || "g".into()).is_err(), "{bad}");
        }
        assert_eq!(
            tool_call_id(Some("call-1:a.b_c"), || "g".into()).unwrap(),
            "call-1:a.b_c"
        );
    }
}
