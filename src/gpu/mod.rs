//! wgpu plumbing: adapter discovery and selection, device creation with the adapter's own
//! limits, buffers and readback, and a pipeline cache. Knows nothing about VGG.

mod buffer;
mod pipeline;
mod timing;
pub mod tuning;
#[cfg(target_arch = "wasm32")]
mod web;

pub use buffer::POISON_BITS;
pub use pipeline::{builtin_wgsl, Precision, Shader};
pub use timing::GpuTimer;

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs an asynchronous GPU call to completion for the blocking API. Natively every such
/// future is ready once [`Gpu::wait`] has returned inside it, so blocking on it never
/// waits twice. A browser page cannot block (the GPU's answers come from its event loop):
/// there the blocking API refuses and names the asynchronous one.
pub(crate) fn blocking<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        pollster::block_on(f)
    }
    #[cfg(target_arch = "wasm32")]
    {
        drop(f);
        Err(Error::Unsupported(
            "a blocking GPU call cannot run in a browser page: await its _async form".into(),
        ))
    }
}

/// The optional features the engine uses when the adapter has them.
pub const WANTED_FEATURES: &[(wgpu::Features, &str)] = &[
    (wgpu::Features::SHADER_F16, "shader-f16"),
    (wgpu::Features::SUBGROUP, "subgroup"),
    (wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
];

/// The cooperative-matrix configurations `adapter` lists, as `MxNxK A->C` ("16x16x16
/// f16->f32"); empty where it has none (every CPU driver).
pub fn coop_shapes(adapter: &wgpu::Adapter) -> Vec<String> {
    if !adapter
        .features()
        .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
    {
        return Vec::new();
    }
    let t = |t: wgpu::CooperativeScalarType| format!("{t:?}").to_lowercase();
    adapter
        .cooperative_matrix_properties()
        .iter()
        .map(|p| {
            format!(
                "{}x{}x{} {}->{}",
                p.m_size,
                p.n_size,
                p.k_size,
                t(p.ab_type),
                t(p.cr_type)
            )
        })
        .collect()
}

/// The configuration the tensor-core kernels are written for: 16x16x16 tiles of f16
/// operands with f32 accumulators (what NVIDIA's Vulkan driver lists). A shape the
/// adapter does not list is undefined behaviour, so nothing else is used.
pub const COOP_SHAPE: &str = "16x16x16 f16->f32";

/// How to pick an adapter. Empty fields fall back to `VGG_ADAPTER` / `WGPU_BACKEND`, then to
/// the best adapter found (discrete, then integrated, then the rest).
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// An index into the list `vgg devices` prints, or a case-insensitive substring of its
    /// name, driver or driver version ("swiftshader", "mesa 25").
    pub adapter: Option<String>,
    /// `vulkan`, `gl`, `metal`, `dx12` (comma-separated for several).
    pub backend: Option<String>,
    /// Compile kernels with naga's runtime bounds checks (`VGG_BOUNDS_CHECKS=1`). Off by
    /// default: every kernel's buffer sizes are checked against its shape on the host before
    /// binding, and the checks cost half the speed of the convolution on lavapipe.
    pub bounds_checks: bool,
    /// The longest a wait for submitted work may take before it is reported as an error
    /// naming the op (`VGG_GPU_TIMEOUT`, seconds) rather than hanging [default: 10 minutes].
    pub timeout: Option<Duration>,
    /// Load `OP/PASS.wgsl` from this folder, where present, instead of the built-in
    /// `shaders/OP/PASS.wgsl` (`VGG_SHADER_DIR`): to try a patched kernel, or to check that
    /// `vgg check` catches a broken one, without rebuilding.
    pub shader_dir: Option<PathBuf>,
    /// Use the kernels of [`DRIVER_ISSUES`] on the drivers that are known to fail on them,
    /// as everywhere else (`VGG_DRIVER_WORKAROUNDS=0`): to reproduce a driver bug, or to
    /// see whether a new driver release fixed it.
    pub no_workarounds: bool,
}

/// A kernel a driver is known to fail on: the selector takes another variant there, and
/// `vgg check` reports that it did and why.
#[derive(Clone, Copy, Debug)]
pub struct DriverIssue {
    /// A case-insensitive substring of the adapter's name or driver.
    pub driver: &'static str,
    /// The shader that fails (`shaders/<kernel>.wgsl`).
    pub kernel: &'static str,
    /// What goes wrong, and what runs instead.
    pub why: &'static str,
}

/// Kernels that drivers are known to fail on. Each entry was measured on the driver named
/// and reproduced outside the engine (the reproducer's folder is named).
pub const DRIVER_ISSUES: &[DriverIssue] = &[DriverIssue {
    driver: "swiftshader",
    kernel: "conv/backward_weight/gemm",
    why: "SwiftShader's shader compiler allocates without bound and never returns building \
          conv/backward_weight/gemm for more than 4 input channels \
          (vkCreateComputePipelines; reproduced without wgpu by tools/swiftshader_wgrad/); the \
          weight gradient runs as conv/backward_weight/pairs there",
}];

/// A positive, finite number of seconds, at most a year (which `Duration` holds).
pub fn seconds(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 3.2e7)
}

/// How long a wait for the GPU may take when nobody says: far above any single submission
/// of the engine on a software adapter, far below "hung".
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl GpuOptions {
    /// Fills the fields left empty from the environment: the one place the engine reads
    /// `VGG_ADAPTER`, `WGPU_BACKEND`, `VGG_BOUNDS_CHECKS`, `VGG_GPU_TIMEOUT` and
    /// `VGG_SHADER_DIR` (the command line's flags fill the fields first, so a flag wins).
    /// A value that does not parse is an error naming the variable, not a silent default.
    pub fn with_env(mut self) -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let invalid = |k: &str, v: &str, what: &str| Error::InvalidOption {
            option: k.to_string(),
            message: format!("'{v}' is not {what}"),
        };
        if self.adapter.is_none() {
            self.adapter = env("VGG_ADAPTER");
        }
        if self.backend.is_none() {
            self.backend = env("WGPU_BACKEND");
        }
        if let Some(v) = env("VGG_BOUNDS_CHECKS") {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => self.bounds_checks = true,
                "0" | "false" | "no" | "off" => {}
                _ => return Err(invalid("VGG_BOUNDS_CHECKS", &v, "1 or 0")),
            }
        }
        if self.timeout.is_none() {
            if let Some(v) = env("VGG_GPU_TIMEOUT") {
                let what = "a positive number of seconds";
                let s = seconds(&v).ok_or_else(|| invalid("VGG_GPU_TIMEOUT", &v, what))?;
                self.timeout = Some(Duration::from_secs_f64(s));
            }
        }
        if self.shader_dir.is_none() {
            self.shader_dir = env("VGG_SHADER_DIR").map(PathBuf::from);
        }
        if let Some(v) = env("VGG_DRIVER_WORKAROUNDS") {
            match v.trim().to_ascii_lowercase().as_str() {
                "0" | "false" | "no" | "off" => self.no_workarounds = true,
                "1" | "true" | "yes" | "on" => {}
                _ => return Err(invalid("VGG_DRIVER_WORKAROUNDS", &v, "1 or 0")),
            }
        }
        Ok(self)
    }

    pub fn backends(&self) -> Result<wgpu::Backends> {
        match &self.backend {
            None => Ok(wgpu::Backends::all()),
            Some(s) => parse_backends(s),
        }
    }
}

/// Parses `vulkan|gl|metal|dx12`, comma-separated, with a clear error on anything else
/// (wgpu's own parser silently drops unknown names).
pub fn parse_backends(s: &str) -> Result<wgpu::Backends> {
    let mut out = wgpu::Backends::empty();
    for name in s.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        out |= match name.as_str() {
            "vulkan" | "vk" => wgpu::Backends::VULKAN,
            "gl" | "gles" | "opengl" => wgpu::Backends::GL,
            "metal" | "mtl" => wgpu::Backends::METAL,
            "dx12" | "d3d12" => wgpu::Backends::DX12,
            "all" => wgpu::Backends::all(),
            other => {
                return Err(Error::InvalidOption {
                    option: "backend".into(),
                    message: format!("'{other}' is not one of vulkan, gl, metal, dx12"),
                })
            }
        };
    }
    Ok(out)
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    // Validation layers are for developing wgpu itself; honour WGPU_DEBUG etc. only when asked.
    desc.flags = wgpu::InstanceFlags::empty().with_env();
    desc.backend_options = wgpu::BackendOptions::from_env_or_default();
    wgpu::Instance::new(desc)
}

/// Every adapter on the given backends, in a stable order (the order `vgg devices` shows).
/// None in a browser page, where WebGPU hands out its one adapter by request
/// ([`Gpu::new_async`]).
pub fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        pollster::block_on(enumerate_async(backends))
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = backends;
        Vec::new()
    }
}

/// [`enumerate`] as a future.
pub async fn enumerate_async(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance = new_instance(backends);
    let mut adapters = instance.enumerate_adapters(backends).await;
    // Among adapters of one backend and type, the one with more of the features the engine
    // uses first (with several software drivers installed, lavapipe with shader-f16 before
    // SwiftShader without), then by name and driver version.
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        let missing = WANTED_FEATURES
            .iter()
            .filter(|(f, _)| !a.features().contains(*f))
            .count();
        (
            backend_rank(i.backend),
            type_rank(i.device_type),
            missing,
            i.name.clone(),
            i.driver_info.clone(),
        )
    });
    adapters
}

fn backend_rank(b: wgpu::Backend) -> u8 {
    match b {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal => 1,
        wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 3,
        _ => 4,
    }
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Applies `opts.adapter` to an enumerated list: an index, else a name substring.
pub fn select(adapters: Vec<wgpu::Adapter>, opts: &GpuOptions) -> Result<wgpu::Adapter> {
    let backends = opts.backends()?;
    if adapters.is_empty() {
        return Err(Error::NoAdapter {
            backends: format!("{backends:?}"),
        });
    }
    let names: Vec<String> = adapters
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let info = a.get_info();
            format!("{i}: {} ({:?})", info.name, info.backend)
        })
        .collect();
    let Some(query) = &opts.adapter else {
        // The best device type first; for equal types keep the backend order of `enumerate`.
        let best = adapters
            .into_iter()
            .enumerate()
            .min_by_key(|(i, a)| (type_rank(a.get_info().device_type), *i))
            .map(|(_, a)| a);
        return best.ok_or(Error::NoAdapter {
            backends: format!("{backends:?}"),
        });
    };
    let q = query.trim();
    if let Ok(index) = q.parse::<usize>() {
        return adapters
            .into_iter()
            .nth(index)
            .ok_or_else(|| Error::AdapterNotFound {
                query: query.clone(),
                available: names,
            });
    }
    let ql = q.to_lowercase();
    adapters
        .into_iter()
        .find(|a| {
            let i = a.get_info();
            [&i.name, &i.driver, &i.driver_info]
                .iter()
                .any(|s| s.to_lowercase().contains(&ql))
        })
        .ok_or_else(|| Error::AdapterNotFound {
            query: query.clone(),
            available: names,
        })
}

type PipelineKey = (&'static str, Precision, &'static str, Vec<(String, u64)>);

/// Set once any device of this process ran past its timeout (see [`any_device_hung`]).
static ANY_HUNG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a device of this process ran past its timeout: its queue may never drain, and
/// the driver's own teardown at exit (joining its threads) may then wait forever. A
/// program that sees this should report and leave with `_exit`, as `vgg` does.
pub fn any_device_hung() -> bool {
    ANY_HUNG.load(Ordering::Relaxed)
}

/// A device on one adapter, with the adapter's own limits and the optional features it has.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    modules: Mutex<HashMap<(&'static str, Precision), wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    lost: Arc<Mutex<Option<String>>>,
    /// The first error wgpu raised outside any error scope.
    uncaptured: Arc<Mutex<Option<String>>>,
    bounds_checks: bool,
    timeout: Duration,
    shader_dir: Option<PathBuf>,
    overrides_used: Mutex<std::collections::BTreeSet<String>>,
    submits: AtomicU64,
    /// The default tuning file, read on first use (or as `set_tuning` replaced it).
    tuning: Mutex<Option<Arc<tuning::TuningFile>>>,
    /// What the device is doing now, for a watchdog on another thread.
    activity: Arc<Activity>,
    /// A wait ran past the timeout: the queue may never drain.
    hung: std::sync::atomic::AtomicBool,
    /// Avoid the kernels of [`DRIVER_ISSUES`] on their drivers.
    workarounds: bool,
    /// The driver issues worked around so far.
    worked_around: Mutex<Vec<&'static DriverIssue>>,
}

/// The driver call a thread is inside: a watchdog that finds a case stuck names the stage
/// (a driver's shader compiler that never returns, a dispatch that never ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Host work: the CPU reference, buffers, encoding.
    Host,
    /// WGSL to the driver's shader module (naga's front end).
    ShaderCompile,
    /// The compute pipeline: naga's back end and the driver's own compiler.
    Pipeline,
    /// Waiting for submitted work to finish.
    Dispatch,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Host => "host",
            Stage::ShaderCompile => "shader compile",
            Stage::Pipeline => "pipeline",
            Stage::Dispatch => "dispatch",
        }
    }
}

/// The stage a `Gpu` is in and what it is working on (a shader's name, an op), readable
/// from any thread while the device's own thread is blocked in the driver.
#[derive(Debug)]
pub struct Activity(Mutex<(Stage, String)>);

impl Activity {
    fn new() -> Activity {
        Activity(Mutex::new((Stage::Host, String::new())))
    }
    /// The stage and its subject.
    pub fn now(&self) -> (Stage, String) {
        self.0
            .lock()
            .map(|a| a.clone())
            .unwrap_or((Stage::Host, String::new()))
    }
    fn set(&self, stage: Stage, what: &str) {
        if let Ok(mut a) = self.0.lock() {
            *a = (stage, what.to_string());
        }
    }
    /// Runs `f` in `stage` on `what`, back to host work after.
    pub(crate) fn during<T>(&self, stage: Stage, what: &str, f: impl FnOnce() -> T) -> T {
        self.set(stage, what);
        let out = f();
        self.set(Stage::Host, "");
        out
    }
}

impl Drop for Gpu {
    /// A hung device is leaked, not torn down: dropping the last handle waits for its queue
    /// to drain, which a dispatch that never ends never lets happen.
    fn drop(&mut self) {
        if self.is_hung() {
            std::mem::forget(self.device.clone());
            std::mem::forget(self.queue.clone());
            std::mem::forget(self.adapter.clone());
        }
    }
}

impl Gpu {
    /// Picks an adapter as `opts` (then the environment) says, and opens a device on it
    /// (natively; a page cannot wait: [`Gpu::new_async`]).
    pub fn new(opts: &GpuOptions) -> Result<Gpu> {
        blocking(Gpu::new_async(opts))
    }

    /// [`Gpu::new`] as a future. In a browser page WebGPU hands out one adapter, by
    /// request (the high-performance one); natively the adapters are enumerated and chosen
    /// as `opts` says.
    pub async fn new_async(opts: &GpuOptions) -> Result<Gpu> {
        let opts = opts.clone().with_env()?;
        #[cfg(target_arch = "wasm32")]
        let adapter = new_instance(wgpu::Backends::BROWSER_WEBGPU)
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Unsupported(format!("the page has no WebGPU adapter: {e}")))?;
        #[cfg(not(target_arch = "wasm32"))]
        let adapter = select(enumerate_async(opts.backends()?).await, &opts)?;
        Gpu::open_async(adapter, &opts).await
    }

    /// Opens a device on `adapter` with `opts`'s kernel options (adapter and backend are
    /// ignored: the adapter is given).
    pub fn open(adapter: wgpu::Adapter, opts: &GpuOptions) -> Result<Gpu> {
        blocking(Gpu::open_async(adapter, opts))
    }

    /// [`Gpu::open`] as a future.
    pub async fn open_async(adapter: wgpu::Adapter, opts: &GpuOptions) -> Result<Gpu> {
        let opts = opts.clone().with_env()?;
        if let Some(dir) = opts.shader_dir.as_ref().filter(|d| !d.is_dir()) {
            return Err(Error::File {
                path: dir.display().to_string(),
                message: "the shader folder (VGG_SHADER_DIR) is not a directory".into(),
            });
        }
        let mut gpu = Gpu::from_adapter_async(adapter).await?;
        gpu.bounds_checks = opts.bounds_checks;
        gpu.timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        gpu.shader_dir = opts.shader_dir;
        gpu.workarounds = !opts.no_workarounds;
        Ok(gpu)
    }

    /// Opens a device with everything the adapter offers: its own limits (wgpu's defaults
    /// cap storage bindings at 128 MiB even where the hardware allows more) and the subset
    /// of [`WANTED_FEATURES`] it has.
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu> {
        blocking(Gpu::from_adapter_async(adapter))
    }

    /// [`Gpu::from_adapter`] as a future.
    pub async fn from_adapter_async(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        #[cfg(target_arch = "wasm32")]
        let info = web::adapter_info(info).await;
        // wgpu lists adapters it cannot run compute on (an OpenGL context below 4.3 or ES
        // 3.1). Some say they can and cannot; `probe` below finds those.
        let downlevel = adapter.get_downlevel_capabilities();
        if !downlevel
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        {
            return Err(Error::Unsupported(format!(
                "{} ({:?}, driver {}) offers no compute shaders through wgpu",
                info.name, info.backend, info.driver_info
            )));
        }
        let limits = adapter.limits();
        let wanted = WANTED_FEATURES
            .iter()
            .fold(wgpu::Features::empty(), |acc, (f, _)| acc | *f);
        let mut features = adapter.features() & wanted;
        // The tensor-core path needs wgpu's experimental cooperative-matrix feature, and
        // only where the adapter lists the one shape the kernels use.
        let coop = coop_shapes(&adapter).iter().any(|s| s == COOP_SHAPE)
            && adapter.features().contains(wgpu::Features::SHADER_F16);
        let open = |features: wgpu::Features, experimental: bool| {
            adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("vgg-wgpu"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: if experimental {
                    // SAFETY: opting into an experimental wgpu feature, which may have
                    // bugs; the kernels use only the shape the adapter lists (COOP_SHAPE),
                    // and a device that fails to open with it is opened without.
                    unsafe { wgpu::ExperimentalFeatures::enabled() }
                } else {
                    wgpu::ExperimentalFeatures::disabled()
                },
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
        };
        let coop_features = features | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let opened = match coop {
            true => match open(coop_features, true).await {
                Ok(d) => Ok((d, coop_features)),
                Err(_) => open(features, false).await.map(|d| (d, features)),
            },
            false => open(features, false).await.map(|d| (d, features)),
        };
        let ((device, queue), f) = opened.map_err(|e| Error::RequestDevice(e.to_string()))?;
        features = f;
        let lost = Arc::new(Mutex::new(None));
        let lost_cb = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = lost_cb.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        // wgpu's default handler panics. Every call that can fail runs in error scopes, so
        // this catches only what slipped past them; it is reported at the next wait.
        let uncaptured = Arc::new(Mutex::new(None));
        let uncaptured_cb = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut u) = uncaptured_cb.lock() {
                u.get_or_insert_with(|| one_line(&e.to_string()));
            }
        }));
        let gpu = Gpu {
            device,
            queue,
            adapter,
            info,
            limits,
            features,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            lost,
            uncaptured,
            bounds_checks: false,
            timeout: DEFAULT_TIMEOUT,
            shader_dir: None,
            overrides_used: Mutex::new(Default::default()),
            tuning: Mutex::new(None),
            submits: AtomicU64::new(0),
            activity: Arc::new(Activity::new()),
            hung: Default::default(),
            workarounds: true,
            worked_around: Mutex::new(Vec::new()),
        };
        gpu.probe()?;
        Ok(gpu)
    }

    /// Builds a minimal compute pipeline with a storage buffer. Some drivers pass wgpu's
    /// capability checks and still refuse compute at pipeline creation (NVIDIA's OpenGL
    /// through EGL gives wgpu a 3.3 context): better one clear refusal here than a failure
    /// in every kernel.
    fn probe(&self) -> Result<()> {
        const PROBE: &str = "@group(0) @binding(0) var<storage, read_write> b: array<u32>;\n\
            @compute @workgroup_size(1) fn main() { b[0] = 1u; }";
        self.scoped("probe", || {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("probe"),
                    source: wgpu::ShaderSource::Wgsl(PROBE.into()),
                });
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("probe"),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                })
        })
        .map(|_| ())
        .map_err(|e| {
            Error::Unsupported(format!(
                "{} ({:?}, driver {}) cannot build a compute pipeline through wgpu: {e}",
                self.info.name, self.info.backend, self.info.driver_info
            ))
        })
    }

    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// Whether the device opened with cooperative matrices of [`COOP_SHAPE`] (tensor cores).
    pub fn cooperative_matrix(&self) -> bool {
        self.features
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
    }

    /// The cooperative-matrix configurations the adapter lists (see [`coop_shapes`]).
    pub fn coop_shapes(&self) -> Vec<String> {
        coop_shapes(&self.adapter)
    }

    pub fn features(&self) -> wgpu::Features {
        self.features
    }
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }
    pub fn bounds_checks(&self) -> bool {
        self.bounds_checks
    }
    /// Whether subgroup operations are available with every subgroup at least `lanes` wide.
    pub fn subgroups_of_at_least(&self, lanes: u32) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP) && self.info.subgroup_min_size >= lanes
    }

    /// The adapter's subgroup size where it is one fixed size (min = max), as the
    /// cooperative-matrix kernels need to size their workgroup of 4 subgroups.
    pub fn fixed_subgroup(&self) -> Option<u32> {
        let i = &self.info;
        (self.features.contains(wgpu::Features::SUBGROUP)
            && i.subgroup_min_size == i.subgroup_max_size
            && i.subgroup_min_size > 0)
            .then_some(i.subgroup_min_size)
    }
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// One line naming the adapter, for test and benchmark output.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let driver = if i.driver_info.is_empty() {
            i.driver.clone()
        } else {
            format!("{} {}", i.driver, i.driver_info)
        };
        format!(
            "{} ({:?}, {:?}, {})",
            i.name,
            i.backend,
            i.device_type,
            driver.trim()
        )
    }

    /// Memory new buffers can still take, where the adapter says: the host's available
    /// memory for a CPU adapter (lavapipe, llvmpipe: their buffers are host memory), the
    /// size of the device-local heaps for a Vulkan GPU. `None` where it cannot be known.
    pub fn memory_available(&self) -> Option<u64> {
        if self.is_cpu() {
            return host_memory_available();
        }
        self.vulkan_device_local_bytes()
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn vulkan_device_local_bytes(&self) -> Option<u64> {
        // SAFETY: the hal adapter is only borrowed for a read-only property query, and the
        // guard is dropped before this function returns.
        let hal = unsafe { self.adapter.as_hal::<wgpu::hal::api::Vulkan>() }?;
        let instance = hal.shared_instance().raw_instance();
        // SAFETY: the physical device belongs to this instance, which outlives the call.
        let props =
            unsafe { instance.get_physical_device_memory_properties(hal.raw_physical_device()) };
        let heaps = &props.memory_heaps[..props.memory_heap_count as usize];
        let local: u64 = heaps
            .iter()
            .filter(|h| h.flags.contains(ash::vk::MemoryHeapFlags::DEVICE_LOCAL))
            .map(|h| h.size)
            .sum();
        (local > 0).then_some(local)
    }

    #[cfg(target_arch = "wasm32")]
    fn vulkan_device_local_bytes(&self) -> Option<u64> {
        None
    }

    /// The largest byte size one storage binding may cover on this device.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Whether this driver is known to fail on `kernel` (a shader stem,
    /// `conv/backward_weight/gemm`), so a selector should take another variant: the issue,
    /// recorded as worked around. Always `None` with `VGG_DRIVER_WORKAROUNDS=0`.
    pub fn driver_issue(&self, kernel: &str) -> Option<&'static DriverIssue> {
        if !self.workarounds {
            return None;
        }
        let names = [&self.info.name, &self.info.driver, &self.info.driver_info];
        let issue = DRIVER_ISSUES.iter().find(|d| {
            d.kernel == kernel && names.iter().any(|n| n.to_lowercase().contains(d.driver))
        })?;
        if let Ok(mut w) = self.worked_around.lock() {
            if !w.iter().any(|x| std::ptr::eq(*x, issue)) {
                w.push(issue);
            }
        }
        Some(issue)
    }

    /// The driver issues the selectors have worked around on this device so far.
    pub fn worked_around(&self) -> Vec<&'static DriverIssue> {
        self.worked_around
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default()
    }

    /// What the device is doing now (see [`Activity`]), to watch from another thread.
    pub fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }

    /// Whether a wait ran past the timeout: the work may never finish, and dropping the
    /// device (which waits for it) could then block forever.
    pub fn is_hung(&self) -> bool {
        self.hung.load(Ordering::Relaxed)
    }

    /// Waits for all submitted work, at most the device's timeout; reports a lost device, a
    /// timeout or an uncaptured error as an error naming `op`. In a browser nothing can
    /// wait: this only reports, and a readback's future resolves when the work is done.
    #[cfg(target_arch = "wasm32")]
    pub fn wait(&self, op: &str) -> Result<()> {
        self.check_lost(op)
    }

    /// Waits for all submitted work, at most the device's timeout; reports a lost device, a
    /// timeout or an uncaptured error as an error naming `op`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&self, op: &str) -> Result<()> {
        let started = std::time::Instant::now();
        let polled = self.activity.during(Stage::Dispatch, op, || {
            if self.info.backend == wgpu::Backend::Gl {
                self.wait_by_polling(started)
            } else {
                self.device
                    .poll(wgpu::PollType::Wait {
                        submission_index: None,
                        timeout: Some(self.timeout),
                    })
                    .map(|_| ())
            }
        });
        if matches!(polled, Err(wgpu::PollError::Timeout)) {
            self.hung.store(true, Ordering::Relaxed);
            ANY_HUNG.store(true, Ordering::Relaxed);
        }
        self.check_lost(op)?;
        polled.map_err(|e| Error::Gpu {
            op: op.into(),
            message: match e {
                wgpu::PollError::Timeout => format!(
                    "the GPU did not finish within {:.3?} (waited {:.3?}): the adapter is too \
                     slow for this work or hung; raise VGG_GPU_TIMEOUT to wait longer",
                    self.timeout,
                    started.elapsed()
                ),
                other => other.to_string(),
            },
        })?;
        Ok(())
    }

    /// wgpu's OpenGL backend holds its one GL context's lock through a blocking wait, and
    /// any other thread that needs the context meanwhile gives up after 6 s with a panic.
    /// Polling takes the lock only for a moment at a time.
    #[cfg(not(target_arch = "wasm32"))]
    fn wait_by_polling(
        &self,
        started: std::time::Instant,
    ) -> std::result::Result<(), wgpu::PollError> {
        loop {
            if self.device.poll(wgpu::PollType::Poll)?.is_queue_empty() {
                return Ok(());
            }
            if started.elapsed() >= self.timeout {
                return Err(wgpu::PollError::Timeout);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The default tuning file (`tuning::default_path`), read once for this device: a
    /// missing or unreadable file is an empty one, since tuning only ever makes things faster.
    pub fn tuning(&self) -> Arc<tuning::TuningFile> {
        let Ok(mut t) = self.tuning.lock() else {
            return Arc::default();
        };
        t.get_or_insert_with(|| {
            Arc::new(
                tuning::default_path()
                    .and_then(|p| tuning::TuningFile::load(&p).ok())
                    .unwrap_or_default(),
            )
        })
        .clone()
    }

    /// Replaces the tuning this device selects by (after `vgg bench --tune` wrote a new file).
    pub fn set_tuning(&self, file: tuning::TuningFile) {
        if let Ok(mut t) = self.tuning.lock() {
            *t = Some(Arc::new(file));
        }
    }

    /// Kernels loaded from the shader folder instead of the built-in sources so far.
    pub fn shader_overrides_used(&self) -> Vec<String> {
        self.overrides_used
            .lock()
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The timeout of [`Gpu::wait`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the device was lost (after which every later call fails) or hung (a wait
    /// ran past the timeout: later work would queue behind what never ended).
    pub fn is_lost(&self) -> bool {
        self.is_hung() || self.lost.lock().map(|l| l.is_some()).unwrap_or(true)
    }

    fn check_lost(&self, op: &str) -> Result<()> {
        if let Some(msg) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::Gpu {
                op: op.into(),
                message: format!("device lost: {msg}"),
            });
        }
        if let Some(msg) = self.uncaptured.lock().ok().and_then(|mut u| u.take()) {
            return Err(Error::Gpu {
                op: op.into(),
                message: msg,
            });
        }
        Ok(())
    }

    /// Runs `f` inside validation and out-of-memory error scopes, so a bad dispatch or an
    /// allocation the device cannot satisfy surfaces as an error naming `op`.
    pub fn scoped<T>(&self, op: &str, f: impl FnOnce() -> T) -> Result<T> {
        // Some wgpu calls panic on a lost device instead of reporting it.
        self.check_lost(op)?;
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        // In a browser the scopes resolve from the page's event loop, which cannot run
        // while this waits: their errors are kept, as uncaptured ones are, and reported at
        // the next wait or readback.
        #[cfg(target_arch = "wasm32")]
        {
            let (uncaptured, op) = (self.uncaptured.clone(), op.to_string());
            // Popped now, in reverse order of the pushes; only the answers are awaited.
            let (v, o, i) = (val.pop(), oom.pop(), internal.pop());
            wasm_bindgen_futures::spawn_local(async move {
                let (v, o, i) = (v.await, o.await, i.await);
                if let (Some(e), Ok(mut u)) = (v.or(o).or(i), uncaptured.lock()) {
                    u.get_or_insert_with(|| format!("{op}: {}", one_line(&e.to_string())));
                }
            });
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let v = pollster::block_on(val.pop());
            let o = pollster::block_on(oom.pop());
            let i = pollster::block_on(internal.pop());
            if let Some(e) = v.or(o).or(i) {
                return Err(Error::Gpu {
                    op: op.into(),
                    message: one_line(&e.to_string()),
                });
            }
        }
        self.check_lost(op)?;
        Ok(out)
    }

    /// Encodes work into one command buffer, submits it once, waits, and checks for errors.
    pub fn run(
        &self,
        op: &str,
        f: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        self.scoped(op, || {
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(op) });
            f(&mut enc)?;
            self.submit(enc.finish());
            Ok(())
        })??;
        self.wait(op)
    }

    /// Natively nothing: every `run` has waited for its work. In a page, where a wait only
    /// reports, the end of all work submitted so far (the queue's answer, on the page's
    /// event loop): what a wall-clock time around GPU work awaits.
    pub async fn done_async(&self, op: &str) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        {
            let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
            self.queue.on_submitted_work_done(move || {
                let _ = tx.send(());
            });
            rx.receive().await;
        }
        self.check_lost(op)
    }

    /// Submits one command buffer, counted (the executor promises one submit per forward,
    /// and tests hold it to that).
    pub fn submit(&self, commands: wgpu::CommandBuffer) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        self.queue.submit([commands]);
    }

    /// Queue submissions made through this `Gpu` so far.
    pub fn submit_count(&self) -> u64 {
        self.submits.load(Ordering::Relaxed)
    }

    /// `run` with one compute pass around `f`.
    pub fn run_pass(
        &self,
        op: &str,
        f: impl FnOnce(&mut wgpu::ComputePass<'_>) -> Result<()>,
    ) -> Result<()> {
        self.run(op, |enc| {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(op),
                timestamp_writes: None,
            });
            f(&mut pass)
        })
    }
}

/// wgpu's errors span lines ("Validation Error", "Caused by:", indented causes); a report
/// row or an `error:` line wants them on one.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Caused by:")
        .collect::<Vec<_>>()
        .join(": ")
}

fn host_memory_available() -> Option<u64> {
    crate::io::memory_available()
}
