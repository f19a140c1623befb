//! The tuning file: per adapter and driver, the conv configuration and the FC variant
//! `vgg bench --tune` measured fastest for each layer shape. Read once per `Gpu` (see `Gpu::tuning`); the
//! kernels' selectors interpret its entries, the benchmark suite writes it.

use super::Gpu;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The best configuration found for one conv shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TunedConv {
    pub variant: String,
    pub wg: u32,
    pub tm: u32,
    pub median_ms: f64,
    /// The adapter's default configuration's time, for the record.
    pub default_ms: f64,
}

/// The fastest FC variant found for one shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TunedLinear {
    pub variant: String,
    pub median_ms: f64,
    pub default_ms: f64,
}

/// Tuning results of one adapter: conv keyed by shape `c_in,c_out,h,w,k` (the best choice
/// does not depend on the batch much, so one entry serves every batch); FC keyed by
/// `m,k,n_out`, batch rows included, since a GEMV and a GEMM want different layouts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AdapterTuning {
    pub conv: BTreeMap<String, TunedConv>,
    /// Absent from files written before FC tuning existed.
    #[serde(default)]
    pub linear: BTreeMap<String, TunedLinear>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TuningFile {
    /// Keyed by [`adapter_key`].
    pub adapters: BTreeMap<String, AdapterTuning>,
}

/// Adapter name, backend and driver: tuning does not carry over between drivers.
pub fn adapter_key(gpu: &Gpu) -> String {
    let i = gpu.info();
    format!(
        "{} | {:?} | {} {}",
        i.name, i.backend, i.driver, i.driver_info
    )
    .trim()
    .to_string()
}

/// `VGG_TUNING_FILE`, else `$XDG_CACHE_HOME/vgg-wgpu/tuning.json`, else
/// `~/.cache/vgg-wgpu/tuning.json`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VGG_TUNING_FILE") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("vgg-wgpu").join("tuning.json"))
}

impl TuningFile {
    /// A missing file is an empty one; an unreadable one is an error.
    pub fn load(path: &Path) -> Result<TuningFile> {
        if !path.exists() && path.symlink_metadata().is_err() {
            return Ok(TuningFile::default());
        }
        let text = crate::io::read_text(path, 64 << 20, "a tuning file")?;
        serde_json::from_str(&text)
            .map_err(|e| crate::io::file_err(path, format!("not a tuning file: {e}")))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| crate::io::file_err(dir, format!("cannot create: {e}")))?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| crate::io::file_err(path, format!("cannot encode: {e}")))?;
        crate::io::write_atomically(path, text.as_bytes())
    }

    /// The entry for conv shape `key` (see `ConvShape::tuning_key`) on `gpu`'s adapter.
    pub fn conv(&self, gpu: &Gpu, key: &str) -> Option<&TunedConv> {
        self.adapters.get(&adapter_key(gpu))?.conv.get(key)
    }

    /// The entry for FC shape `key` (see `LinearShape::tuning_key`) on `gpu`'s adapter.
    pub fn linear(&self, gpu: &Gpu, key: &str) -> Option<&TunedLinear> {
        self.adapters.get(&adapter_key(gpu))?.linear.get(key)
    }
}
