//! The asset calls of the facade (SPEC §2.2, §9.2, §10): reload, list, get, search and the
//! assets diagnostics. Reads use the serving snapshot; reloads go through the asset store actor.

use codeward_actors::ids::ProjectId;
use codeward_assets::{Asset, AssetHit, AssetKind, AssetSummary, ReloadReport, ReloadTrigger};
use serde::{Deserialize, Serialize};

use super::Engine;
use crate::error::{Error, Result};

fn unavailable(component: &str) -> Error {
    Error::ProjectUnavailable {
        component: component.to_owned(),
    }
}

impl Engine {
    /// Reloads the project's assets from disk. A strict reload with errors fails
    /// `asset_load_failed{errors}` and the previous generation keeps serving.
    pub async fn reload_assets(&self, p: &ProjectId) -> Result<ReloadReport> {
        let project = self.project(p)?;
        let report = project
            .assets
            .reload(ReloadTrigger::Api, Vec::new())
            .await
            .map_err(|_| unavailable("assets"))?;
        let report = report.into_result()?;
        project.catalog();
        Ok(report)
    }

    /// The assets of one kind.
    pub async fn list_assets(&self, p: &ProjectId, kind: AssetKind) -> Result<Vec<AssetSummary>> {
        Ok(self.project(p)?.assets.snapshot().list(kind))
    }

    /// One asset by name (or root-relative path); `skill_graph` + `snapshot` is the graph.
    pub async fn get_asset(&self, p: &ProjectId, kind: AssetKind, key: &str) -> Result<Asset> {
        let snapshot = self.project(p)?.assets.snapshot();
        Ok(snapshot.get(kind, key)?.clone())
    }

    /// Ranked search over one kind; a blank query is `invalid_query`.
    pub async fn search_assets(
        &self,
        p: &ProjectId,
        kind: AssetKind,
        query: &str,
    ) -> Result<Vec<AssetHit>> {
        let snapshot = self.project(p)?.assets.snapshot();
        Ok(snapshot.search(kind, query, 0)?)
    }

    /// Generation, versions, counts, errors and the last reload (SPEC §9.2).
    pub async fn assets_diagnostics(&self, p: &ProjectId) -> Result<AssetsDiagnostics> {
        let project = self.project(p)?;
        Ok(AssetsDiagnostics::new(
            project.id.clone(),
            project.assets.store().diagnostics(),
        ))
    }
}

/// `assets_diagnostics` (SPEC §9.2): the store's diagnostics with the project id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetsDiagnostics {
    /// The project.
    pub project_id: ProjectId,
    /// When the serving snapshot was built (RFC 3339; SPEC §9.2 `last_loaded_at`).
    pub last_loaded_at: String,
    /// Loaded, strict, generation, versions, counts, errors, last reload.
    #[serde(flatten)]
    pub assets: codeward_assets::AssetsDiagnostics,
}

impl AssetsDiagnostics {
    /// The store's diagnostics of project `project_id`.
    pub fn new(project_id: ProjectId, assets: codeward_assets::AssetsDiagnostics) -> Self {
        Self {
            project_id,
            last_loaded_at: assets.loaded_at.clone(),
            assets,
        }
    }
}
