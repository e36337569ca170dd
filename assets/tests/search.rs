//! Search ranking, snippets, limits and graph search.

use codeward_assets::{AssetKind, load};

use crate::support::{Project, fixture, opts};

#[test]
fn name_matches_rank_first_then_description_then_body() {
    let p = Project::new();
    p.write(
        "skills/deploy.md",
        "---\ndescription: ship it\n---\nnothing\n",
    );
    p.write(
        "skills/release.md",
        "---\ndescription: how to deploy a release\n---\nsteps\n",
    );
    p.write(
        "skills/notes.md",
        "---\ndescription: misc\n---\nwe DEPLOY on fridays\n",
    );
    p.write("skills/deploy-docs.md", "---\ndescription: docs\n---\n");
    p.write("skills/other.md", "---\ndescription: unrelated\n---\n");
    let s = load(&p.data_dir, &p.opts(false), 1).snapshot;
    let hits = s.search(AssetKind::Skill, "  Deploy ", 0).unwrap();
    let ranked: Vec<(&str, u32)> = hits.iter().map(|h| (h.name.as_str(), h.score)).collect();
    // deploy: 8 exact + 4 name + 1 path; deploy-docs: 4 + 1; release: 2 desc; notes: 1 body
    assert_eq!(
        ranked,
        [
            ("deploy", 13),
            ("deploy-docs", 5),
            ("release", 2),
            ("notes", 1)
        ]
    );
    assert_eq!(hits[3].snippet, "we DEPLOY on fridays");
    assert_eq!(s.search(AssetKind::Skill, "deploy", 2).unwrap().len(), 2);
}

#[test]
fn every_term_must_match_somewhere() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let hits = s.search(AssetKind::Skill, "cargo TEST", 10).unwrap();
    let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["rust-testing"]);
    assert!(
        s.search(AssetKind::Skill, "cargo zebra", 10)
            .unwrap()
            .is_empty()
    );
    let cmd = s.search(AssetKind::Command, "git commit", 10).unwrap();
    assert_eq!(cmd[0].name, "commit");
    let too_long = "x".repeat(2000);
    assert_eq!(
        s.search(AssetKind::Skill, &too_long, 10)
            .unwrap_err()
            .code(),
        "invalid_query"
    );
}

#[test]
fn snippets_are_bounded_and_unicode_safe() {
    let p = Project::new();
    let body = format!("{}Straße needle {}", "ü".repeat(300), "é".repeat(300));
    p.write("skills/u.md", body);
    let s = load(&p.data_dir, &p.opts(false), 1).snapshot;
    let hits = s.search(AssetKind::Skill, "NEEDLE", 5).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].snippet.chars().count() <= 200);
    assert!(hits[0].snippet.contains("Straße needle"));
    assert_eq!(s.search(AssetKind::Skill, "STRASSE", 5).unwrap().len(), 0);
    assert_eq!(s.search(AssetKind::Skill, "STRAßE", 5).unwrap().len(), 1);
}

#[test]
fn graph_search_returns_nodes_and_edges() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let hits = s.search(AssetKind::SkillGraph, "testing", 10).unwrap();
    assert_eq!(hits[0].name, "testing");
    let g = s.search_graph("code review", 10).unwrap();
    let nodes: Vec<&str> = g.nodes.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(nodes, ["index"]);
    assert!(
        g.edges
            .iter()
            .any(|e| e.label.as_deref() == Some("code review"))
    );
    assert!(
        g.edges
            .iter()
            .all(|e| e.from == "index" || e.to == "index" || e.label.is_some())
    );
}
