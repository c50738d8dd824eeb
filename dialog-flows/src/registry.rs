//! Flow versions: several versions of a flow can be loaded, one is active for new calls, and a
//! call keeps the version it started with (it holds an `Arc<Flow>`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ast::Flow;

#[derive(Debug, Default, Clone)]
pub struct FlowRegistry {
    flows: BTreeMap<String, Versions>,
}

#[derive(Debug, Default, Clone)]
struct Versions {
    by_version: BTreeMap<u32, Arc<Flow>>,
    active: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "flow `{name}` version {version} is already loaded; raise `version` to publish a change"
    )]
    VersionExists { name: String, version: u32 },
    #[error("flow `{name}` has no version {version}")]
    NoSuchVersion { name: String, version: u32 },
    #[error("no flow named `{0}`")]
    NoSuchFlow(String),
}

impl FlowRegistry {
    /// Add a version. The first version of a flow becomes active; later ones wait for
    /// [`FlowRegistry::activate`]. A loaded version is immutable.
    pub fn add(&mut self, flow: Flow) -> Result<Arc<Flow>, RegistryError> {
        let v = self.flows.entry(flow.name.clone()).or_default();
        if v.by_version.contains_key(&flow.version) {
            return Err(RegistryError::VersionExists {
                name: flow.name,
                version: flow.version,
            });
        }
        let version = flow.version;
        let arc = Arc::new(flow);
        v.by_version.insert(version, Arc::clone(&arc));
        if v.active.is_none() {
            v.active = Some(version);
        }
        Ok(arc)
    }

    pub fn activate(&mut self, name: &str, version: u32) -> Result<(), RegistryError> {
        let v = self
            .flows
            .get_mut(name)
            .ok_or_else(|| RegistryError::NoSuchFlow(name.to_string()))?;
        if !v.by_version.contains_key(&version) {
            return Err(RegistryError::NoSuchVersion {
                name: name.to_string(),
                version,
            });
        }
        v.active = Some(version);
        Ok(())
    }

    /// The version new calls start on.
    pub fn active(&self, name: &str) -> Option<Arc<Flow>> {
        let v = self.flows.get(name)?;
        v.by_version.get(&v.active?).cloned()
    }

    pub fn get(&self, name: &str, version: u32) -> Option<Arc<Flow>> {
        self.flows.get(name)?.by_version.get(&version).cloned()
    }

    pub fn versions(&self, name: &str) -> Vec<u32> {
        self.flows
            .get(name)
            .map(|v| v.by_version.keys().copied().collect())
            .unwrap_or_default()
    }
}
