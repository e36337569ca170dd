//! Tool rules (SPEC §5.3): `allow_tools` / `deny_tools` name patterns with `*`, conversation
//! narrowing, sub-agent template gating and `tool_not_exposed` for model-originated calls.

use crate::error::PolicyError;
use crate::policy_set::PolicySet;
use crate::request::{CallSource, ToolRequest};

/// Whether `p` is a valid tool pattern: non-empty, `[A-Za-z0-9_.*-]` only.
pub(crate) fn valid_tool_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.*-".contains(&b))
}

/// Glob match where `*` matches any run of characters (including `.`) and nothing else is
/// special. Linear-time two-pointer algorithm with backtracking to the last star.
pub fn tool_pattern_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if Some(c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

/// Outcome of the tool rules: the rule key that denied and the error.
pub(crate) struct ToolRuleDenial {
    pub key: String,
    pub value: String,
    pub error: PolicyError,
}

impl PolicySet {
    /// §5.3 in order: `deny_tools` (wins), `allow_tools`, conversation `allow_tools`,
    /// `subagent_templates_allowlist` for `agent.spawn.<id>`, offered tools for model calls.
    pub(crate) fn tool_rules(&self, req: &ToolRequest<'_>) -> Result<(), ToolRuleDenial> {
        let name = req.tool.name();
        let denied = |key: String, value: String| ToolRuleDenial {
            error: PolicyError::Denied { rule: key.clone() },
            key,
            value,
        };
        if let Some((i, p)) = self
            .opts
            .deny_tools
            .iter()
            .enumerate()
            .find(|(_, p)| tool_pattern_matches(p, name))
        {
            return Err(denied(format!("deny_tools[{i}]"), p.clone()));
        }
        if let Some(allow) = &self.opts.allow_tools
            && !allow.iter().any(|p| tool_pattern_matches(p, name))
        {
            return Err(denied(
                "builtin:not_in_allow_tools".to_owned(),
                name.to_owned(),
            ));
        }
        if let Some(conv) = req.conversation_allow_tools
            && !conv.iter().any(|p| tool_pattern_matches(p, name))
        {
            return Err(denied(
                "builtin:not_in_conversation_allow_tools".to_owned(),
                name.to_owned(),
            ));
        }
        if let (Some(id), Some(list)) = (
            name.strip_prefix("agent.spawn."),
            &self.opts.subagent_templates_allowlist,
        ) && !list.iter().any(|p| tool_pattern_matches(p, id))
        {
            return Err(denied(
                "builtin:not_in_subagent_templates_allowlist".to_owned(),
                id.to_owned(),
            ));
        }
        if req.source == CallSource::Model
            && !req
                .offered_tools
                .is_some_and(|o| o.iter().any(|t| t == name))
        {
            return Err(ToolRuleDenial {
                key: "builtin:tool_not_exposed".to_owned(),
                value: name.to_owned(),
                error: PolicyError::ToolNotExposed {
                    name: name.to_owned(),
                },
            });
        }
        Ok(())
    }
}
