//! Validating identifier newtypes (SPEC §1) and their generators.
//!
//! Every id parses with `FromStr` / `TryFrom<&str>` / `TryFrom<String>`, serializes as a plain
//! string and refuses invalid input on deserialization. Rejections carry a reason: `empty`,
//! `too_long` or `invalid_chars`. Generated forms: `conv-`/`sub-` + lowercase ULID for
//! conversations, `corr-`/`call-` + 20 lowercase hex (80 random bits) for correlation and tool-call
//! ids, a lowercase ULID for signals, `dec-`/`alert-` + lowercase ULID for decisions and alerts.
//! A blank caller value means "generate" ([`CorrelationId::parse_or_generate`] and friends).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Why an id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdReason {
    /// Empty (after trimming, for trimmed kinds).
    Empty,
    /// Longer than the kind allows.
    TooLong,
    /// A character outside the kind's alphabet.
    InvalidChars,
}

impl IdReason {
    /// Stable snake_case reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::InvalidChars => "invalid_chars",
        }
    }
}

/// An id failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("invalid {kind}: {}", reason.as_str())]
pub struct IdError {
    /// Which id kind (`project_id`, `conversation_id`, `correlation_id`, ...).
    pub kind: &'static str,
    /// Why.
    pub reason: IdReason,
}

impl IdError {
    /// Stable snake_case code, `invalid_<kind>` (e.g. `invalid_conversation_id`).
    pub fn code(&self) -> &'static str {
        match self.kind {
            "project_id" => "invalid_project_id",
            "conversation_id" => "invalid_conversation_id",
            "correlation_id" => "invalid_correlation_id",
            "tool_call_id" => "invalid_tool_call_id",
            "signal_id" => "invalid_signal_id",
            "run_id" => "invalid_run_id",
            "decision_id" => "invalid_decision_id",
            "alert_id" => "invalid_alert_id",
            _ => "invalid_id",
        }
    }
}

#[derive(Clone, Copy)]
enum Rule {
    /// 1–64 `[A-Za-z0-9][A-Za-z0-9._-]*`
    Project,
    /// 1–128 `[A-Za-z0-9][A-Za-z0-9._:-]*`
    Conversation,
    /// trimmed, 1–128 printable ASCII, no whitespace
    Token,
}

fn validate(rule: Rule, raw: &str) -> Result<String, IdReason> {
    let s = match rule {
        Rule::Token => raw.trim(),
        Rule::Project | Rule::Conversation => raw,
    };
    let max = match rule {
        Rule::Project => 64,
        Rule::Conversation | Rule::Token => 128,
    };
    if s.is_empty() {
        return Err(IdReason::Empty);
    }
    if s.len() > max {
        return Err(IdReason::TooLong);
    }
    let ok = match rule {
        Rule::Project | Rule::Conversation => {
            let extra: &[u8] = if matches!(rule, Rule::Project) {
                b"._-"
            } else {
                b"._:-"
            };
            s.bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_alphanumeric() || (i > 0 && extra.contains(&b)))
        }
        Rule::Token => s.bytes().all(|b| b.is_ascii_graphic()),
    };
    if ok {
        Ok(s.to_owned())
    } else {
        Err(IdReason::InvalidChars)
    }
}

fn lower_ulid() -> String {
    Ulid::new().to_string().to_ascii_lowercase()
}

fn hex20() -> String {
    // The random part of a ULID is exactly 80 bits = 10 bytes = 20 hex digits.
    format!("{:020x}", Ulid::new().random())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $rule:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `raw` (see the module doc for the rules of this kind).
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                validate($rule, raw)
                    .map(Self)
                    .map_err(|reason| IdError { kind: $kind, reason })
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! generated {
    ($name:ident, $doc:literal, $body:expr) => {
        impl $name {
            #[doc = $doc]
            pub fn generate() -> Self {
                Self($body)
            }

            /// Parses a caller value; `None` or a blank value generates a fresh id.
            pub fn parse_or_generate(raw: Option<&str>) -> Result<Self, IdError> {
                match raw {
                    Some(s) if !s.trim().is_empty() => Self::parse(s),
                    _ => Ok(Self::generate()),
                }
            }
        }
    };
}

id_type!(
    /// A project id: 1–64 chars `[A-Za-z0-9][A-Za-z0-9._-]*` (generated by the runtime from the
    /// root path, SPEC §1).
    ProjectId, "project_id", Rule::Project
);
id_type!(
    /// A conversation id: 1–128 chars `[A-Za-z0-9][A-Za-z0-9._:-]*`.
    ConversationId, "conversation_id", Rule::Conversation
);
id_type!(
    /// A correlation id: trimmed, 1–128 printable ASCII, no whitespace.
    CorrelationId, "correlation_id", Rule::Token
);
id_type!(
    /// A tool-call id (correlation-id rules).
    ToolCallId, "tool_call_id", Rule::Token
);
id_type!(
    /// A signal id (correlation-id rules).
    SignalId, "signal_id", Rule::Token
);
id_type!(
    /// A run id: the correlation id of the run's user message (correlation-id rules).
    RunId, "run_id", Rule::Token
);
id_type!(
    /// A policy decision id (correlation-id rules).
    DecisionId, "decision_id", Rule::Token
);
id_type!(
    /// An alert id (correlation-id rules).
    AlertId, "alert_id", Rule::Token
);

generated!(
    ConversationId,
    "`conv-` + lowercase ULID.",
    format!("conv-{}", lower_ulid())
);
generated!(
    CorrelationId,
    "`corr-` + 20 lowercase hex.",
    format!("corr-{}", hex20())
);
generated!(
    ToolCallId,
    "`call-` + 20 lowercase hex.",
    format!("call-{}", hex20())
);
generated!(SignalId, "A lowercase ULID.", lower_ulid());
generated!(
    DecisionId,
    "`dec-` + lowercase ULID.",
    format!("dec-{}", lower_ulid())
);
generated!(
    AlertId,
    "`alert-` + lowercase ULID.",
    format!("alert-{}", lower_ulid())
);

impl ConversationId {
    /// `sub-` + lowercase ULID, for sub-agent conversations.
    pub fn generate_subagent() -> Self {
        Self(format!("sub-{}", lower_ulid()))
    }
}

impl From<CorrelationId> for RunId {
    /// A run is named after its user message's correlation id.
    fn from(c: CorrelationId) -> Self {
        Self(c.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reasons_per_kind() {
        let cases: [(&str, Result<(), IdReason>); 7] = [
            ("conv-1", Ok(())),
            ("", Err(IdReason::Empty)),
            ("-x", Err(IdReason::InvalidChars)),
            ("a b", Err(IdReason::InvalidChars)),
            ("a:b.c_d-e", Ok(())),
            (&"x".repeat(128), Ok(())),
            (&"x".repeat(129), Err(IdReason::TooLong)),
        ];
        for (raw, want) in cases {
            let got = ConversationId::parse(raw).map(|_| ()).map_err(|e| e.reason);
            assert_eq!(got, want, "{raw:?}");
        }
        assert_eq!(
            ProjectId::parse("a:b").unwrap_err().reason,
            IdReason::InvalidChars
        );
        assert_eq!(
            ProjectId::parse(&"p".repeat(65)).unwrap_err().reason,
            IdReason::TooLong
        );
        assert_eq!(CorrelationId::parse("  abc  ").unwrap().as_str(), "abc");
        assert_eq!(
            CorrelationId::parse("   ").unwrap_err().reason,
            IdReason::Empty
        );
        assert_eq!(
            CorrelationId::parse("a\u{e9}").unwrap_err().reason,
            IdReason::InvalidChars
        );
        let e = ConversationId::parse("").unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("invalid_conversation_id", "invalid conversation_id: empty")
        );
    }

    #[test]
    fn generated_forms() {
        let c = ConversationId::generate();
        assert!(
            c.as_str().starts_with("conv-") && c.as_str().len() == 31,
            "{c}"
        );
        assert_eq!(c.as_str(), c.as_str().to_ascii_lowercase());
        assert!(
            ConversationId::generate_subagent()
                .as_str()
                .starts_with("sub-")
        );
        let corr = CorrelationId::generate();
        assert_eq!(corr.as_str().len(), 25);
        assert!(
            corr.as_str()[5..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(ToolCallId::generate().as_str().starts_with("call-"));
        assert_eq!(SignalId::generate().as_str().len(), 26);
        assert!(DecisionId::generate().as_str().starts_with("dec-"));
        assert!(AlertId::generate().as_str().starts_with("alert-"));
        assert!(
            CorrelationId::parse_or_generate(Some(" "))
                .unwrap()
                .as_str()
                .starts_with("corr-")
        );
        assert_eq!(
            CorrelationId::parse_or_generate(Some("x"))
                .unwrap()
                .as_str(),
            "x"
        );
    }

    #[test]
    fn serde_validates() {
        let id: ConversationId = serde_json::from_str("\"conv-abc\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"conv-abc\"");
        assert!(serde_json::from_str::<ConversationId>("\"bad id\"").is_err());
    }

    proptest! {
        #[test]
        fn generated_ids_reparse(_n in 0u8..8) {
            let c = ConversationId::generate();
            prop_assert_eq!(ConversationId::parse(c.as_str()).unwrap(), c);
            let t = ToolCallId::generate();
            prop_assert_eq!(ToolCallId::parse(t.as_str()).unwrap(), t);
        }

        #[test]
        fn accepted_ids_roundtrip(s in "[A-Za-z0-9][A-Za-z0-9._:-]{0,127}") {
            let id = ConversationId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }
}
