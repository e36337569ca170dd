//! The four option layers (SPEC §3.1) and how one key's effective value is picked from them:
//! [`OptionLayers`], [`OptionSource`] and the crate-internal `Picker` that
//! [`super::EffectiveOptions::resolve`] drives key by key.
//!
//! Precedence is later-over-earlier (default < daemon < file < api) except that an untrusted
//! file's narrowing keys merge narrowing-only against the layer below it (see
//! `policy_keys`). A value that fails validation is reported with `details.source` (and, for
//! the file, `path` and `line`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use codeward_policies::{PolicyOptions, RawPolicyOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{OptionsError, Result};
use super::keys::{ProjectOptions, is_narrowing_key};
use super::policy_keys::{check_policy_key, narrow, policy_value};
use super::toml_file::ProjectFile;
use super::validate::{self, Checked};

/// Which layer an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionSource {
    /// Built-in default.
    Default,
    /// The daemon config's `[defaults]` (`EngineConfig.defaults`).
    Daemon,
    /// `<root>/codeward.toml`.
    File,
    /// The options given to `start_project` (or a daemon `[[projects]]` entry).
    Api,
}

impl OptionSource {
    /// `default` / `daemon` / `file` / `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Daemon => "daemon",
            Self::File => "file",
            Self::Api => "api",
        }
    }
}

/// The option layers of one project; the built-in defaults are implied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptionLayers {
    /// Layer 2: the daemon config's `[defaults]` (operator).
    pub daemon: ProjectOptions,
    /// Layer 3: `<root>/codeward.toml` (repository content), if present.
    pub file: Option<ProjectFile>,
    /// Layer 4: the `start_project` options (operator).
    pub api: ProjectOptions,
}

impl OptionLayers {
    /// Layers from their parts.
    pub fn new(daemon: ProjectOptions, file: Option<ProjectFile>, api: ProjectOptions) -> Self {
        Self { daemon, file, api }
    }

    /// `trust_project_file` as the operator layers set it (api over daemon; default false).
    /// Fails with `expected_boolean`, or `unknown_option` when the project file itself sets it.
    pub fn trust_project_file(&self) -> Result<bool> {
        const KEY: &str = "trust_project_file";
        if let Some(f) = &self.file
            && f.options.trust_project_file.is_some()
        {
            return Err(OptionsError::opt_with(
                KEY,
                "unknown_option",
                file_details(f, KEY, json!({ "allowed_in": ["daemon", "api"] })),
            ));
        }
        let (v, source) = match (
            &self.api.trust_project_file,
            &self.daemon.trust_project_file,
        ) {
            (Some(v), _) => (v, OptionSource::Api),
            (None, Some(v)) => (v, OptionSource::Daemon),
            (None, None) => return Ok(false),
        };
        validate::boolean(v).map_err(|f| tag(f.at(KEY), source, None, KEY))
    }
}

/// Whether `root` lies under one of `trusted_roots` (component-wise ancestry; both sides
/// canonical), i.e. whether its `codeward.toml` is trusted by `EngineConfig.trusted_roots`.
pub fn root_is_trusted(root: &Path, trusted_roots: &[PathBuf]) -> bool {
    trusted_roots.iter().any(|t| root.starts_with(t))
}

fn file_details(f: &ProjectFile, key: &str, extra: Value) -> Value {
    let mut m = Map::new();
    m.insert("source".to_owned(), json!("file"));
    m.insert("path".to_owned(), json!(f.path));
    if let Some(l) = f.line_of(key) {
        m.insert("line".to_owned(), json!(l));
    }
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    Value::Object(m)
}

/// Adds `source` (and the file's `path` / `line`) to an error's details.
fn tag(
    e: OptionsError,
    source: OptionSource,
    file: Option<&ProjectFile>,
    key: &str,
) -> OptionsError {
    let extra = match (source, file) {
        (OptionSource::File, Some(f)) => file_details(f, key, json!({})),
        _ => json!({ "source": source.as_str() }),
    };
    match extra {
        Value::Object(m) => e.with_details(&m),
        _ => e,
    }
}

/// Picks and validates effective values key by key, recording each key's source.
pub(crate) struct Picker<'a> {
    layers: &'a OptionLayers,
    trusted: bool,
    sources: BTreeMap<String, OptionSource>,
    policy_raw: Map<String, Value>,
}

impl<'a> Picker<'a> {
    pub(crate) fn new(layers: &'a OptionLayers, trusted: bool) -> Self {
        Self {
            layers,
            trusted,
            sources: BTreeMap::new(),
            policy_raw: Map::new(),
        }
    }

    pub(crate) fn into_parts(self) -> (BTreeMap<String, OptionSource>, Map<String, Value>) {
        (self.sources, self.policy_raw)
    }

    fn file(&self) -> Option<&'a ProjectFile> {
        self.layers.file.as_ref()
    }

    /// The value below the file layer (daemon, else default = `None`).
    fn below(&self, key: &str) -> (Option<&'a Value>, OptionSource) {
        match self.layers.daemon.get(key) {
            Some(v) => (Some(v), OptionSource::Daemon),
            None => (None, OptionSource::Default),
        }
    }

    /// The highest layer that sets `key`.
    fn pick(&self, key: &str) -> (Option<&'a Value>, OptionSource) {
        if let Some(v) = self.layers.api.get(key) {
            return (Some(v), OptionSource::Api);
        }
        if let Some(v) = self.file().and_then(|f| f.options.get(key)) {
            return (Some(v), OptionSource::File);
        }
        self.below(key)
    }

    fn tag(&self, e: OptionsError, source: OptionSource, key: &str) -> OptionsError {
        tag(e, source, self.file(), key)
    }

    /// Records `key`'s source and returns its effective value (or `None` = default) without
    /// checking it.
    pub(crate) fn raw(&mut self, key: &str) -> (Option<&'a Value>, OptionSource) {
        let (v, source) = self.pick(key);
        self.sources.insert(key.to_owned(), source);
        (v, source)
    }

    /// A plain key: the highest layer's value through `check`, or `default`.
    pub(crate) fn plain<T>(
        &mut self,
        key: &str,
        default: T,
        check: impl FnOnce(&Value) -> Checked<T>,
    ) -> Result<T> {
        self.plain_with(key, default, |v| check(v).map_err(|f| f.at(key)))
    }

    /// [`Picker::plain`] with a checker that reports its own error (list-of-map keys).
    pub(crate) fn plain_with<T>(
        &mut self,
        key: &str,
        default: T,
        check: impl FnOnce(&Value) -> Result<T>,
    ) -> Result<T> {
        match self.raw(key) {
            (Some(v), source) => check(v).map_err(|e| self.tag(e, source, key)),
            (None, _) => Ok(default),
        }
    }

    /// Tags an error found after picking (cross-key rules) with `key`'s source.
    pub(crate) fn tag_key(&self, e: OptionsError, key: &str) -> OptionsError {
        let source = self
            .sources
            .get(key)
            .copied()
            .unwrap_or(OptionSource::Default);
        self.tag(e, source, key)
    }

    /// A boolean whose safer value is `true` (narrowing from an untrusted file: OR).
    pub(crate) fn safer_bool(&mut self, key: &str, default: bool) -> Result<bool> {
        let check = |v: &Value, source: OptionSource, me: &Self| {
            validate::boolean(v).map_err(|f| me.tag(f.at(key), source, key))
        };
        let file = self.file().and_then(|f| f.options.get(key));
        if self.layers.api.get(key).is_some() || self.trusted || file.is_none() {
            let (v, source) = self.raw(key);
            return v.map_or(Ok(default), |v| check(v, source, self));
        }
        let (below, below_source) = self.below(key);
        let below = below.map_or(Ok(default), |v| check(v, below_source, self))?;
        let f = file.map_or(Ok(false), |v| check(v, OptionSource::File, self))?;
        let out = below || f;
        let source = if out == below {
            below_source
        } else {
            OptionSource::File
        };
        self.sources.insert(key.to_owned(), source);
        Ok(out)
    }

    /// A policy key: validated by the policy crate; narrowing-only from an untrusted file.
    pub(crate) fn policy(&mut self, key: &str) -> Result<()> {
        let check = |v: &Value, source: OptionSource, me: &Self| -> Result<PolicyOptions> {
            check_policy_key(key, v).map_err(|e| me.tag(e.into(), source, key))
        };
        let file = self.file().and_then(|f| f.options.get(key));
        let untrusted_file = self.layers.api.get(key).is_none() && !self.trusted && file.is_some();
        let (value, source) = if untrusted_file && is_narrowing_key(key) {
            let (below, below_source) = self.below(key);
            let below = match below {
                Some(v) => check(v, below_source, self)?,
                None => PolicyOptions::default(),
            };
            let f = match file {
                Some(v) => check(v, OptionSource::File, self)?,
                None => PolicyOptions::default(),
            };
            let narrowed = policy_value(key, &narrow(key, &below, &f));
            let source = if narrowed == policy_value(key, &below) {
                below_source
            } else {
                OptionSource::File
            };
            (Some(narrowed), source)
        } else {
            let (v, source) = self.pick(key);
            if let Some(v) = v {
                check(v, source, self)?;
                if untrusted_file
                    && key == "state_dir"
                    && v.as_str().is_some_and(|s| Path::new(s).is_absolute())
                {
                    // An untrusted repository must not place the journal outside its data dir
                    // (e.g. into another project's state dir).
                    return Err(self.tag(
                        OptionsError::opt_with(
                            key,
                            "must_be_relative",
                            json!({ "untrusted": true }),
                        ),
                        source,
                        key,
                    ));
                }
            }
            (v.cloned(), source)
        };
        self.sources.insert(key.to_owned(), source);
        if let Some(v) = value {
            self.policy_raw.insert(key.to_owned(), v);
        }
        Ok(())
    }
}

/// The validated [`PolicyOptions`] of the picked policy values.
pub(crate) fn policy_options(raw: Map<String, Value>) -> Result<PolicyOptions> {
    let raw = RawPolicyOptions::from_json(&Value::Object(raw))?;
    Ok(PolicyOptions::try_from(raw)?)
}
