//! Skills: flat `skills/**/<name>.md` and Agent Skills `skills/<name>/SKILL.md`.

use std::path::Path;

use serde_json::Value;

use super::{Fields, ParseResult, make_asset, read_document};
use crate::error::AssetErrorReason;
use crate::kind::AssetKind;
use crate::model::{AssetDefinition, Registration, SkillDef, SkillLayout};
use crate::text;

/// The Agent Skills entry file name.
pub const SKILL_FILE: &str = "SKILL.md";

/// Parses a skill. A file named `SKILL.md` uses the Agent Skills rules: `name` and
/// `description` are required and `name` must equal the parent directory's name. Resources
/// are filled in by the loader.
pub fn parse_skill(path: &Path, bytes: &[u8]) -> ParseResult {
    let kind = AssetKind::Skill;
    let doc = match read_document(kind, path, bytes) {
        Ok(d) => d,
        Err(e) => return ParseResult::failed(e),
    };
    let agent = path.file_name().is_some_and(|n| n == SKILL_FILE);
    let fm = doc.front_matter.clone();
    let mut f = Fields::new(kind, path, &fm);
    let name = if agent {
        let dir = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match f.string(&["name"]) {
            None => {
                f.missing("name");
                None
            }
            Some(n) if !text::is_slug(&n) => {
                f.invalid("name", format!("`{n}` is not a slug `[a-z0-9][a-z0-9_-]*`"));
                None
            }
            Some(n) if n != dir => {
                let message = format!("name `{n}` differs from its directory `{dir}`");
                f.error(AssetErrorReason::NameMismatch, "name", message);
                None
            }
            Some(n) => Some(n),
        }
    } else {
        f.name_or_stem()
    };
    let description = f.string(&["description"]);
    if agent && description.as_deref().is_none_or(str::is_empty) {
        f.missing("description");
    }
    let license = f.string(&["license"]);
    let allowed_tools = f.tool_list(&["allowed-tools", "allowed_tools"]);
    let metadata = match f.get(&["metadata"]) {
        None | Some((_, Value::Null)) => None,
        Some((_, v @ Value::Object(_))) => Some(v.clone()),
        Some((key, _)) => {
            f.invalid(key, "expected a map");
            None
        }
    };
    let errors = std::mem::take(&mut f.errors);
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return ParseResult {
            asset: None,
            errors,
        };
    };
    let def = SkillDef {
        layout: if agent {
            SkillLayout::AgentSkills
        } else {
            SkillLayout::Flat
        },
        license,
        allowed_tools,
        metadata,
        resources: Vec::new(),
    };
    let asset = make_asset(
        kind,
        path,
        bytes,
        name,
        description.unwrap_or_default(),
        doc,
        Registration::valid(),
        AssetDefinition::Skill(def),
    );
    ParseResult {
        asset: Some(asset),
        errors,
    }
}
