//! Diagnostics (SPEC §9.1) and engine health (§9.4). Everything shown is redacted: option
//! values, recent events and decisions pass through the engine's redactor.

use std::collections::BTreeMap;

use codeward_actors::ids::ProjectId;
use codeward_actors::telemetry::HealthStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Engine;
use crate::error::Result;
use crate::options::OptionSource;
use crate::types::{EngineHealth, ProjectCounts, ProjectStatus, rfc3339_ms};

/// `diagnostics(project)` (SPEC §9.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectDiagnostics {
    /// Project.
    pub project_id: ProjectId,
    /// Canonical root.
    pub root_path: String,
    /// Root as given.
    pub root_path_given: String,
    /// Data dir.
    pub data_dir: String,
    /// State dir (journal home).
    pub state_dir: String,
    /// RFC 3339 start.
    pub started_at: String,
    /// Uptime.
    pub uptime_ms: u64,
    /// Project status.
    pub status: ProjectStatus,
    /// Whether `codeward.toml` changed since it was read.
    pub config_file_changed: bool,
    /// `{status, conversation_count, error_count, last_error_at, window_ms}`.
    pub health: Value,
    /// Every key's effective value.
    pub options: serde_json::Map<String, Value>,
    /// Every key's source layer.
    pub option_sources: BTreeMap<String, OptionSource>,
    /// `{enabled, debounce_ms, max_wait_ms, pending_paths, last_reload_at}`.
    pub watcher: Value,
    /// `{available, landlock_abi, fs, net, scope, tree_kill, limitations}`.
    pub os_sandbox: Value,
    /// The assets diagnostics (SPEC §9.2).
    pub assets: Value,
    /// The effective policy and its recent decisions.
    pub policy: Value,
    /// `{catalog_size, in_flight, max_concurrency, queued, per_conversation_in_flight}`.
    pub tools: Value,
    /// `{routes, last_alert_at, sent, suppressed, dropped, failed}`.
    pub alerts: Value,
    /// `{total_events, event_counts, counters, recent_events, recent_errors}`.
    pub telemetry: Value,
    /// The journal block (path, sizes, counts, last backup / check / compaction).
    pub journal: Value,
    /// `[{actor, status, restarts_in_window, last_reason, last_restart_at}]`.
    pub supervision: Vec<Value>,
    /// Conversation diagnostics, sorted by id.
    pub conversations: Vec<Value>,
}

/// Ring entries as SPEC §8.3 shows them: `{seq, event, at, conversation_id, correlation_id,
/// tool, reason, error}`, `at` in RFC 3339 (the stored `at_ms` is kept alongside).
fn ring_json(ring: &[codeward_actors::telemetry::RingEntry]) -> Vec<Value> {
    ring.iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("at".into(), json!(rfc3339_ms(r.at_ms)));
            }
            v
        })
        .collect()
}

pub(crate) fn os_sandbox_json() -> Value {
    let probe = codeward_tools::sandbox::probe();
    serde_json::to_value(probe).unwrap_or_else(|_| json!({ "available": probe.available }))
}

fn policy_warnings(policy: &codeward_policies::PolicyOptions) -> Vec<String> {
    let mut out = Vec::new();
    if policy.network_egress_policy == codeward_policies::EgressPolicy::Allow {
        if policy.network_allowlist.is_empty() {
            out.push("network_egress_policy is allow but network_allowlist is empty: no host is reachable".into());
        }
        if policy.network_allowlist.iter().any(|h| h.trim() == "*") {
            out.push("network_allowlist contains `*`: every public host is reachable".into());
        }
    }
    for e in &policy.outside_root_allowlist {
        if let codeward_policies::OutsideRootTarget::Path(p) = &e.target
            && p.as_os_str() == "/"
        {
            out.push(format!(
                "outside_root_allowlist entry `{}` admits the whole filesystem",
                e.reason_code
            ));
        }
    }
    out
}

impl Engine {
    /// Everything an operator needs about one project (SPEC §9.1), redacted.
    pub async fn diagnostics(&self, p: &ProjectId) -> Result<ProjectDiagnostics> {
        let project = self.project(p)?;
        let redactor = project.redactor();
        let now = tokio::time::Instant::now();
        let telemetry = {
            let mut store = project
                .telemetry_store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            store.set_counter("telemetry.dropped", project.telemetry.dropped());
            let (sent, suppressed, dropped, failed) = project.alerts.stats().totals();
            store.set_counter("alerts.sent", sent);
            store.set_counter("alerts.suppressed", suppressed);
            store.set_counter("alerts.dropped", dropped);
            store.set_counter("alerts.failed", failed);
            store.set_counter(
                "journal.appends",
                project.journal.counters().signals_appended,
            );
            store.snapshot(now)
        };
        let opts = &project.options;
        let policy_set = project.policy.current();
        let mut schemes = opts.policy.network_allowed_schemes.clone();
        schemes.sort();
        let denylist: Vec<String> = codeward_policies::BUILTIN_SENSITIVE
            .iter()
            .map(|s| (*s).to_owned())
            .chain(opts.policy.sensitive_path_denylist.iter().cloned())
            .collect();
        let policy = json!({
            "allow_tools": opts.policy.allow_tools,
            "deny_tools": opts.policy.deny_tools,
            "network_egress_policy": opts.policy.network_egress_policy,
            "network_allowlist": policy_set.network_allow_entries(),
            "network_allowed_schemes": schemes,
            "sensitive_path_denylist": denylist,
            "sensitive_path_allowlist": opts.policy.sensitive_path_allowlist,
            "outside_root_allowlist": opts.policy.outside_root_allowlist,
            "tool_env_allowlist": opts.policy.tool_env_allowlist,
            "protocol_allowlist": opts.policy.protocol_allowlist,
            "subagent_templates_allowlist": opts.policy.subagent_templates_allowlist,
            "warnings": policy_warnings(&opts.policy),
            "recent_decisions": telemetry.recent_decisions,
        });
        let watcher = match &project.watcher {
            Some(w) => {
                let status = w.status().await.ok();
                json!({
                    "enabled": true,
                    "debounce_ms": opts.watcher_debounce_ms,
                    "max_wait_ms": opts.watcher_max_wait_ms,
                    "pending_paths": status.as_ref().map_or(0, |s| s.pending_paths),
                    "last_reload_at": status
                        .and_then(|s| s.last_request_at_ms)
                        .map(rfc3339_ms),
                })
            }
            None => json!({
                "enabled": false, "debounce_ms": opts.watcher_debounce_ms,
                "max_wait_ms": opts.watcher_max_wait_ms, "pending_paths": 0,
                "last_reload_at": null,
            }),
        };
        let sup = project
            .supervisor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let supervision = match sup {
            Some(sup) => sup
                .children()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    json!({
                        "actor": c.actor, "status": c.status,
                        "restarts_in_window": c.restarts_in_window,
                        "restart_count": c.restart_count,
                        "last_reason": c.last_reason,
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        let health = &telemetry.health;
        let mut conversations: Vec<Value> =
            crate::engine::conversations::diagnostics_all(&project).await;
        conversations.sort_by(|a, b| {
            a["conversation_id"]
                .as_str()
                .cmp(&b["conversation_id"].as_str())
        });
        let assets = serde_json::to_value(crate::engine::assets::AssetsDiagnostics::new(
            project.id.clone(),
            project.assets.store().diagnostics(),
        ))
        .unwrap_or(Value::Null);
        let options = match redactor.redact(&Value::Object(opts.values())) {
            Value::Object(mut m) => {
                m.insert("project_id".into(), json!(project.id));
                m
            }
            _ => serde_json::Map::new(),
        };
        let catalog = project.catalog();
        let per_conversation: BTreeMap<String, usize> = project
            .conversations
            .iter()
            .map(|c| {
                (
                    c.key().to_string(),
                    c.quota_limit - c.quota.available_permits().min(c.quota_limit),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let last_alert_at = {
            let at = project
                .alerts
                .stats()
                .last_alert_at_ms
                .load(std::sync::atomic::Ordering::Relaxed);
            (at > 0).then(|| rfc3339_ms(at))
        };
        let d = ProjectDiagnostics {
            project_id: project.id.clone(),
            root_path: project.root.display().to_string(),
            root_path_given: project.root_given.display().to_string(),
            data_dir: project.data_dir.display().to_string(),
            state_dir: project.state_dir.display().to_string(),
            started_at: rfc3339_ms(project.started_at_ms),
            uptime_ms: u64::try_from(project.now_ms() - project.started_at_ms).unwrap_or(0),
            status: project.status(),
            config_file_changed: opts.config_file_changed(),
            health: json!({
                "status": health.status,
                "conversation_count": project.conversations.len(),
                "error_count": health.error_count,
                "last_error_at": health.last_error_at_ms.map(rfc3339_ms),
                "window_ms": health.window_ms,
                "failing": health.failing,
            }),
            options,
            option_sources: opts.sources(),
            watcher,
            os_sandbox: os_sandbox_json(),
            assets,
            policy: redactor.redact(&policy),
            tools: json!({
                "catalog_size": catalog.len(),
                "in_flight": project.executor.in_flight(),
                "queued": project.executor.queued(),
                "max_concurrency": opts.tool_max_concurrency,
                "per_conversation_in_flight": per_conversation,
            }),
            alerts: json!({
                "routes": opts.alert_routes,
                "last_alert_at": last_alert_at,
            }),
            telemetry: redactor.redact(&json!({
                "total_events": telemetry.total_events,
                "last_seq": telemetry.last_seq,
                "event_counts": telemetry.event_counts,
                "counters": telemetry.counters,
                "recent_events": ring_json(&telemetry.recent_events),
                "recent_errors": ring_json(&telemetry.recent_errors),
                "ring_overflows": telemetry.ring_overflows,
            })),
            journal: crate::engine::conversations::journal_diagnostics(&project).await,
            supervision,
            conversations,
        };
        Ok(d)
    }

    /// Engine health (SPEC §9.4).
    pub async fn health(&self) -> EngineHealth {
        let mut counts = ProjectCounts::default();
        let mut dropped = 0;
        let now = tokio::time::Instant::now();
        for entry in self.inner.projects.iter() {
            let project = entry.value();
            counts.total += 1;
            dropped += project.telemetry.dropped();
            let health = project
                .telemetry_store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .health(now);
            match (project.status(), health.status) {
                (ProjectStatus::Failed, _) | (_, HealthStatus::Failing) => counts.failing += 1,
                (_, HealthStatus::Degraded) => counts.degraded += 1,
                _ => counts.ok += 1,
            }
        }
        let status = if self
            .inner
            .shutting_down
            .load(std::sync::atomic::Ordering::Acquire)
        {
            "failing"
        } else if counts.failing > 0 || counts.degraded > 0 {
            "degraded"
        } else {
            "ok"
        };
        let probe = codeward_tools::sandbox::probe();
        EngineHealth {
            status: status.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: rfc3339_ms(self.inner.started_at_ms),
            uptime_ms: u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            projects: counts,
            os_sandbox: json!({ "landlock_abi": probe.landlock_abi, "available": probe.available }),
            journals_ok: self.inner.projects.iter().all(|p| !p.journal.is_failing()),
            telemetry_dropped_total: dropped,
        }
    }
}
