//! `vgg check`: the conformance suite on one adapter or all, the table as it goes, the
//! reports at the end.
//!
//! A conformance tool has to survive the driver it tests: a shader compiler that never
//! returns, or allocates without bound, or a dispatch that never ends. So the suite runs on
//! a worker thread while this one watches the case in progress (its time, pipeline creation
//! included) and the process's resident memory; a case past either bound is reported as a
//! FAIL naming the stage it was stuck in (`gpu::Stage`), the cases after it as skipped with
//! the reason, the reports are written, and the process exits at once without waiting on
//! the driver. With `--all`, each adapter runs in a child process of its own, so one
//! driver's failure cannot take the others' results with it, and each adapter's peak memory
//! is its own.

use super::{positive_seconds, write_text, AdapterArgs};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use vgg_wgpu::check::report::{AdapterReport, Report, Status};
use vgg_wgpu::check::suite::{Scope, Skipped, SuiteOptions};
use vgg_wgpu::check::Outcome;
use vgg_wgpu::gpu::{Activity, GpuOptions};
use vgg_wgpu::{check, gpu, Gpu};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub gpu: AdapterArgs,
    /// Check every adapter found (on --backend), one after another, each in a process of
    /// its own
    #[arg(long, conflicts_with = "adapter")]
    pub all: bool,
    /// Run every case: the standard ones and the full-size ones, VGG16's 392 MiB first FC
    /// layer (split over bindings where needed) and the whole VGG16 at 224x224 [default:
    /// the quick set, one or two cases of every kernel and pass at small shapes, one
    /// network and one training step; with --op, all of that op's standard cases]
    #[arg(long, conflicts_with = "standard")]
    pub full: bool,
    /// Run every case at the suite's small shapes, the edge cases included (odd sizes,
    /// 1x1, channel counts off every tile, grids past 65535 workgroups, tensors over the
    /// binding limit), without the full-size ones
    #[arg(long)]
    pub standard: bool,
    /// Seed for the random inputs [default: drawn from the clock and printed]
    #[arg(long, env = "VGG_SEED")]
    pub seed: Option<u64>,
    /// Write the report as JSON to FILE, or to stdout when no FILE is given (the table
    /// then goes to stderr)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown to FILE: with --all, a matrix of adapters x ops (pass,
    /// fail, skip, worst error, peak memory, time) before each adapter's table
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Only the cases of this op or pass: conv, pool, linear, batchnorm, lrn, softmax,
    /// avgpool, im2col, elementwise, optim, network, train; or one pass, e.g.
    /// conv/backward (all its standard cases; with --full, its full-size ones too)
    #[arg(long, value_name = "OP")]
    pub op: Option<String>,
    /// Run each case once (skip the determinism check, which runs it twice)
    #[arg(long)]
    pub no_determinism: bool,
    /// Report a case that takes longer than this (seconds, CPU reference included) as slow
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = positive_seconds)]
    pub slow: f64,
    /// Only the cases of one precision: f16 checks what `--precision f16` runs elsewhere
    /// (kernels storing f16; the f16-operand kernels, on tensor cores where the adapter lists
    /// cooperative matrices of 16x16x16 f16->f32, else through their lane-by-lane emulation
    /// where it has subgroups of one fixed size; VGG16 at 32x32 in f16 and a mixed-precision
    /// training step), f32 everything else [default: both]
    #[arg(long, value_parser = ["f32", "f16"])]
    pub precision: Option<String>,
    /// Stop a case that has not finished after this many seconds, shader compilation and
    /// pipeline creation included (a driver's compiler that never returns): it fails naming
    /// the stage it was in, the cases left are skipped with the reason, the reports are
    /// written and the command exits 1 without waiting on the driver
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0, value_parser = positive_seconds)]
    pub case_timeout: f64,
    /// Stop the same way when the check's resident memory passes this many MiB (a driver
    /// that allocates without bound) [default: half the host's memory, at most 8192]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(64..))]
    pub memory_cap: Option<u64>,
}

/// The last line of a quick check that passed.
const QUICK_HINT: &str = "that was the quick set; --standard runs every case at small shapes, \
    --full the full-size ones too (see vgg check --help for their times)";

/// The bounds a case runs under.
#[derive(Clone, Copy)]
struct Bounds {
    case: Duration,
    memory: u64,
}

/// What the suite's thread tells the watching one.
enum Msg {
    Opened(Box<AdapterReport>, Arc<Activity>),
    NotOpened(Box<AdapterReport>),
    Plan(Vec<(String, String)>),
    Start(usize),
    Result(Box<Outcome>),
    Done {
        skipped: Vec<Skipped>,
        overrides: Vec<String>,
        workarounds: Vec<String>,
        hung: bool,
    },
}

/// How one adapter's run ended, for the process.
struct Ran {
    report: AdapterReport,
    /// The device is stuck (a case stopped, or a wait past the GPU timeout): the process
    /// must exit without tearing the driver down.
    stuck: bool,
}

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        let opts = SuiteOptions {
            seed: self.seed.unwrap_or_else(clock_seed),
            scope: self.scope(),
            determinism: !self.no_determinism,
            slow_seconds: self.slow,
            only: self.op.clone(),
            // clap has checked the name.
            precision: self.precision.as_deref().and_then(super::precision_named),
        };
        self.check_op()?;
        let bounds = Bounds {
            case: Duration::from_secs_f64(self.case_timeout),
            memory: self.memory_cap.map(|m| m << 20).unwrap_or_else(default_cap),
        };
        let gpu_opts = self.gpu.options().with_env()?;
        let chosen = self.adapters(&gpu_opts)?;
        let json_stdout = self.json.as_deref() == Some(Path::new("-"));
        // The bar over the cases (stderr) is lifted while a line prints; with the JSON on
        // stdout, the table goes to stderr.
        let bar = std::cell::RefCell::new(super::progress::Progress::bar(0, "cases", true));
        // A failed write to stdout (a full disk) is kept and returned once the adapter in
        // hand is done: the reports still get written.
        let unwritten = std::cell::RefCell::new(None);
        let say = |line: &str| {
            bar.borrow().suspend(|| {
                if json_stdout {
                    errln!("{line}");
                } else if let Err(e) = outln!("{line}") {
                    unwritten.borrow_mut().get_or_insert(e);
                }
            })
        };
        let seed = opts.seed;
        say(&format!("seed: {seed} (replay with --seed {seed})"));
        let mut report = Report::new(seed, opts.scope, opts.determinism);
        let mut stuck = false;
        for (index, adapter) in chosen {
            let ar = if self.all {
                let title = AdapterReport::new(index, &adapter.get_info()).title();
                say(&format!("\n== {title}"));
                self.in_child(index, &adapter.get_info(), seed, bounds, &say)
            } else {
                let ar = AdapterReport::new(index, &adapter.get_info());
                say(&format!("\n== {}", ar.title()));
                bar.replace(super::progress::Progress::bar(
                    0,
                    "cases",
                    self.json.is_some(),
                ));
                let ran = watched(adapter, ar, &gpu_opts, &opts, bounds, &say, &|d, t| {
                    bar.borrow().set_counts(d as u64, t as u64)
                });
                bar.borrow().finish();
                stuck |= ran.stuck;
                ran.report
            };
            say(&ar.summary());
            report.adapters.push(ar);
            if unwritten.borrow().is_some() {
                break;
            }
        }
        if let Some(path) = &self.json {
            if json_stdout {
                outln!("{}", report.json())?;
            } else {
                write_text(path, &report.json())?;
                say(&format!("wrote {}", path.display()));
            }
        }
        if let Some(path) = &self.markdown {
            write_text(path, &report.markdown())?;
            say(&format!("wrote {}", path.display()));
        }
        if let Some(e) = unwritten.borrow_mut().take() {
            return Err(e);
        }
        if opts.scope == Scope::Quick && !report.failed() {
            // Once, at the end: the parent of --all drops its children's copies.
            say(QUICK_HINT);
        }
        let code = if report.failed() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
        if stuck {
            // Tearing down a device whose driver is stuck in a call (or whose queue never
            // drains) would wait on it forever: the reports are written, so leave now.
            exit_now(if report.failed() { 1 } else { 0 });
        }
        Ok(code)
    }

    /// --op as a prefix of a case's name ("conv", "conv/wgrad"); one that matches no case
    /// would run nothing and pass.
    fn check_op(&self) -> vgg_wgpu::Result<()> {
        let Some(op) = &self.op else {
            return Ok(());
        };
        let names = check::suite::PASSES;
        if names.iter().any(|n| n.starts_with(op.as_str())) {
            return Ok(());
        }
        Err(vgg_wgpu::Error::InvalidOption {
            option: "--op".into(),
            message: format!(
                "'{op}' names no case of the suite; give an op or op/pass: {}",
                names.join(", ")
            ),
        })
    }

    /// The adapters to check with their indices in `vgg devices`' list: every one with
    /// --all, else the one --adapter (or the default choice) picks.
    fn adapters(&self, gpu_opts: &GpuOptions) -> vgg_wgpu::Result<Vec<(usize, wgpu::Adapter)>> {
        let adapters = gpu::enumerate(gpu_opts.backends()?);
        if self.all {
            if adapters.is_empty() {
                return Err(vgg_wgpu::Error::NoAdapter {
                    backends: gpu_opts.backend.clone().unwrap_or_else(|| "all".into()),
                });
            }
            return Ok(adapters.into_iter().enumerate().collect());
        }
        let picked = gpu::select(adapters.clone(), gpu_opts)?;
        let key = |a: &wgpu::Adapter| {
            let i = a.get_info();
            (i.name, i.backend, i.driver, i.driver_info, i.device_type)
        };
        let index = adapters
            .iter()
            .position(|a| key(a) == key(&picked))
            .unwrap_or(0);
        Ok(vec![(index, picked)])
    }

    /// Which cases run: --full's, --standard's, an --op's standard ones, else the quick set.
    fn scope(&self) -> Scope {
        match (self.full, self.standard || self.op.is_some()) {
            (true, _) => Scope::Full,
            (false, true) => Scope::Standard,
            (false, false) => Scope::Quick,
        }
    }

    /// Runs the check of adapter `index` in a child process (`vgg check --adapter INDEX`
    /// with the same options), passing its table through, and reads its report back.
    fn in_child(
        &self,
        index: usize,
        info: &wgpu::AdapterInfo,
        seed: u64,
        bounds: Bounds,
        say: &dyn Fn(&str),
    ) -> AdapterReport {
        let file =
            std::env::temp_dir().join(format!("vgg-check-{}-{index}.json", std::process::id()));
        let mut args: Vec<String> = vec![
            "check".into(),
            "--adapter".into(),
            index.to_string(),
            "--seed".into(),
            seed.to_string(),
            "--json".into(),
            file.display().to_string(),
            "--slow".into(),
            self.slow.to_string(),
            "--case-timeout".into(),
            self.case_timeout.to_string(),
            "--memory-cap".into(),
            (bounds.memory >> 20).to_string(),
        ];
        let flag = |on: bool, name: &str| on.then(|| name.to_string());
        args.extend(flag(self.full, "--full"));
        args.extend(flag(self.standard, "--standard"));
        args.extend(flag(self.no_determinism, "--no-determinism"));
        args.extend(flag(self.gpu.bounds_checks, "--bounds-checks"));
        let valued = [
            ("--op", self.op.clone()),
            ("--precision", self.precision.clone()),
            ("--backend", self.gpu.backend.clone()),
            ("--gpu-timeout", self.gpu.gpu_timeout.map(|t| t.to_string())),
        ];
        for (name, value) in valued {
            if let Some(v) = value {
                args.extend([name.to_string(), v]);
            }
        }
        let mut ar = AdapterReport::new(index, info);
        let started = Instant::now();
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                ar.message = Some(format!("cannot find this program to run the check: {e}"));
                return ar;
            }
        };
        let child = std::process::Command::new(exe)
            .args(&args)
            // Each child checks the adapter it is given; no environment may pick another.
            .env_remove("VGG_ADAPTER")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                ar.message = Some(format!("cannot start the check process: {e}"));
                return ar;
            }
        };
        let mut last = String::new();
        if let Some(out) = child.stdout.take() {
            for line in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
                // The child's own header and summary are the parent's to print.
                if line.starts_with("seed: ") || line.starts_with("== ") || line.is_empty() {
                    continue;
                }
                if line.starts_with("wrote ")
                    || line == QUICK_HINT
                    || line.starts_with("driver issue worked around: ")
                    || line.starts_with("PASSED")
                    || line.starts_with("FAILED")
                {
                    continue;
                }
                say(&line);
                last = line;
            }
        }
        let status = child.wait();
        let read = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Report>(&t).ok());
        let _ = std::fs::remove_file(&file);
        match read.and_then(|r| r.adapters.into_iter().next()) {
            Some(r) => r,
            None => {
                ar.seconds = started.elapsed().as_secs_f64();
                ar.message = Some(format!(
                    "the check process ended ({}) without a report; the last line it printed: \
                     {}",
                    match status {
                        Ok(s) => s.to_string(),
                        Err(e) => e.to_string(),
                    },
                    if last.is_empty() { "none" } else { &last }
                ));
                ar
            }
        }
    }
}

/// Runs the suite on `adapter` on a worker thread, watching each case's time and the
/// process's memory against `bounds`.
fn watched(
    adapter: wgpu::Adapter,
    mut ar: AdapterReport,
    gpu_opts: &GpuOptions,
    opts: &SuiteOptions,
    bounds: Bounds,
    say: &dyn Fn(&str),
    counted: &dyn Fn(usize, usize),
) -> Ran {
    let (tx, rx) = mpsc::channel();
    let (gpu_opts, opts, blank) = (gpu_opts.clone(), opts.clone(), ar.clone());
    let worker = std::thread::Builder::new()
        .name("check".into())
        .spawn(move || suite_thread(adapter, blank, &gpu_opts, &opts, tx));
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            ar.message = Some(format!("cannot start the check's thread: {e}"));
            return Ran {
                report: ar,
                stuck: false,
            };
        }
    };
    ar.memory_cap_bytes = Some(bounds.memory);
    let started = Instant::now();
    let (mut plan, mut outcomes) = (Vec::new(), Vec::new());
    let mut current: Option<(usize, Instant)> = None;
    let mut activity: Option<Arc<Activity>> = None;
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(100));
        let peak = vgg_wgpu::io::resident_bytes();
        ar.peak_memory_bytes = peak.map(|p| p.1);
        match msg {
            Ok(Msg::Opened(opened, a)) => {
                ar = AdapterReport {
                    memory_cap_bytes: ar.memory_cap_bytes,
                    ..*opened
                };
                activity = Some(a);
            }
            Ok(Msg::NotOpened(r)) => {
                let _ = worker.join();
                return Ran {
                    report: *r,
                    stuck: false,
                };
            }
            Ok(Msg::Plan(p)) => plan = p,
            Ok(Msg::Start(i)) => {
                counted(i, plan.len());
                current = Some((i, Instant::now()));
            }
            Ok(Msg::Result(o)) => {
                say(&o.to_string());
                outcomes.push(*o);
            }
            Ok(Msg::Done {
                skipped,
                overrides,
                workarounds,
                hung,
            }) => {
                let report = finished(
                    ar,
                    &outcomes,
                    skipped,
                    (overrides, workarounds),
                    started,
                    say,
                );
                // The thread has let go of the device; a hung one it leaked.
                let _ = worker.join();
                return Ran {
                    report,
                    stuck: hung,
                };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                ar.record(&outcomes, Vec::new(), started.elapsed().as_secs_f64());
                ar.status = Status::Failed;
                ar.message = Some("the check's thread ended without finishing".into());
                return Ran {
                    report: ar,
                    stuck: true,
                };
            }
        }
        let Some((i, since)) = current.filter(|(i, _)| *i < plan.len()) else {
            continue;
        };
        let Some(why) = past_bounds(peak.map_or(0, |p| p.0), since, &bounds) else {
            continue;
        };
        let stage = activity
            .as_ref()
            .map(|a| a.now())
            .unwrap_or((gpu::Stage::Host, String::new()));
        return Ran {
            report: stopped(ar, (&plan, i), outcomes, stage, &why, started, say),
            stuck: true,
        };
    }
}

/// The report of a suite that ran to its end: the skipped cases, the driver issues worked
/// around and the kernels replaced, each said as well.
fn finished(
    mut ar: AdapterReport,
    outcomes: &[Outcome],
    skipped: Vec<Skipped>,
    (overrides, workarounds): (Vec<String>, Vec<String>),
    started: Instant,
    say: &dyn Fn(&str),
) -> AdapterReport {
    for w in &workarounds {
        say(&format!("driver issue worked around: {w}"));
    }
    ar.workarounds = workarounds;
    for s in &skipped {
        say(&format!("{:<22} skipped: {}", s.op, s.reason));
    }
    ar.record(outcomes, skipped, started.elapsed().as_secs_f64());
    ar.peak_memory_bytes = vgg_wgpu::io::resident_bytes().map(|p| p.1);
    ar.shader_overrides = overrides;
    if !ar.shader_overrides.is_empty() {
        say(&format!(
            "kernels replaced from VGG_SHADER_DIR: {}",
            ar.shader_overrides.join(", ")
        ));
    }
    ar
}

/// Why the running case is past its bounds (resident memory `rss`, time since it
/// started), or None while it is within them.
fn past_bounds(rss: u64, since: Instant, bounds: &Bounds) -> Option<String> {
    if rss > bounds.memory {
        Some(format!(
            "the check's resident memory reached {} MiB, past the cap of {} MiB \
             (--memory-cap)",
            rss >> 20,
            bounds.memory >> 20
        ))
    } else if since.elapsed() > bounds.case {
        Some(format!(
            "no result after {:.1} s, past the bound of {} s (--case-timeout)",
            since.elapsed().as_secs_f64(),
            bounds.case.as_secs_f64()
        ))
    } else {
        None
    }
}

/// The report of a suite stopped in case `i` of `plan` for `why`: that case failed with
/// the stage the driver was in (and what it was compiling or running), every case after
/// it skipped with the reason.
fn stopped(
    mut ar: AdapterReport,
    (plan, i): (&[(String, String)], usize),
    mut outcomes: Vec<Outcome>,
    (stage, what): (gpu::Stage, String),
    why: &str,
    started: Instant,
    say: &dyn Fn(&str),
) -> AdapterReport {
    let subject = if what.is_empty() {
        String::new()
    } else {
        format!(" of {what}")
    };
    let (op, shape) = plan[i].clone();
    let stopped = format!("stopped in the {} stage{subject}: {why}", stage.name());
    let failed = Outcome::failed(&op, shape.clone(), stopped.clone());
    say(&failed.to_string());
    outcomes.push(failed);
    let left: Vec<Skipped> = plan[i + 1..]
        .iter()
        .map(|(op, shape)| Skipped {
            op: format!("{op} {shape}").trim_end().to_string(),
            reason: format!("not run: {op} {shape} was {stopped}").replace("  ", " "),
        })
        .collect();
    say(&format!(
        "{} cases left are skipped: the driver is still inside {op} {shape}",
        left.len()
    ));
    ar.record(&outcomes, left, started.elapsed().as_secs_f64());
    ar.stopped = Some(format!("{op} {shape}: {stopped}"));
    ar
}

/// The suite's side: opens the device, runs the cases, tells `tx` as it goes.
fn suite_thread(
    adapter: wgpu::Adapter,
    mut ar: AdapterReport,
    gpu_opts: &GpuOptions,
    opts: &SuiteOptions,
    tx: mpsc::Sender<Msg>,
) {
    let gpu = match Gpu::open(adapter, gpu_opts) {
        Err(vgg_wgpu::Error::Unsupported(m)) => {
            ar.status = Status::Unsupported;
            ar.message = Some(m);
            let _ = tx.send(Msg::NotOpened(Box::new(ar)));
            return;
        }
        Err(e) => {
            ar.message = Some(e.to_string());
            let _ = tx.send(Msg::NotOpened(Box::new(ar)));
            return;
        }
        Ok(g) => g,
    };
    ar.describe(&gpu);
    let _ = tx.send(Msg::Opened(Box::new(ar), gpu.activity()));
    let mut planned = false;
    let (_, skipped) = check::suite::run_counted(
        &gpu,
        opts,
        |o| {
            let _ = tx.send(Msg::Result(Box::new(o.clone())));
        },
        |i, names| {
            if !planned {
                planned = true;
                let _ = tx.send(Msg::Plan(names.to_vec()));
            }
            let _ = tx.send(Msg::Start(i));
        },
    );
    let hung = gpu.is_hung();
    let overrides = gpu.shader_overrides_used();
    let workarounds = AdapterReport::workarounds_of(&gpu);
    if hung {
        // Dropping the device waits for work that never ends.
        std::mem::forget(gpu);
    } else {
        // Before the watcher hears of the end: it may then drop the instance and exit.
        drop(gpu);
    }
    let _ = tx.send(Msg::Done {
        skipped,
        overrides,
        workarounds,
        hung,
    });
}

/// Half the host's memory, at most 8 GiB: far above what the suite needs on any driver
/// measured (about 1.3 GiB at most, `--full` included), far below what takes a machine down.
fn default_cap() -> u64 {
    vgg_wgpu::io::memory_total()
        .map(|t| t / 2)
        .unwrap_or(u64::MAX)
        .min(8 << 30)
}

/// Ends the process now, its output flushed, without running exit handlers or destructors
/// (a driver's would wait on the call it is stuck in).
fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process without touching Rust state; nothing runs after it.
    unsafe { libc::_exit(code) }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
