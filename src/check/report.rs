//! The conformance report: per adapter (vendor, device, driver, backend, limits) a row per
//! comparison (op, shape, max abs error, relative L2, max ULP distance, determinism, pass or
//! fail), the cases skipped and why, and the kernels that were not deterministic or slow.
//! Written as JSON (schema `vgg-conformance/1`) and Markdown.

use super::suite::{Scope, Skipped};
use super::{Determinism, Outcome};
use crate::gpu::{Gpu, WANTED_FEATURES};
use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "vgg-conformance/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub engine: String,
    pub date: String,
    pub git_commit: String,
    /// Base seed of the random inputs: `vgg check --seed` replays the run.
    pub seed: u64,
    /// Which cases ran: the quick set, the standard cases or the full-size ones too.
    pub scope: Scope,
    pub determinism_checked: bool,
    pub adapters: Vec<AdapterReport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every case ran and passed.
    Passed,
    /// A case failed or could not run.
    Failed,
    /// wgpu offers the adapter but no compute on it: nothing to run, reported as such.
    Unsupported,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdapterReport {
    /// Index in `vgg devices`.
    pub index: usize,
    pub name: String,
    /// PCI vendor id and its name where known.
    pub vendor: String,
    pub device_id: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub features: Vec<String>,
    pub limits: Option<Limits>,
    pub status: Status,
    /// Why an adapter could not be checked at all.
    pub message: Option<String>,
    pub seconds: f64,
    pub passed: usize,
    pub failed: usize,
    pub results: Vec<Row>,
    pub skipped: Vec<Skipped>,
    /// "op shape: why" for each result whose second run differed.
    pub nondeterministic: Vec<String>,
    /// "op shape: seconds" for each case over the slow threshold.
    pub slow: Vec<String>,
    /// Kernels loaded from `VGG_SHADER_DIR` instead of the built-in ones.
    pub shader_overrides: Vec<String>,
    /// The check process's peak resident memory on this adapter (each adapter of `--all`
    /// runs in a process of its own), where the system says.
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
    /// The resident memory at which the check stops a case (`--memory-cap`).
    #[serde(default)]
    pub memory_cap_bytes: Option<u64>,
    /// Why the run on this adapter was stopped before its end (a case past its time bound
    /// or the memory cap, naming the stage), if it was.
    #[serde(default)]
    pub stopped: Option<String>,
    /// Kernels this driver is known to fail on, which the selectors replaced, and why
    /// (`gpu::DRIVER_ISSUES`).
    #[serde(default)]
    pub workarounds: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limits {
    pub max_buffer_bytes: u64,
    pub max_storage_binding_bytes: u64,
    pub max_storage_buffers_per_stage: u32,
    pub max_workgroups_per_dimension: u32,
    pub max_workgroup_storage_bytes: u32,
    pub max_invocations_per_workgroup: u32,
    pub subgroup_sizes: Option<(u32, u32)>,
}

/// One comparison. Errors that are not finite are `null` in JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub op: String,
    pub shape: String,
    pub max_abs: Option<f64>,
    pub rel_l2: Option<f64>,
    pub max_ulp: Option<u64>,
    pub tolerance: f64,
    pub pass: bool,
    /// `None` when run only once.
    pub deterministic: Option<bool>,
    pub seconds: f64,
    pub slow: bool,
    /// Why it failed, in words.
    pub failure: Option<String>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl From<&Outcome> for Row {
    fn from(o: &Outcome) -> Row {
        let ran = o.error.is_none();
        Row {
            op: o.op.clone(),
            shape: o.shape.clone(),
            max_abs: finite(o.diff.max_abs).filter(|_| ran),
            rel_l2: finite(o.diff.rel_l2).filter(|_| ran),
            max_ulp: (o.diff.max_ulp != u64::MAX && ran).then_some(o.diff.max_ulp),
            tolerance: o.tol,
            pass: o.passed(),
            deterministic: match o.determinism {
                Determinism::NotChecked => None,
                Determinism::Identical => Some(true),
                Determinism::Differs { .. } => Some(false),
            },
            seconds: o.seconds,
            slow: o.slow,
            failure: (!o.passed()).then(|| o.failure()),
        }
    }
}

/// The usual name of a PCI vendor id (and Mesa's id for its software drivers).
pub fn vendor_name(id: u32) -> &'static str {
    match id {
        0x10de => "NVIDIA",
        0x1002 | 0x1022 => "AMD",
        0x8086 => "Intel",
        0x13b5 => "ARM",
        0x5143 => "Qualcomm",
        0x106b => "Apple",
        0x1414 => "Microsoft",
        0x10005 => "Mesa",
        _ => "unknown",
    }
}

impl AdapterReport {
    /// The adapter's identity, before or without any result.
    pub fn new(index: usize, info: &wgpu::AdapterInfo) -> AdapterReport {
        AdapterReport {
            index,
            name: info.name.clone(),
            vendor: format!("{:#06x} ({})", info.vendor, vendor_name(info.vendor)),
            device_id: format!("{:#06x}", info.device),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            features: Vec::new(),
            limits: None,
            status: Status::Failed,
            message: None,
            seconds: 0.0,
            passed: 0,
            failed: 0,
            results: Vec::new(),
            skipped: Vec::new(),
            nondeterministic: Vec::new(),
            slow: Vec::new(),
            shader_overrides: Vec::new(),
            peak_memory_bytes: None,
            memory_cap_bytes: None,
            stopped: None,
            workarounds: Vec::new(),
        }
    }

    /// Records what `gpu` offers.
    pub fn describe(&mut self, gpu: &Gpu) {
        self.features = WANTED_FEATURES
            .iter()
            .filter(|(f, _)| gpu.features().contains(*f))
            .map(|(_, n)| n.to_string())
            .collect();
        // The cooperative-matrix shapes the adapter lists, and whether the device opened
        // with them (the tensor-core path).
        let coop = gpu.coop_shapes();
        if !coop.is_empty() {
            let on = if gpu.cooperative_matrix() {
                "on"
            } else {
                "off"
            };
            self.features
                .push(format!("cooperative-matrix ({on}): {}", coop.join(", ")));
        }
        let l = gpu.limits();
        let i = gpu.info();
        self.limits = Some(Limits {
            max_buffer_bytes: l.max_buffer_size,
            max_storage_binding_bytes: gpu.max_binding_bytes(),
            max_storage_buffers_per_stage: l.max_storage_buffers_per_shader_stage,
            max_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            max_workgroup_storage_bytes: l.max_compute_workgroup_storage_size,
            max_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            subgroup_sizes: gpu
                .features()
                .contains(wgpu::Features::SUBGROUP)
                .then_some((i.subgroup_min_size, i.subgroup_max_size)),
        });
    }

    /// Files in the results of one suite run.
    pub fn record(&mut self, outcomes: &[Outcome], skipped: Vec<Skipped>, seconds: f64) {
        self.results = outcomes.iter().map(Row::from).collect();
        self.passed = outcomes.iter().filter(|o| o.passed()).count();
        self.failed = outcomes.len() - self.passed;
        self.nondeterministic = outcomes
            .iter()
            .filter(|o| matches!(o.determinism, Determinism::Differs { .. }))
            .map(|o| format!("{} {}: {}", o.op, o.shape, o.failure()))
            .collect();
        let mut slow: Vec<String> = outcomes
            .iter()
            .filter(|o| o.slow)
            .map(|o| format!("{} {}: {:.1} s", o.op, o.shape, o.seconds))
            .collect();
        slow.dedup();
        self.slow = slow;
        self.skipped = skipped;
        self.seconds = seconds;
        self.status = if self.failed == 0 && self.message.is_none() {
            Status::Passed
        } else {
            Status::Failed
        };
    }

    /// The driver issues `gpu`'s selectors worked around so far, as the report lists them.
    pub fn workarounds_of(gpu: &Gpu) -> Vec<String> {
        gpu.worked_around()
            .iter()
            .map(|d| format!("{}: {}", d.kernel, d.why))
            .collect()
    }

    /// One line naming the adapter as a driver team would: vendor, device, driver, backend.
    pub fn title(&self) -> String {
        let driver = format!("{} {}", self.driver, self.driver_info);
        format!(
            "#{} {} [{} device {}] {} ({}), driver {}",
            self.index,
            self.name,
            self.vendor,
            self.device_id,
            self.backend,
            self.device_type,
            driver.trim()
        )
    }

    /// The verdict line printed after the adapter's table.
    pub fn summary(&self) -> String {
        match self.status {
            Status::Unsupported => format!(
                "UNSUPPORTED: {}",
                self.message.as_deref().unwrap_or("no compute")
            ),
            _ if self.message.is_some() => {
                format!("FAILED: {}", self.message.as_deref().unwrap_or_default())
            }
            s => format!(
                "{}: {} passed, {} failed, {} skipped in {:.1} s{}",
                if s == Status::Passed {
                    "PASSED"
                } else {
                    "FAILED"
                },
                self.passed,
                self.failed,
                self.skipped.len(),
                self.seconds,
                self.peak_memory_bytes
                    .map(|b| format!(", peak memory {} MiB", b >> 20))
                    .unwrap_or_default()
            ),
        }
    }
}

fn sci(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2e}")).unwrap_or_else(|| "-".into())
}

impl Report {
    pub fn new(seed: u64, scope: Scope, determinism: bool) -> Report {
        Report {
            schema: SCHEMA.into(),
            engine: format!("vgg-wgpu {}", env!("CARGO_PKG_VERSION")),
            date: today(),
            git_commit: git_commit(),
            seed,
            scope,
            determinism_checked: determinism,
            adapters: Vec::new(),
        }
    }

    /// Whether any adapter that could run failed.
    pub fn failed(&self) -> bool {
        self.adapters.iter().any(|a| a.status == Status::Failed)
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Markdown: a summary table of adapters, then each adapter's results.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# vgg-wgpu conformance report\n\n{}, {} (commit {}), seed {}{}{}.\n\n",
            self.date,
            self.engine,
            self.git_commit,
            self.seed,
            match self.scope {
                Scope::Quick => ", the quick set",
                Scope::Standard => "",
                Scope::Full => ", full-size cases",
            },
            if self.determinism_checked {
                ", every case run twice for determinism"
            } else {
                ""
            }
        );
        s += "| # | adapter | vendor | backend | driver | verdict |\n|---|---|---|---|---|---|\n";
        for a in &self.adapters {
            s += &format!(
                "| {} | {} | {} | {} | {} {} | {} |\n",
                a.index,
                a.name,
                a.vendor,
                a.backend,
                a.driver,
                a.driver_info,
                a.summary()
            );
        }
        if self.adapters.iter().any(|a| a.limits.is_some()) {
            s += &format!("\n{}", self.matrix());
        }
        for a in &self.adapters {
            s += &format!("\n## {}\n\n{}\n", a.title(), a.summary());
            if let Some(why) = &a.stopped {
                s += &format!("\n**Stopped:** {why}\n");
            }
            for w in &a.workarounds {
                s += &format!("\n**Driver issue worked around:** {w}\n");
            }
            if let Some(l) = &a.limits {
                s += &format!(
                    "\nFeatures: {}. Limits: max buffer {} B, max storage binding {} B, {} \
                     storage buffers per stage, {} workgroups per dimension, {} B workgroup \
                     memory{}.\n",
                    if a.features.is_empty() {
                        "none of shader-f16, subgroup, timestamp-query".to_string()
                    } else {
                        a.features.join(", ")
                    },
                    l.max_buffer_bytes,
                    l.max_storage_binding_bytes,
                    l.max_storage_buffers_per_stage,
                    l.max_workgroups_per_dimension,
                    l.max_workgroup_storage_bytes,
                    l.subgroup_sizes
                        .map(|(a, b)| format!(", subgroups of {a} to {b} lanes"))
                        .unwrap_or_default()
                );
            }
            if !a.shader_overrides.is_empty() {
                s += &format!(
                    "\n**Kernels replaced from VGG_SHADER_DIR:** {}\n",
                    a.shader_overrides.join(", ")
                );
            }
            if !a.results.is_empty() {
                s += "\n| op | shape | max abs | rel L2 | max ULP | deterministic | s | result |\n\
                      |---|---|---|---|---|---|---|---|\n";
                for r in &a.results {
                    s += &format!(
                        "| {} | {} | {} | {} | {} | {} | {:.2}{} | {} |\n",
                        r.op,
                        r.shape,
                        sci(r.max_abs),
                        sci(r.rel_l2),
                        r.max_ulp
                            .map(|u| u.to_string())
                            .unwrap_or_else(|| "-".into()),
                        match r.deterministic {
                            None => "-",
                            Some(true) => "yes",
                            Some(false) => "**no**",
                        },
                        r.seconds,
                        if r.slow { " (slow)" } else { "" },
                        match &r.failure {
                            None => "pass".to_string(),
                            Some(f) => format!("**FAIL**: {f}"),
                        }
                    );
                }
            }
            if !a.skipped.is_empty() {
                s += "\nSkipped:\n\n";
                for k in &a.skipped {
                    s += &format!("- {}: {}\n", k.op, k.reason);
                }
            }
            s += &format!(
                "\nNot deterministic: {}.\n",
                if a.nondeterministic.is_empty() {
                    "none".to_string()
                } else {
                    a.nondeterministic.join("; ")
                }
            );
            if !a.slow.is_empty() {
                s += &format!("\nSlow: {}.\n", a.slow.join("; "));
            }
        }
        s
    }
}

/// The op a result or a skipped case belongs to: its name up to the pass (`conv` of
/// `conv/forward 3x3 ...`).
fn op_of(name: &str) -> &str {
    name.split(['/', ' ']).next().unwrap_or(name)
}

fn mib(b: Option<u64>) -> String {
    b.map(|b| format!("{} MiB", b >> 20))
        .unwrap_or_else(|| "-".into())
}

impl Report {
    /// The conformance matrix: a column per adapter, a row per op with its passed, failed
    /// and skipped cases and the worst relative error among them, then each adapter's
    /// peak memory, time and verdict.
    pub fn matrix(&self) -> String {
        let ran: Vec<&AdapterReport> = self
            .adapters
            .iter()
            .filter(|a| a.limits.is_some())
            .collect();
        let mut s = String::from("| op |");
        for a in &ran {
            s += &format!(" {} ({}, {}) |", a.name, a.backend, a.driver_info.trim());
        }
        s += "\n|---|";
        s += &"---|".repeat(ran.len());
        s += "\n";
        for op in super::suite::OPS {
            s += &format!("| {op} |");
            for a in &ran {
                let rows: Vec<&Row> = a.results.iter().filter(|r| op_of(&r.op) == op).collect();
                let pass = rows.iter().filter(|r| r.pass).count();
                let fail = rows.len() - pass;
                let skip = a.skipped.iter().filter(|k| op_of(&k.op) == op).count();
                let worst = rows
                    .iter()
                    .filter_map(|r| r.rel_l2)
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                let mut cell = format!("{pass} pass");
                if fail > 0 {
                    cell += &format!(", **{fail} FAIL**");
                }
                if skip > 0 {
                    cell += &format!(", {skip} skip");
                }
                if let Some(w) = worst {
                    cell += &format!(", worst {w:.1e}");
                }
                s += &format!(" {cell} |");
            }
            s += "\n";
        }
        s += "| peak memory |";
        for a in &ran {
            s += &format!(" {} |", mib(a.peak_memory_bytes));
        }
        s += "\n| time |";
        for a in &ran {
            s += &format!(" {:.0} s |", a.seconds);
        }
        s += "\n| verdict |";
        for a in &ran {
            let verdict = match a.status {
                Status::Passed => "PASSED",
                _ => "**FAILED**",
            };
            s += &format!(" {verdict} |");
        }
        s + "\n"
    }
}

/// Today's UTC date as YYYY-MM-DD (civil-from-days, so no date crate is needed).
pub fn today() -> String {
    // web_time: std's clock panics in a browser page.
    let secs = web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let z = (secs / 86400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The git commit the binary was built from ("unknown" outside a git checkout).
pub fn git_commit() -> String {
    match env!("VGG_GIT_COMMIT") {
        "" => "unknown".into(),
        c => c.into(),
    }
}
