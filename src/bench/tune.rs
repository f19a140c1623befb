//! Conv tuning: a search over variants and tunables per layer shape, and the tuning file
//! (one entry per adapter and driver) that the executor reads at run time.

use super::{ops, Settings};
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels::conv::{ConvShape, ConvTune, ConvVariant};
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

impl TunedConv {
    pub fn tune(&self) -> Option<ConvTune> {
        let variant = match self.variant.as_str() {
            "Direct" => ConvVariant::Direct,
            "Subgroup" => ConvVariant::Subgroup,
            "Shared" => ConvVariant::Shared,
            "Gemm" => ConvVariant::Gemm,
            _ => return None,
        };
        Some(ConvTune {
            variant,
            wg: self.wg,
            tm: self.tm,
        })
    }
}

/// Tuning results of one adapter, keyed by conv shape `c_in,c_out,h,w,k` (the best choice
/// does not depend on the batch much, so one entry serves every batch).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AdapterTuning {
    pub conv: BTreeMap<String, TunedConv>,
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

pub fn shape_key(s: ConvShape) -> String {
    format!("{},{},{},{},{}", s.c_in, s.c_out, s.h, s.w, s.k)
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
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| crate::io::file_err(path, format!("not a tuning file: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TuningFile::default()),
            Err(e) => Err(crate::io::file_err(path, format!("cannot read: {e}"))),
        }
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

    pub fn conv(&self, gpu: &Gpu, s: ConvShape) -> Option<&TunedConv> {
        self.adapters
            .get(&adapter_key(gpu))?
            .conv
            .get(&shape_key(s))
    }
}

/// The tuned conv configuration for this adapter and shape from the default tuning file,
/// if there is one the adapter can run. A tuning file that cannot be read is ignored (it
/// only ever makes things faster).
pub fn lookup(gpu: &Gpu, s: ConvShape) -> Option<ConvTune> {
    let path = default_path()?;
    let file = TuningFile::load(&path).ok()?;
    let t = file.conv(gpu, s)?.tune()?;
    (t.variant != ConvVariant::Subgroup || gpu.subgroups_of_at_least(8)).then_some(t)
}

/// Every configuration the search tries on this adapter.
pub fn candidates(gpu: &Gpu) -> Vec<ConvTune> {
    let max = gpu.limits().max_compute_invocations_per_workgroup;
    let mut out = Vec::new();
    for base in ConvTune::variants_for(gpu) {
        if base.variant == ConvVariant::Gemm {
            out.push(base);
            continue;
        }
        for wg in [16, 32, 64, 128, 256].into_iter().filter(|w| *w <= max) {
            let tms: &[u32] = match base.variant {
                ConvVariant::Subgroup => &[8],
                _ => &[4, 8],
            };
            for &tm in tms {
                out.push(ConvTune {
                    variant: base.variant,
                    wg,
                    tm,
                });
            }
        }
    }
    out
}

/// Times every candidate on `s` and returns the fastest with its time, and the default's.
pub fn search(
    gpu: &Gpu,
    s: ConvShape,
    runs: usize,
    mut progress: impl FnMut(&str),
) -> Result<(TunedConv, ConvTune)> {
    let default = ConvTune::default_for(gpu);
    let set = Settings { runs, cpu: false };
    let mut best: Option<(f64, ConvTune)> = None;
    let mut default_ms = f64::NAN;
    for t in candidates(gpu) {
        let k = ops::conv(gpu, s, Some(t), Precision::F32, set)?;
        progress(&format!(
            "  {:?}/wg{}/tm{}: {:.3} ms",
            t.variant, t.wg, t.tm, k.median_ms
        ));
        if t == default {
            default_ms = k.median_ms;
        }
        if best.is_none_or(|b| k.median_ms < b.0) {
            best = Some((k.median_ms, t));
        }
    }
    let (ms, t) = best.unwrap_or((default_ms, default));
    Ok((
        TunedConv {
            variant: format!("{:?}", t.variant),
            wg: t.wg,
            tm: t.tm,
            median_ms: ms,
            default_ms,
        },
        t,
    ))
}
