//! Env passthrough (SPEC §5.7): the always-denied list (ASCII case-insensitive, with wildcard
//! families such as `LD_*`, `PYTHON*`, `*_PROXY`), name syntax, and the payload check that
//! yields `invalid_env_payload` / `env_vars_not_allowed`.

use serde_json::Value;

use crate::error::PolicyError;

/// Exact names that are always denied (compared ASCII case-insensitively).
pub const ALWAYS_DENIED: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "GIT_PAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "GLIBC_TUNABLES",
    "GCONV_PATH",
    "LOCPATH",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "TMPDIR",
    "XDG_CONFIG_HOME",
];

/// Always-denied prefix families (`LD_*`, `PYTHON*`, …).
pub const ALWAYS_DENIED_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "BASH_FUNC_",
    "PYTHON",
    "PERL5",
    "NPM_CONFIG_",
    "GIT_CONFIG",
];

/// Always-denied suffix families (`*_PROXY`).
pub const ALWAYS_DENIED_SUFFIXES: &[&str] = &["_PROXY"];

/// Whether `name` is always denied (ASCII case-insensitive).
pub fn is_always_denied(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    ALWAYS_DENIED.contains(&up.as_str())
        || ALWAYS_DENIED_PREFIXES.iter().any(|p| up.starts_with(p))
        || ALWAYS_DENIED_SUFFIXES.iter().any(|s| up.ends_with(s))
}

/// Whether `name` matches `[A-Za-z_][A-Za-z0-9_]*` (untrimmed).
pub fn valid_env_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Checks one env payload: an object of string → string with valid names, each name not
/// always-denied and present in `allowlist` (exact). All denied names are reported, sorted.
pub fn check_env_payload(
    value: &Value,
    location: &str,
    allowlist: &[String],
) -> Result<(), PolicyError> {
    let bad = |reason: &str| PolicyError::InvalidEnvPayload {
        reason: reason.to_owned(),
        location: location.to_owned(),
    };
    let Value::Object(map) = value else {
        return Err(bad("expected_object"));
    };
    if map.values().any(|v| !v.is_string()) {
        return Err(bad("non_string_value"));
    }
    if map.keys().any(|k| !valid_env_name(k)) {
        return Err(bad("invalid_name"));
    }
    let mut denied: Vec<String> = map
        .keys()
        .filter(|k| is_always_denied(k) || !allowlist.iter().any(|a| a == *k))
        .cloned()
        .collect();
    if denied.is_empty() {
        return Ok(());
    }
    denied.sort();
    Err(PolicyError::EnvVarsNotAllowed { keys: denied })
}
