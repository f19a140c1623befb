//! The engine in a browser page: wasm-bindgen exports over the library's asynchronous API
//! (`Gpu::new_async`, `Network::forward_async`, `check::suite::run_async`), which the page
//! (web/index.html) awaits.

use std::cell::{Cell, RefCell};
use std::path::Path;
use vgg_wgpu::check::report::{AdapterReport, Report, Row};
use vgg_wgpu::check::suite::{run_async, Scope, SuiteOptions};
use vgg_wgpu::graph::PROB;
use vgg_wgpu::io::datasets::{mnist_5k, Dataset};
use vgg_wgpu::io::image::{decode_bytes, Preprocess};
use vgg_wgpu::io::weights::Opened;
use vgg_wgpu::model::card::{Preprocessing, Preset};
use vgg_wgpu::{Gpu, Model, Network, Tensor};
use wasm_bindgen::prelude::*;

/// A panic's message on the page's console (a wasm panic alone says only "unreachable").
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&format!("vgg-wgpu panicked: {info}")));
    }));
}

fn js(e: vgg_wgpu::Error) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// The top class of each row of `logits` ([n, classes]).
fn top1(logits: &Tensor) -> Vec<usize> {
    (0..logits.shape[0])
        .map(|i| vgg_wgpu::io::labels::top_k(logits.row(i), 1)[0].0)
        .collect()
}

/// Images `rows` of `set` as a [n, 1, 28, 28] batch.
fn batch(set: &Dataset, rows: &[usize]) -> Result<(Tensor, Vec<u32>), JsValue> {
    let s = set.select(rows);
    let x = Tensor::new(vec![rows.len(), 1, 28, 28], s.images).map_err(js)?;
    Ok((x, s.labels))
}

/// `vgg demo` in the page: the digit model this engine trained, on eight of the bundled
/// held-out digits and then all 1000 of them, on the page's WebGPU adapter. Returns JSON:
/// `{"adapter", "predictions": [{"digit", "label", "predicted"}], "correct", "of", "ms"}`.
#[wasm_bindgen]
pub async fn demo() -> Result<String, JsValue> {
    let gpu = Gpu::new_async(&Default::default()).await.map_err(js)?;
    let model = vgg_wgpu::train::mnist_model().map_err(js)?;
    let weights = vgg_wgpu::train::demo_weights().map_err(js)?;
    let (_, test) = mnist_5k().and_then(|d| d.split(1000)).map_err(js)?;
    let started = js_sys::Date::now();
    let mut net = Network::new(&gpu, &model, &weights).map_err(js)?;
    // Eight digits spread over the held-out set (it is in class order), as `vgg demo`.
    let picks: Vec<usize> = (0..8).map(|i| i * 125 + 7).collect();
    let (x, labels) = batch(&test, &picks)?;
    let predicted = top1(&net.forward_async(&x).await.map_err(js)?);
    let predictions: Vec<_> = picks
        .iter()
        .zip(labels.iter().zip(&predicted))
        .map(|(d, (l, p))| serde_json::json!({"digit": d, "label": l, "predicted": p}))
        .collect();
    let mut correct = 0;
    for start in (0..test.len()).step_by(100) {
        let rows: Vec<usize> = (start..(start + 100).min(test.len())).collect();
        let (x, labels) = batch(&test, &rows)?;
        let got = top1(&net.forward_async(&x).await.map_err(js)?);
        correct += got
            .iter()
            .zip(&labels)
            .filter(|(p, l)| **p == **l as usize)
            .count();
    }
    Ok(serde_json::json!({
        "adapter": gpu.describe(),
        "predictions": predictions,
        "correct": correct,
        "of": test.len(),
        "ms": js_sys::Date::now() - started,
    })
    .to_string())
}

/// `vgg check` in the page: the conformance suite's `scope` ("quick", "standard" or
/// "full") on the page's WebGPU adapter, each case against the CPU reference compiled into
/// this module and run twice for determinism, with `seed` as `vgg check --seed` and `only`
/// as `vgg check --op` (the cases whose name starts with it). Calls
/// `progress(done, total, row)` as each case starts (row null) and as each result comes
/// (row: its row of the report, as JSON). Returns the JSON report `vgg check --json`
/// writes.
#[wasm_bindgen]
pub async fn check(
    scope: String,
    seed: u32,
    only: Option<String>,
    progress: js_sys::Function,
) -> Result<String, JsValue> {
    let scope = match scope.as_str() {
        "quick" => Scope::Quick,
        "standard" => Scope::Standard,
        "full" => Scope::Full,
        s => return Err(format!("no scope {s:?}: quick, standard or full").into()),
    };
    let gpu = Gpu::new_async(&Default::default()).await.map_err(js)?;
    let opts = SuiteOptions {
        seed: seed.into(),
        scope,
        only,
        ..Default::default()
    };
    let mut adapter = AdapterReport::new(0, gpu.info());
    adapter.describe(&gpu);
    let say = |done: usize, total: usize, row: JsValue| {
        let args = [done.into(), total.into(), row];
        // A page's progress display failing is no reason to stop the suite.
        let _ = progress.apply(&JsValue::NULL, &args.iter().collect());
    };
    let total = std::cell::Cell::new(0);
    let done = std::cell::Cell::new(0);
    let started = js_sys::Date::now();
    let (outcomes, skipped) = run_async(
        &gpu,
        &opts,
        |o| {
            let row = serde_json::to_string(&Row::from(o)).unwrap_or_default();
            say(done.get(), total.get(), row.into())
        },
        |i, names| {
            done.set(i);
            total.set(names.len());
            say(i, names.len(), JsValue::NULL);
        },
    )
    .await;
    adapter.workarounds = AdapterReport::workarounds_of(&gpu);
    adapter.record(&outcomes, skipped, (js_sys::Date::now() - started) / 1000.0);
    let mut report = Report::new(opts.seed, scope, opts.determinism);
    report.adapters.push(adapter);
    Ok(report.json())
}

/// The page's one device, opened on first use and kept for the page's life (a `Network`
/// borrows its device, and the page's models outlive any one call).
async fn page_gpu() -> Result<&'static Gpu, JsValue> {
    thread_local! {
        static GPU: Cell<Option<&'static Gpu>> = const { Cell::new(None) };
    }
    if let Some(g) = GPU.get() {
        return Ok(g);
    }
    let g: &'static Gpu = Box::leak(Box::new(
        Gpu::new_async(&Default::default()).await.map_err(js)?,
    ));
    GPU.set(Some(g));
    Ok(g)
}

/// A model loaded for `classify`: its network on the page's device, how its images are
/// prepared, and its class names.
struct Classifier {
    net: Network<'static>,
    pre: Preprocess,
    labels: Vec<String>,
}

thread_local! {
    /// The model `classify` runs (taken out while an image runs, so a second call meanwhile
    /// is an error, not a double borrow).
    static LOADED: RefCell<Option<Classifier>> = const { RefCell::new(None) };
}

/// Loads the weights file `bytes` (named `name`: safetensors, .pth or ONNX, read as `vgg
/// infer` reads them, the model, preprocessing and class names from the file) for
/// `classify`; with no bytes, the digit model this engine trained (`vgg demo`'s). Returns
/// JSON: `{"model", "classes", "input", "preprocessing", "adapter"}`.
#[wasm_bindgen]
pub async fn load_model(bytes: Vec<u8>, name: String) -> Result<String, JsValue> {
    let gpu = page_gpu().await?;
    let (model, weights, pre, labels) = if bytes.is_empty() {
        let model = vgg_wgpu::train::mnist_model().map_err(js)?;
        let weights = vgg_wgpu::train::demo_weights().map_err(js)?;
        // The digits are 28x28 gray in [0, 1], white on black.
        let unit = Preprocessing {
            preset: Preset::Unit,
            resize: 28,
            crop: 28,
        };
        let labels = (0..10).map(|d| d.to_string()).collect();
        (model, weights, unit, labels)
    } else {
        let opened = Opened::from_bytes(bytes, Path::new(&name)).map_err(js)?;
        let card = opened.card().cloned().ok_or_else(|| {
            JsValue::from_str(&format!(
                "{name} does not say which model it holds (a state dict of a custom net): \
                 `vgg convert --model ...` writes a file that does"
            ))
        })?;
        let model = card.model().map_err(js)?;
        let weights = opened.load(&model).map_err(js)?;
        (model, weights, card.preprocessing, card.classes)
    };
    let [c, h, w] = model.input_dims();
    let describe = serde_json::json!({
        "model": model.name(),
        "classes": model.classes(),
        "input": format!("{c}x{h}x{w}"),
        "preprocessing": format!(
            "{}, resize {}, crop {}",
            pre.preset.name(),
            pre.resize,
            pre.crop
        ),
        "adapter": gpu.describe(),
    });
    let net = Network::new(gpu, &model, &weights).map_err(js)?;
    let pre = Preprocess::from_card(&pre, c);
    LOADED.set(Some(Classifier { net, pre, labels }));
    Ok(describe.to_string())
}

/// The image file `bytes` (JPEG or PNG, named `name`) through the loaded model, prepared as
/// `vgg infer` prepares it: JSON `{"top": [{"label", "class", "probability"}], "ms"}`, the
/// five likeliest classes (fewer where the model has fewer).
#[wasm_bindgen]
pub async fn classify(bytes: Vec<u8>, name: String) -> Result<String, JsValue> {
    let mut loaded = LOADED
        .take()
        .ok_or("no model loaded, or an image is still running: await load_model, then one classify at a time")?;
    let result = run_image(&mut loaded, &bytes, &name).await;
    LOADED.set(Some(loaded));
    result
}

async fn run_image(m: &mut Classifier, bytes: &[u8], name: &str) -> Result<String, JsValue> {
    let started = js_sys::Date::now();
    let img =
        decode_bytes(bytes, Path::new(name), m.pre.max_pixels, Some(m.pre.resize)).map_err(js)?;
    let data = m.pre.apply(&img).map_err(js)?;
    let [c, h, w] = m.net.model().input_dims();
    let x = Tensor::new(vec![1, c, h, w], data).map_err(js)?;
    let probs = m.net.forward_features_async(&x, PROB).await.map_err(js)?;
    let top: Vec<_> = vgg_wgpu::io::labels::top_k(probs.row(0), 5)
        .into_iter()
        .map(|(i, p)| serde_json::json!({"label": m.labels[i], "class": i, "probability": p}))
        .collect();
    Ok(serde_json::json!({"top": top, "ms": js_sys::Date::now() - started}).to_string())
}

/// `vgg bench --quick` in the page: the adapter's FMA and copy peaks, VGG16's kernels at
/// 32x32 (each layer shape, default variants, batch 1) beside the CPU reference compiled
/// into this module, VGG16 end to end at batch 1 and 2 and a training step at batch 2, on a
/// device of its own. Calls `progress(line)` per finished row. Returns JSON: `{"report"`: the report `vgg bench --json` writes, `"table"`: its
/// table as `vgg bench` prints it`}`.
#[wasm_bindgen]
pub async fn bench(progress: js_sys::Function) -> Result<String, JsValue> {
    let gpu = Gpu::new_async(&Default::default()).await.map_err(js)?;
    let o = vgg_wgpu::bench::suite::default_options(Model::vgg16(), true).map_err(js)?;
    let report = vgg_wgpu::bench::run_async(&gpu, &o, |line| {
        // A page's progress display failing is no reason to stop the benchmark.
        let _ = progress.call1(&JsValue::NULL, &line.into());
    })
    .await
    .map_err(js)?;
    let json = serde_json::to_value(&report).map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(serde_json::json!({"report": json, "table": report.table()}).to_string())
}

/// The Markdown `vgg check --markdown` writes, of a report `check` returned.
#[wasm_bindgen]
pub fn check_markdown(report: &str) -> Result<String, JsValue> {
    let r: Report = serde_json::from_str(report).map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(r.markdown())
}

/// VGG16 at 224x224 in the page, with seeded Kaiming weights (`vgg bench`'s): the first
/// forward of a batch (planning, allocation, pipeline compilation, the run) and a second,
/// timed alone. `max_binding_mib` caps a binding below the adapter's limit, as the
/// executor's `max_binding` does (128: WebGPU's default, which splits fc6's 392 MiB weight).
/// Returns JSON: `{"first_ms", "ms", "batch", "max_binding_bytes", "fc6_weight_bytes",
/// "adapter", "top"}`, `top` the first image's top class.
#[wasm_bindgen]
pub async fn vgg16(batch: usize, max_binding_mib: Option<u32>) -> Result<String, JsValue> {
    let gpu = page_gpu().await?;
    let model = Model::vgg16();
    let weights = vgg_wgpu::Weights::init(&model, vgg_wgpu::Init::Kaiming, 0);
    let [c, h, w] = model.input_dims();
    let data = vgg_wgpu::check::TensorRng::new(1).uniform(batch * c * h * w);
    let x = Tensor::new(vec![batch, c, h, w], data).map_err(js)?;
    let started = js_sys::Date::now();
    let max_binding = max_binding_mib.map(|m| u64::from(m) << 20);
    let opts = vgg_wgpu::NetworkOptions {
        max_binding,
        ..Default::default()
    };
    let mut net = Network::with_options(gpu, &model, &weights, opts).map_err(js)?;
    drop(weights);
    net.forward_async(&x).await.map_err(js)?;
    let first = js_sys::Date::now() - started;
    let again = js_sys::Date::now();
    let logits = net.forward_async(&x).await.map_err(js)?;
    let ms = js_sys::Date::now() - again;
    Ok(serde_json::json!({
        "first_ms": first,
        "ms": ms,
        "batch": batch,
        "max_binding_bytes": max_binding.unwrap_or(u64::MAX).min(gpu.max_binding_bytes()),
        "fc6_weight_bytes": 25088u64 * 4096 * 4,
        "adapter": gpu.describe(),
        "top": vgg_wgpu::io::labels::top_k(logits.row(0), 1).first().map(|t| t.0),
    })
    .to_string())
}
