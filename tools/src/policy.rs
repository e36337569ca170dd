//! TEMPORARY stub of the agreed `codeward-policies` API, replaced by re-exports once that crate
//! compiles.
#![allow(missing_docs, dead_code, clippy::all)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub struct PolicySet {
    pub root: PathBuf,
}
#[derive(Debug, Clone, Copy)]
pub enum Access {
    Read,
    Write,
}
#[derive(Debug)]
pub struct CheckedPath {
    pub resolved: PathBuf,
    pub area: Area,
}
#[derive(Debug)]
pub enum Area {
    Root,
    Exception { entry: usize },
}
#[derive(Debug)]
pub struct CheckedUrl {
    pub scheme: String,
    pub host: String,
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
}
#[derive(Debug, thiserror::Error)]
#[error("policy")]
pub struct PolicyError;
impl PolicyError {
    pub fn code(&self) -> &'static str {
        "outside_root"
    }
    pub fn details(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}
pub trait PathResolver {}
pub struct RealFs;
impl PathResolver for RealFs {}
pub struct OutsideRootEntry {
    pub path: PathBuf,
}
impl PolicySet {
    pub fn check_path(
        &self,
        _raw: &str,
        _a: Access,
        _b: Option<&Path>,
        _s: Option<&Path>,
        _r: &dyn PathResolver,
    ) -> Result<CheckedPath, PolicyError> {
        Err(PolicyError)
    }
    pub fn sensitive_match(&self, p: &Path) -> Option<String> {
        p.file_name()
            .filter(|n| *n == ".env")
            .map(|_| ".env".into())
    }
    pub fn check_url(&self, _u: &str) -> Result<CheckedUrl, PolicyError> {
        Err(PolicyError)
    }
    pub fn check_ip(&self, _ip: IpAddr) -> Result<(), PolicyError> {
        Err(PolicyError)
    }
    pub fn canonical_root(&self) -> &Path {
        &self.root
    }
    pub fn outside_root_entries(&self) -> &[OutsideRootEntry] {
        &[]
    }
}
