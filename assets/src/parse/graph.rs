//! Skill-graph nodes: id = file stem, title from front matter `title`, the first `# `
//! heading or the id, and `[[wiki links]]`. Edges are resolved against the other nodes when
//! the snapshot is built ([`crate::snapshot`]).

use std::path::Path;

use super::{Fields, ParseResult, make_asset, read_document, stem};
use crate::error::AssetErrorReason;
use crate::kind::AssetKind;
use crate::model::{AssetDefinition, GraphEdge, GraphNode, Registration};
use crate::text;

/// Parses one skill-graph node. Its `edges` hold the raw link targets (`dangling: false`)
/// until the snapshot resolves them.
pub fn parse_graph_node(path: &Path, bytes: &[u8]) -> ParseResult {
    let kind = AssetKind::SkillGraph;
    let doc = match read_document(kind, path, bytes) {
        Ok(d) => d,
        Err(e) => return ParseResult::failed(e),
    };
    let id = stem(path);
    let fm = doc.front_matter.clone();
    let mut f = Fields::new(kind, path, &fm);
    if id.trim().is_empty() {
        f.error(
            AssetErrorReason::InvalidField,
            "id",
            "empty file stem".into(),
        );
    }
    let title = f
        .string(&["title"])
        .filter(|t| !t.is_empty())
        .or_else(|| text::first_heading(&doc.body).map(str::to_owned))
        .unwrap_or_else(|| id.clone());
    let errors = std::mem::take(&mut f.errors);
    if !errors.is_empty() {
        return ParseResult {
            asset: None,
            errors,
        };
    }
    let mut edges: Vec<GraphEdge> = Vec::new();
    for (target, label) in extract_links(&doc.body) {
        if edges.iter().any(|e| e.to == target) {
            continue;
        }
        edges.push(GraphEdge {
            from: id.clone(),
            to: target,
            label,
            dangling: false,
        });
    }
    let node = GraphNode {
        id: id.clone(),
        title: title.clone(),
        path: path.to_path_buf(),
        edges,
        backlinks: Vec::new(),
    };
    let asset = make_asset(
        kind,
        path,
        bytes,
        id,
        title,
        doc,
        Registration::valid(),
        AssetDefinition::GraphNode(node),
    );
    ParseResult {
        asset: Some(asset),
        errors,
    }
}

/// Extracts `[[Target]]` / `[[Target|label]]` links outside fenced code blocks, in order:
/// targets trimmed, `#fragment` dropped, a trailing `.md` and any folder prefix removed;
/// empty targets (`[[#heading]]`) skipped.
pub fn extract_links(body: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in body.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("[[") {
            let after = rest.get(start + 2..).unwrap_or("");
            let Some(end) = after.find("]]") else { break };
            let inner = after.get(..end).unwrap_or("");
            rest = after.get(end + 2..).unwrap_or("");
            let (target, label) = match inner.split_once('|') {
                Some((t, l)) => (t, Some(l.trim().to_owned()).filter(|l| !l.is_empty())),
                None => (inner, None),
            };
            let target = target.split('#').next().unwrap_or("").trim();
            let target = target.strip_suffix(".md").unwrap_or(target);
            let target = target.rsplit('/').next().unwrap_or(target).trim();
            if !target.is_empty() && !target.contains('[') {
                out.push((target.to_owned(), label));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        let body =
            "see [[a]], [[ b | the B ]] and [[c#sec]] [[#self]] [[dir/d.md]]\n```\n[[no]]\n```";
        assert_eq!(
            extract_links(body),
            vec![
                ("a".into(), None),
                ("b".into(), Some("the B".into())),
                ("c".into(), None),
                ("d".into(), None)
            ]
        );
    }
}
