//! The component registry: the components built into the binary (compiled by
//! build.rs from components/), overridden or extended by `.wasm` files named
//! in the configuration. Each is compiled on first use (or loaded from the
//! precompiled cache) and kept as an `InstancePre`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use super::bindings::{instrument::InstrumentPre, thumbnail::ThumbnailPre};
use super::{ComponentFailure, HostState, Limits};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

/// Components compiled into this binary: (name, wasm bytes).
pub fn builtin_components() -> &'static [(&'static str, &'static [u8])] {
    builtin::BUILTIN
}

/// Directory holding the built `.wasm` artifacts (also test-only components).
pub fn artifact_dir() -> &'static str {
    builtin::ARTIFACT_DIR
}

/// Where components come from and how they are limited.
#[derive(Clone, Debug, Default)]
pub struct RegistrySpec {
    /// Directory for precompiled `.cwasm` files (none: compile every start).
    pub cache_dir: Option<PathBuf>,
    /// Components from files: name → path (overrides a built-in of that name).
    pub files: BTreeMap<String, PathBuf>,
    /// Per-component limits (default: header components 256 MiB / 2 s,
    /// thumbnail 256 MiB / 30 s).
    pub limits: BTreeMap<String, Limits>,
}

/// What `koa-dep component list` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ComponentInfo {
    pub name: String,
    pub source: String,
    pub wit: String,
    pub size: usize,
    pub sha256: String,
    pub memory_mib: usize,
    pub deadline_s: f64,
}

enum Pre {
    Instrument(InstrumentPre<HostState>),
    Thumbnail(ThumbnailPre<HostState>),
}

struct Entry {
    /// Built-in components are borrowed from the binary (no copy at start-up).
    wasm: std::borrow::Cow<'static, [u8]>,
    source: String,
    limits: Limits,
    pre: OnceLock<Result<Pre, String>>,
}

pub struct Registry {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    pub(crate) fn load(engine: &Engine, spec: RegistrySpec) -> anyhow::Result<Registry> {
        let mut entries = BTreeMap::new();
        let limits_for = |name: &str| {
            spec.limits.get(name).copied().unwrap_or(if name == "thumbnail" { Limits::PREVIEW } else { Limits::HEADER })
        };
        for (name, wasm) in builtin_components() {
            entries.insert(
                name.to_string(),
                Entry { wasm: std::borrow::Cow::Borrowed(*wasm), source: "built-in".into(), limits: limits_for(name), pre: OnceLock::new() },
            );
        }
        for (name, path) in &spec.files {
            let wasm = std::fs::read(path).map_err(|e| anyhow::anyhow!("component {name}: {}: {e}", path.display()))?;
            entries.insert(
                name.clone(),
                Entry { wasm: wasm.into(), source: path.display().to_string(), limits: limits_for(name), pre: OnceLock::new() },
            );
        }
        Ok(Registry { engine: engine.clone(), cache_dir: spec.cache_dir, entries })
    }

    /// Names of the registered components.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    fn pre(&self, name: &str) -> Result<(&Pre, Limits), ComponentFailure> {
        let e = self.entries.get(name).ok_or_else(|| ComponentFailure::Load {
            component: name.into(),
            message: format!("no component named {name:?} is registered"),
        })?;
        let pre = e.pre.get_or_init(|| {
            let c = super::compile(&self.engine, name, &e.wasm, self.cache_dir.as_deref()).map_err(|e| format!("{e:#}"))?;
            let linker = super::linker(&self.engine).map_err(|e| e.to_string())?;
            let ipre = linker.instantiate_pre(&c).map_err(|e| format!("{e:#}"))?;
            if name == "thumbnail" {
                ThumbnailPre::new(ipre).map(Pre::Thumbnail).map_err(|e| format!("{e:#}"))
            } else {
                InstrumentPre::new(ipre).map(Pre::Instrument).map_err(|e| format!("{e:#}"))
            }
        });
        match pre {
            Ok(p) => Ok((p, e.limits)),
            Err(m) => Err(ComponentFailure::Load { component: name.into(), message: m.clone() }),
        }
    }

    pub(crate) fn instrument(&self, name: &str) -> Result<(&InstrumentPre<HostState>, Limits), ComponentFailure> {
        match self.pre(name)? {
            (Pre::Instrument(p), l) => Ok((p, l)),
            _ => Err(ComponentFailure::Load { component: name.into(), message: "not an instrument component".into() }),
        }
    }

    pub(crate) fn thumbnail(&self) -> Result<(&ThumbnailPre<HostState>, Limits), ComponentFailure> {
        match self.pre("thumbnail")? {
            (Pre::Thumbnail(p), l) => Ok((p, l)),
            _ => Err(ComponentFailure::Load { component: "thumbnail".into(), message: "not a thumbnail component".into() }),
        }
    }

    /// Compile everything now (daemon start-up) and report what failed.
    pub fn warm(&self) -> Vec<ComponentFailure> {
        self.entries.keys().filter_map(|n| self.pre(n).err()).collect()
    }

    /// Descriptions for `component list`.
    pub fn info(&self) -> Vec<ComponentInfo> {
        self.entries
            .iter()
            .map(|(name, e)| ComponentInfo {
                name: name.clone(),
                source: e.source.clone(),
                wit: wit_version(&e.wasm).unwrap_or_else(|| "unknown".into()),
                size: e.wasm.len(),
                sha256: hex::encode(Sha256::digest(&e.wasm)),
                memory_mib: e.limits.memory >> 20,
                deadline_s: e.limits.deadline.as_secs_f64(),
            })
            .collect()
    }
}

/// The koa:dep package version a component was built against (from the
/// interface names embedded in its binary, e.g. `koa:dep/types@0.4.0`).
pub fn wit_version(wasm: &[u8]) -> Option<String> {
    let needle = b"koa:dep/";
    let pos = wasm.windows(needle.len()).position(|w| w == needle)?;
    let tail = &wasm[pos..(pos + 64).min(wasm.len())];
    let at = tail.iter().position(|b| *b == b'@')?;
    let ver: String = tail[at + 1..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'.' || **b == b'-')
        .map(|b| *b as char)
        .collect();
    Some(format!("koa:dep@{ver}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_components_are_borrowed_from_the_binary_not_copied() {
        let engine = Engine::default();
        let r = Registry::load(&engine, RegistrySpec { cache_dir: None, files: BTreeMap::new(), limits: BTreeMap::new() }).unwrap();
        assert!(!builtin_components().is_empty());
        for (name, wasm) in builtin_components() {
            let e = &r.entries[*name];
            // the same bytes in place: a start-up copies nothing (6 MB for the built-ins)
            assert!(matches!(e.wasm, std::borrow::Cow::Borrowed(_)), "{name}");
            assert_eq!(e.wasm.as_ptr(), wasm.as_ptr(), "{name}");
        }
    }
}
