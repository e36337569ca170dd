//! Sensitive paths (SPEC §5.5): the built-in list plus `sensitive_path_denylist`, gitignore-like
//! patterns with literal separators, ASCII case-insensitive, exempted by
//! `sensitive_path_allowlist`; compiled once into two `GlobSet`s.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::paths::{PathForms, rel_to};
use crate::policy_set::PolicySet;

/// The built-in sensitive patterns, always in force (SPEC §5.5).
pub const BUILTIN_SENSITIVE: &[&str] = &[
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
    ".ssh/*",
    ".gnupg/*",
    ".aws/credentials",
    ".aws/sso/cache/*",
    ".config/gcloud/*",
    ".azure/*",
    ".kube/config",
    ".docker/config.json",
    "credentials.json",
    "service-account*.json",
    "*.tfstate",
    "*.tfstate.backup",
    ".npmrc",
    ".pypirc",
    ".gem/credentials",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".git-credentials",
    ".config/gh/hosts.yml",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".my.cnf",
    ".*_history",
];

/// Compiled deny and allow pattern sets (shared: cloning is an `Arc` bump).
#[derive(Debug, Clone)]
pub(crate) struct SensitiveMatcher {
    inner: std::sync::Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    deny: GlobSet,
    /// Glob index → (source pattern, rule key).
    deny_source: Vec<(String, String)>,
    allow: GlobSet,
}

/// Most distinct (deny, allow) lists kept compiled; the cache is emptied when full.
const CACHE_LIMIT: usize = 64;

type CacheKey = (Vec<(String, String)>, Vec<String>);

/// Compiled matchers by their pattern lists: projects with the same lists (the common case —
/// the built-in list plus the same few extras) share one compile (a `GlobSet` of ~90 globs
/// costs milliseconds to build).
fn cache()
-> &'static std::sync::Mutex<std::collections::HashMap<CacheKey, std::sync::Arc<Compiled>>> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<CacheKey, std::sync::Arc<Compiled>>>,
    > = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn glob(p: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(p).literal_separator(true).build()
}

/// The globs a gitignore-like pattern expands to (`covers_below`: also everything under it).
fn expand(pattern: &str, covers_below: bool) -> Vec<String> {
    let p = pattern.to_ascii_lowercase();
    let p = p.trim_end_matches('/');
    let (body, anchored) = match p.strip_prefix('/') {
        Some(rest) => (rest.to_owned(), true),
        None => (p.to_owned(), false),
    };
    let head = if anchored {
        body.clone()
    } else {
        format!("**/{body}")
    };
    let mut out = vec![head.clone()];
    if covers_below {
        out.push(format!("{head}/**"));
    }
    out
}

/// Validates one pattern (for `invalid_glob`).
pub(crate) fn validate_pattern(p: &str) -> bool {
    !p.is_empty() && expand(p, true).iter().all(|g| glob(g).is_ok())
}

impl SensitiveMatcher {
    pub(crate) fn new<'a>(
        deny: impl IntoIterator<Item = (&'a str, String)>,
        allow: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, globset::Error> {
        let deny: Vec<(String, String)> =
            deny.into_iter().map(|(p, k)| (p.to_owned(), k)).collect();
        let allow: Vec<String> = allow.into_iter().map(str::to_owned).collect();
        let key: CacheKey = (deny, allow);
        if let Ok(map) = cache().lock()
            && let Some(hit) = map.get(&key)
        {
            return Ok(Self { inner: hit.clone() });
        }
        let mut db = GlobSetBuilder::new();
        let mut deny_source = Vec::new();
        for (p, rule) in &key.0 {
            for g in expand(p, true) {
                db.add(glob(&g)?);
                deny_source.push((p.clone(), rule.clone()));
            }
        }
        let mut ab = GlobSetBuilder::new();
        for p in &key.1 {
            for g in expand(p, false) {
                ab.add(glob(&g)?);
            }
        }
        let compiled = std::sync::Arc::new(Compiled {
            deny: db.build()?,
            deny_source,
            allow: ab.build()?,
        });
        if let Ok(mut map) = cache().lock() {
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
            map.insert(key, compiled.clone());
        }
        Ok(Self { inner: compiled })
    }

    /// The (pattern, rule key) matching `rel` (root-relative or absolute), unless allow-listed.
    pub(crate) fn matches(&self, rel: &str) -> Option<(&str, &str)> {
        let lowered;
        let s = if rel.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = rel.to_ascii_lowercase();
            lowered.as_str()
        } else {
            rel
        };
        let s = s.trim_start_matches('/');
        if s.is_empty() {
            return None;
        }
        let cand = globset::Candidate::new(s);
        let c = &self.inner;
        if !c.deny.is_match_candidate(&cand) {
            return None;
        }
        let idx = c.deny.matches_candidate(&cand).into_iter().next()?;
        if c.allow.is_match_candidate(&cand) {
            return None;
        }
        c.deny_source
            .get(idx)
            .map(|(p, k)| (p.as_str(), k.as_str()))
    }
}

impl PolicySet {
    /// The form a path is matched in: relative to the root containing it, else absolute.
    fn sensitive_subject<'p>(&self, p: &'p Path) -> std::borrow::Cow<'p, str> {
        match rel_to(p, &self.ctx.canonical_root).or_else(|| rel_to(p, &self.given_root)) {
            Some(rel) => std::borrow::Cow::Borrowed(rel),
            None => p.to_string_lossy(),
        }
    }

    /// The sensitive pattern matching `path` (absolute or root-relative), if any and not
    /// allow-listed. Used by `fs.search` to skip files; `evaluate` checks every form.
    pub fn sensitive_match(&self, path: &Path) -> Option<String> {
        let s = self.sensitive_subject(path);
        self.sensitive.matches(&s).map(|(p, _)| p.to_owned())
    }

    /// §5.5 on every distinct form: `(shown path, pattern)` of the first match.
    pub(crate) fn sensitive_forms(&self, forms: &PathForms) -> Option<(String, String)> {
        self.sensitive_forms_keyed(forms)
            .map(|(p, pat, _)| (p, pat))
    }

    /// Like `sensitive_forms`, plus the rule key (`builtin:sensitive_paths` or
    /// `sensitive_path_denylist[i]`).
    pub(crate) fn sensitive_forms_keyed(
        &self,
        forms: &PathForms,
    ) -> Option<(String, String, String)> {
        forms.distinct().find_map(|p| {
            let s = self.sensitive_subject(p);
            self.sensitive
                .matches(&s)
                .map(|(pat, key)| (s.to_string(), pat.to_owned(), key.to_owned()))
        })
    }
}
