//! Escape attempts against the built-in tools, through `Engine::run_tool` only (SPEC §4, §5.4–5.6,
//! §6, §7.2): the file tools against symlinks, swapped directories, hard links, FIFOs, sockets,
//! device nodes, `/proc` magic links and the state dir (`fs`); `command.run` against writes and
//! reads outside the root, loopback connects under egress `deny`, inherited secrets, process
//! trees that outlive their call, hard links to outside files and output floods (`command`);
//! `http.fetch` against loopback, private and metadata addresses in every spelling, names that
//! resolve to loopback and redirects from an allowlisted loopback server (`http`).
//!
//! The bar is the one of the independent suite: zero escapes, zero surviving processes, zero
//! leaked canaries, zero false denials of legitimate work. Every attack records what came back
//! (results and error JSON) in a [`Loot`], which is checked for the canary together with the
//! project diagnostics and, where calls ran in a conversation, its incident timeline.

mod command;
mod fs;
mod http;

use codeward::{ConversationId, TimelineQuery, ToolFailure, ToolSuccess};
use codeward_tests::TestProject;
use serde_json::Value;

/// A secret-shaped canary (an `anthropic_key`); it lives outside the root and in the env and
/// must never come back from any tool, diagnostics, timeline or error message.
const CANARY: &str = "sk-ant-api03-ESCAPEcanary7f3a9b2c4d5e6f708192a3b4c5d6e7f8";

/// Everything the attacks got back, to be searched for the canary.
#[derive(Default)]
struct Loot(Vec<String>);

impl Loot {
    fn take(&mut self, r: &Result<ToolSuccess, ToolFailure>) {
        match r {
            Ok(ok) => self.0.push(serde_json::to_string(ok).unwrap_or_default()),
            Err(f) => {
                self.0.push(f.error.to_json().to_string());
                self.0.push(f.to_string());
            }
        }
    }

    fn leaks(&self, canary: &str) -> usize {
        self.0.iter().filter(|s| s.contains(canary)).count()
    }

    /// Asserts no recorded output, nor the diagnostics, nor `c`'s timeline shows `canary`.
    async fn assert_clean(&self, p: &TestProject, c: Option<&ConversationId>, canary: &str) {
        for s in &self.0 {
            assert!(!s.contains(canary), "canary leaked: {s}");
        }
        let diag = p.diagnostics().await.to_string();
        assert!(!diag.contains(canary), "canary in diagnostics: {diag}");
        if let Some(c) = c {
            let t = p
                .engine
                .incident_timeline(
                    &p.id,
                    c,
                    TimelineQuery {
                        limit: 500,
                        correlation_id: None,
                    },
                )
                .await
                .expect("timeline");
            let text = serde_json::to_string(&t).unwrap_or_default();
            assert!(!text.contains(canary), "canary in the timeline: {text}");
        }
    }
}

/// A JSON string field (empty when absent).
fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}
