//! Detector, scan and redaction tests, plus canary property tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn kinds(s: &str) -> Vec<&'static str> {
    scan_text(s).into_iter().map(FindingKind::as_str).collect()
}

#[test]
fn every_detector_kind() {
    let cases = [
        ("Authorization: Bearer abcdefgh12345678", "bearer_token"),
        ("api_key=abc123", "keyed_secret"),
        ("x sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "anthropic_key"),
        ("x sk-proj-abcdefghijklmnop1234", "openai_key"),
        ("ghp_abcdefghijklmnopqrstuvwxyz012345", "github_token"),
        ("github_pat_11ABCDEFGHIJKLMNOPQRSTUV", "github_pat"),
        ("glpat-abcdefghijklmnopqrst", "gitlab_pat"),
        ("AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_key",
        ),
        ("xoxb-1234567890-abcdef", "slack_token"),
        ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "google_api_key"),
        ("sk_live_abcdefghijklmnop1234", "stripe_key"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
            "private_key_block",
        ),
        ("postgres://admin:hunter2pass@db:5432/x", "url_credentials"),
    ];
    for (text, kind) in cases {
        assert!(kinds(text).contains(&kind), "{text}: {:?}", kinds(text));
    }
}

#[test]
fn no_false_positives_on_plain_text() {
    for text in [
        "task-1234567890abcdefghij is done",
        "tokens_used: 5",
        "see https://example.com/docs",
        "the password field is required",
        "mask-abcdefghijklmnopqrstuv",
    ] {
        assert_eq!(kinds(text), Vec::<&str>::new(), "{text}");
    }
}

#[test]
fn redaction_forms() {
    assert_eq!(
        redact_str("Authorization: Bearer abcdefgh12345678"),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(redact_str("api_key=abc123 rest"), "api_key=[REDACTED] rest");
    assert_eq!(
        redact_str("https://u:pw123456@h/x"),
        "https://u:[REDACTED]@h/x"
    );
    assert_eq!(redact_str("key AKIAIOSFODNN7EXAMPLE."), "key [REDACTED].");
    assert_eq!(
        redact_str("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY----- tail"),
        "[REDACTED] tail"
    );
    assert!(matches!(redact_str("nothing here"), Cow::Borrowed(_)));
}

#[test]
fn scan_paths_dedup_and_cap() {
    let v = json!({"a": {"b": [1, 2, "token: abc"]}, "password": "x", "empty_token": "", "list": ["ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123 ghp_abcdefghijklmnopqrstuvwxyz9999"]});
    let f = scan(&v);
    assert_eq!(
        f,
        vec![
            Finding {
                kind: FindingKind::KeyedSecret,
                path: "a.b[2]".into()
            },
            Finding {
                kind: FindingKind::GithubToken,
                path: "list[0]".into()
            },
            Finding {
                kind: FindingKind::GithubToken,
                path: "list[1]".into()
            },
            Finding {
                kind: FindingKind::SensitiveKey,
                path: "password".into()
            },
        ]
    );
    let many: Vec<String> = (0..100).map(|i| format!("token={i}")).collect();
    assert_eq!(scan(&json!(many)).len(), MAX_FINDINGS);
}

#[test]
fn redact_value_subtrees_and_truncation() {
    let long = "x".repeat(5000);
    let v = json!({"auth": {"clientSecret": {"a": 1}}, "msg": long, "ok": 1, "cookie": null});
    let r = redact(&v);
    assert_eq!(r["auth"]["clientSecret"], json!("[REDACTED]"));
    assert_eq!(r["cookie"], json!(null));
    assert_eq!(r["ok"], json!(1));
    let m = r["msg"].as_str().unwrap();
    assert!(m.ends_with(TRUNCATED_SUFFIX));
    assert_eq!(m.len(), MAX_REDACTED_STRING + TRUNCATED_SUFFIX.len());
}

#[test]
fn exact_values() {
    let r = Redactor::new(vec!["s3cr3t-value-1".to_owned(), "short".to_owned()]);
    assert_eq!(r.redact_str("x=s3cr3t-value-1!"), "x=[REDACTED]!");
    assert_eq!(r.redact_str("short"), "short");
    assert_eq!(
        r.scan(&json!({"out": "s3cr3t-value-1"})),
        vec![Finding {
            kind: FindingKind::ExactValue,
            path: "out".into()
        }]
    );
}

fn canary() -> impl Strategy<Value = String> {
    let body = "[A-Za-z0-9]{40}";
    prop_oneof![
        body.prop_map(|b| format!("sk-ant-{b}")),
        body.prop_map(|b| format!("sk-proj-{b}")),
        body.prop_map(|b| format!("ghp_{b}")),
        body.prop_map(|b| format!("github_pat_{b}")),
        body.prop_map(|b| format!("glpat-{b}")),
        "[A-Z0-9]{16}".prop_map(|b| format!("AKIA{b}")),
        body.prop_map(|b| format!("xoxb-{b}")),
        "[A-Za-z0-9_-]{35}".prop_map(|b| format!("AIza{b}")),
        body.prop_map(|b| format!("sk_live_{b}")),
        body.prop_map(|b| format!("eyJ{b}.eyJ{b}.{b}")),
        body.prop_map(|b| format!("Bearer {b}")),
        body.prop_map(|b| format!("password={b}")),
        body.prop_map(|b| format!("https://user:{b}@host/")),
        "[A-Za-z0-9/+]{40}".prop_map(|b| format!("aws_secret_access_key={b}")),
    ]
}

/// The secret part of a canary: what must never survive.
fn secret_of(c: &str) -> &str {
    if let Some(r) = c
        .strip_prefix("Bearer ")
        .or_else(|| c.strip_prefix("password="))
        .or_else(|| c.strip_prefix("aws_secret_access_key="))
    {
        return r;
    }
    if let Some(r) = c.strip_prefix("https://user:") {
        return r.trim_end_matches("@host/");
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canary_never_survives_redact(c in canary(), pre in "[a-z ,.:]{0,20}", post in "[a-z ,.]{0,20}") {
        let text = format!("{pre} {c} {post}");
        let out = redact_str(&text);
        prop_assert!(!out.contains(secret_of(&c)), "{text} -> {out}");
        let v = json!({"result": {"lines": [text.clone()], "note": format!("\"{c}\"")}});
        let r = redact(&v).to_string();
        prop_assert!(!r.contains(secret_of(&c)), "{r}");
        prop_assert!(!scan(&v).is_empty());
    }

    #[test]
    fn exact_canary_never_survives(secret in "[!-~]{8,30}", pre in "[ -~]{0,20}", post in "[ -~]{0,20}") {
        let r = Redactor::new(vec![secret.clone()]);
        let out = r.redact_str(&format!("{pre}{secret}{post}")).into_owned();
        prop_assert!(!out.contains(&secret), "{out}");
    }

    #[test]
    fn redacted_text_rescans_clean(c in canary(), pre in "[a-zA-Z0-9 =:/_-]{0,30}") {
        let out = redact_str(&format!("{pre} {c}")).into_owned();
        let again = redact_str(&out).into_owned();
        prop_assert_eq!(&again, &out);
    }
}
