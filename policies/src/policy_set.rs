//! [`PolicySet`]: the immutable, compiled policy of one project (options + context), built
//! once by the policy actor and shared as an `Arc` snapshot. Rule methods live next to their
//! rules (`paths.rs`, `sensitive.rs`, `net.rs`, `tools.rs`); this file holds compile and the
//! plain accessors.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::error::{InvalidRuntimeOpt, PolicyError};
use crate::net::AllowEntry;
use crate::options::{OutsideRootEntry, OutsideRootTarget, PolicyOptions};
use crate::paths::normalize_lexically;
use crate::sensitive::{BUILTIN_SENSITIVE, SensitiveMatcher};

/// Where the project lives; supplied by the runtime (not part of the options).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyContext {
    /// The canonicalized root (no symlinks). INVARIANT relied on by path resolution.
    pub canonical_root: PathBuf,
    /// The root as given by the caller (absolute; lexically normalized at compile).
    pub given_root: PathBuf,
    /// The resolved state dir (journal home); unreachable for every tool.
    pub state_dir: Option<PathBuf>,
    /// `<data_dir>/tmp`, parent of per-call scratch dirs; other calls' scratch dirs are
    /// unreachable.
    pub scratch_base: Option<PathBuf>,
}

impl PolicyContext {
    /// A context where the canonical and given root are the same path.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            canonical_root: root.clone(),
            given_root: root,
            state_dir: None,
            scratch_base: None,
        }
    }
}

/// The compiled policy of one project.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) opts: PolicyOptions,
    pub(crate) ctx: PolicyContext,
    pub(crate) given_root: PathBuf,
    pub(crate) outside: Vec<OutsideRootEntry>,
    pub(crate) outside_matchers: Vec<Option<GlobMatcher>>,
    pub(crate) sensitive: SensitiveMatcher,
    pub(crate) allow_entries: Vec<AllowEntry>,
}

impl PolicySet {
    /// Validates `opts` and compiles globs, allowlist entries and areas.
    ///
    /// Relative `outside_root_allowlist` paths and patterns join the canonical root.
    pub fn compile(
        opts: &PolicyOptions,
        ctx: PolicyContext,
    ) -> Result<PolicySet, InvalidRuntimeOpt> {
        opts.validate()?;
        let root = normalize_lexically(Path::new("/"), &ctx.canonical_root.to_string_lossy());
        let given_root = normalize_lexically(&root, &ctx.given_root.to_string_lossy());
        let ctx = PolicyContext {
            canonical_root: root.clone(),
            given_root: given_root.clone(),
            state_dir: ctx
                .state_dir
                .map(|s| normalize_lexically(&root, &s.to_string_lossy())),
            scratch_base: ctx
                .scratch_base
                .map(|s| normalize_lexically(&root, &s.to_string_lossy())),
        };
        let mut outside = Vec::new();
        let mut outside_matchers = Vec::new();
        for (i, e) in opts.outside_root_allowlist.iter().enumerate() {
            let (target, matcher) = match &e.target {
                OutsideRootTarget::Path(p) => (
                    OutsideRootTarget::Path(normalize_lexically(&root, &p.to_string_lossy())),
                    None,
                ),
                OutsideRootTarget::Pattern(p) => {
                    let abs = if p.starts_with('/') || p.starts_with("**") {
                        p.clone()
                    } else {
                        format!("{}/{p}", root.display())
                    };
                    let m = GlobBuilder::new(&abs)
                        .literal_separator(true)
                        .build()
                        .map_err(|_| {
                            InvalidRuntimeOpt::entry("outside_root_allowlist", i, "invalid_glob")
                        })?
                        .compile_matcher();
                    (OutsideRootTarget::Pattern(abs), Some(m))
                }
            };
            outside.push(OutsideRootEntry {
                target,
                reason_code: e.reason_code.clone(),
                access: e.access,
            });
            outside_matchers.push(matcher);
        }
        let deny = BUILTIN_SENSITIVE
            .iter()
            .map(|p| (*p, "builtin:sensitive_paths".to_owned()))
            .chain(
                opts.sensitive_path_denylist
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.as_str(), format!("sensitive_path_denylist[{i}]"))),
            );
        let sensitive = SensitiveMatcher::new(
            deny,
            opts.sensitive_path_allowlist.iter().map(String::as_str),
        )
        .map_err(|_| InvalidRuntimeOpt::new("sensitive_path_denylist", "invalid_glob"))?;
        let allow_entries = opts
            .network_allowlist
            .iter()
            .enumerate()
            .map(|(i, s)| {
                AllowEntry::parse(s)
                    .ok_or_else(|| InvalidRuntimeOpt::entry("network_allowlist", i, "invalid_host"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut opts = opts.clone();
        opts.command_read_paths = opts
            .command_read_paths
            .iter()
            .map(|p| normalize_lexically(Path::new("/"), &p.to_string_lossy()))
            .collect();
        Ok(PolicySet {
            opts,
            ctx,
            given_root,
            outside,
            outside_matchers,
            sensitive,
            allow_entries,
        })
    }

    /// The validated options this set was compiled from.
    pub fn options(&self) -> &PolicyOptions {
        &self.opts
    }

    /// The context this set was compiled with (paths lexically normalized).
    pub fn context(&self) -> &PolicyContext {
        &self.ctx
    }

    /// The canonical project root.
    pub fn canonical_root(&self) -> &Path {
        &self.ctx.canonical_root
    }

    /// `outside_root_allowlist` with absolute paths / patterns (for Landlock rules).
    pub fn outside_root_entries(&self) -> &[OutsideRootEntry] {
        &self.outside
    }

    /// `command_read_paths` (absolute, normalized).
    pub fn command_read_paths(&self) -> &[PathBuf] {
        &self.opts.command_read_paths
    }

    /// `tool_env_inherit`.
    pub fn env_inherit(&self) -> &[String] {
        &self.opts.tool_env_inherit
    }

    /// `tool_env_allowlist`.
    pub fn env_allowlist(&self) -> &[String] {
        &self.opts.tool_env_allowlist
    }

    /// `redact_tool_results`.
    pub fn redact_tool_results(&self) -> bool {
        self.opts.redact_tool_results
    }

    /// `require_os_sandbox`.
    pub fn require_os_sandbox(&self) -> bool {
        self.opts.require_os_sandbox
    }

    /// §5.8: whether a front-end protocol is allowed (`*` admits all, `[]` none; trimmed,
    /// ASCII case-insensitive).
    pub fn protocol_allowed(&self, protocol: &str) -> Result<(), PolicyError> {
        let p = protocol.trim();
        if self
            .opts
            .protocol_allowlist
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(p))
        {
            Ok(())
        } else {
            Err(PolicyError::ProtocolDenied {
                protocol: protocol.to_owned(),
            })
        }
    }

    /// Whether `name` passes `allow_tools` / `deny_tools` (for `list_tools` filtering).
    pub fn tool_listed(&self, name: &str) -> bool {
        use crate::tools::tool_pattern_matches;
        !self
            .opts
            .deny_tools
            .iter()
            .any(|p| tool_pattern_matches(p, name))
            && self
                .opts
                .allow_tools
                .as_ref()
                .is_none_or(|a| a.iter().any(|p| tool_pattern_matches(p, name)))
    }
}
