//! The configured upstream providers, built once at start.

use std::sync::Arc;

use super::provider::Provider;
use crate::config::Config;

/// Every configured provider, in the config's order.
pub struct Registry {
    providers: Vec<Arc<Provider>>,
}

impl Registry {
    pub fn new(config: &Config, callback_base: &str) -> anyhow::Result<Registry> {
        let mut providers = Vec::new();
        for i in 0..config.providers.len() {
            let p = config.provider(i)?;
            providers.push(Arc::new(Provider::new(p, callback_base)?));
        }
        Ok(Registry { providers })
    }

    pub fn all(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// An enabled provider by id.
    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.cfg.id == id && p.cfg.enabled)
    }

    pub fn enabled(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.iter().filter(|p| p.cfg.enabled)
    }
}
