//! Search over a snapshot (SPEC §10.4): a lowercase index built once per snapshot, AND of
//! whitespace-separated terms over name, description, path and body, ranked name-first; and
//! graph search over nodes and edges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{AssetsError, InvalidQueryReason};
use crate::kind::AssetKind;
use crate::model::{Asset, AssetHit, GraphEdge};
use crate::snapshot::AssetSnapshot;

/// Default number of hits.
pub const DEFAULT_SEARCH_LIMIT: usize = 50;
/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 200;

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    name_lc: String,
    desc_lc: String,
    path_lc: String,
    body_lc: String,
}

/// Lowercased search fields of every asset, per kind, in name order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SearchIndex {
    kinds: [Vec<Entry>; 4],
}

impl SearchIndex {
    pub(crate) fn build(assets: &[BTreeMap<String, Asset>; 4]) -> Self {
        let mut kinds: [Vec<Entry>; 4] = Default::default();
        for (slot, map) in kinds.iter_mut().zip(assets.iter()) {
            *slot = map
                .values()
                .map(|a| Entry {
                    name: a.name.clone(),
                    name_lc: a.name.to_lowercase(),
                    desc_lc: a.description.to_lowercase(),
                    path_lc: a.path.to_string_lossy().to_lowercase(),
                    body_lc: a.body.to_lowercase(),
                })
                .collect();
        }
        Self { kinds }
    }
}

/// Hits of a graph search: matching nodes and the edges that touch them or whose label matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphSearchResult {
    /// Matching nodes, ranked like [`AssetSnapshot::search`].
    pub nodes: Vec<AssetHit>,
    /// Edges from or to a matching node, or whose label contains every term; sorted.
    pub edges: Vec<GraphEdge>,
}

fn normalize_query(query: &str) -> Result<Vec<String>, AssetsError> {
    let q = query.trim();
    if q.is_empty() {
        return Err(AssetsError::InvalidQuery {
            reason: InvalidQueryReason::Blank,
        });
    }
    if q.len() > MAX_QUERY_BYTES {
        return Err(AssetsError::InvalidQuery {
            reason: InvalidQueryReason::TooLong,
        });
    }
    let mut terms: Vec<String> = Vec::new();
    for t in q.to_lowercase().split_whitespace() {
        if !terms.iter().any(|x| x == t) {
            terms.push(t.to_owned());
        }
    }
    Ok(terms)
}

fn snippet(body: &str, body_lc: &str, terms: &[String]) -> String {
    let Some(pos) = terms.iter().filter_map(|t| body_lc.find(t.as_str())).min() else {
        return String::new();
    };
    // Lowercasing can change byte lengths (rare Unicode); then cut from the lowercase text.
    let src = if body.len() == body_lc.len() && body.is_char_boundary(pos) {
        body
    } else {
        body_lc
    };
    let prefix = src.get(..pos).unwrap_or("");
    let start_byte = prefix
        .char_indices()
        .rev()
        .take(SNIPPET_CHARS / 4)
        .last()
        .map_or(pos, |(i, _)| i);
    let text: String = src
        .get(start_byte..)
        .unwrap_or("")
        .chars()
        .take(SNIPPET_CHARS)
        .collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl AssetSnapshot {
    /// Case-insensitive search of one kind. Every term must occur in the name, description,
    /// path or body. Score = 8 (name equals the query) + 4 per term in the name + 2 per term
    /// in the description + 1 per term in path or body; sorted by score, then name. `limit`
    /// 0 means [`DEFAULT_SEARCH_LIMIT`]. A blank query is `invalid_query`.
    pub fn search(
        &self,
        kind: AssetKind,
        query: &str,
        limit: usize,
    ) -> Result<Vec<AssetHit>, AssetsError> {
        let terms = normalize_query(query)?;
        let limit = if limit == 0 {
            DEFAULT_SEARCH_LIMIT
        } else {
            limit
        };
        let whole = terms.join(" ");
        let entries = &self.index.kinds[kind_slot(kind)];
        let mut scored: Vec<(u32, &Entry)> = Vec::new();
        'entries: for e in entries {
            let mut score = if e.name_lc == whole { 8 } else { 0 };
            for t in &terms {
                let t = t.as_str();
                let mut found = false;
                if e.name_lc.contains(t) {
                    score += 4;
                    found = true;
                }
                if e.desc_lc.contains(t) {
                    score += 2;
                    found = true;
                }
                if e.path_lc.contains(t) || e.body_lc.contains(t) {
                    score += 1;
                    found = true;
                }
                if !found {
                    continue 'entries;
                }
            }
            scored.push((score, e));
        }
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        scored.truncate(limit);
        Ok(scored
            .into_iter()
            .filter_map(|(score, e)| {
                let a = self.get(kind, &e.name).ok()?;
                Some(AssetHit {
                    kind,
                    name: a.name.clone(),
                    path: a.path.clone(),
                    description: a.description.clone(),
                    score,
                    snippet: snippet(&a.body, &e.body_lc, &terms),
                })
            })
            .collect())
    }

    /// Graph search: nodes ranked like [`Self::search`], plus the edges from or to a matching
    /// node and the edges whose label contains every term.
    pub fn search_graph(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<GraphSearchResult, AssetsError> {
        let nodes = self.search(AssetKind::SkillGraph, query, limit)?;
        let terms = normalize_query(query)?;
        let mut edges: Vec<GraphEdge> = self
            .graph()
            .edges
            .iter()
            .filter(|e| {
                nodes.iter().any(|n| n.name == e.from || n.name == e.to)
                    || e.label.as_ref().is_some_and(|l| {
                        let l = l.to_lowercase();
                        terms.iter().all(|t| l.contains(t.as_str()))
                    })
            })
            .cloned()
            .collect();
        edges.sort();
        Ok(GraphSearchResult { nodes, edges })
    }
}

fn kind_slot(kind: AssetKind) -> usize {
    match kind {
        AssetKind::Skill => 0,
        AssetKind::Command => 1,
        AssetKind::Workflow => 2,
        AssetKind::SkillGraph => 3,
    }
}
