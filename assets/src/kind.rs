//! [`AssetKind`]: the four kinds of project assets and the directory each lives in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::AssetsError;

/// The kind of an asset. Parses case-insensitively from `skill(s)`, `command(s)`,
/// `workflow(s)` and `skill_graph` (also `skill-graph`, `skillgraph`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// `skills/`: flat markdown skills and Agent Skills `SKILL.md` directories.
    Skill,
    /// `commands/`: commands, exposed as `command.run.<name>` tools.
    Command,
    /// `workflows/`: workflows, exposed as `workflow.run.<name>` tools.
    Workflow,
    /// `skill_graph/`: notes linked with `[[wiki links]]`.
    SkillGraph,
}

impl AssetKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AssetKind; 4] = [Self::Skill, Self::Command, Self::Workflow, Self::SkillGraph];

    /// The snake_case name (`skill`, `command`, `workflow`, `skill_graph`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skill => "skill",
            Self::Command => "command",
            Self::Workflow => "workflow",
            Self::SkillGraph => "skill_graph",
        }
    }

    /// The directory under the data dir that holds this kind.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Skill => "skills",
            Self::Command => "commands",
            Self::Workflow => "workflows",
            Self::SkillGraph => "skill_graph",
        }
    }

    /// The kind whose directory is `name`, if any.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.dir_name() == name)
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssetKind {
    type Err = AssetsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "skill" | "skills" => Ok(Self::Skill),
            "command" | "commands" => Ok(Self::Command),
            "workflow" | "workflows" => Ok(Self::Workflow),
            "skill_graph" | "skill-graph" | "skillgraph" => Ok(Self::SkillGraph),
            _ => Err(AssetsError::InvalidAssetKind { kind: s.to_owned() }),
        }
    }
}

impl TryFrom<&str> for AssetKind {
    type Error = AssetsError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively() {
        assert_eq!("Skills".parse::<AssetKind>(), Ok(AssetKind::Skill));
        assert_eq!("COMMAND".parse::<AssetKind>(), Ok(AssetKind::Command));
        assert_eq!("workflows".parse::<AssetKind>(), Ok(AssetKind::Workflow));
        assert_eq!(
            "Skill_Graph".parse::<AssetKind>(),
            Ok(AssetKind::SkillGraph)
        );
        let err = "agents".parse::<AssetKind>().unwrap_err();
        assert_eq!(err.code(), "invalid_asset_kind");
    }
}
