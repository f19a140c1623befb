//! What WebGPU tells a page about its adapter that wgpu leaves out: wgpu's browser backend
//! fills only the adapter's description, which Chromium leaves empty, so the adapter would
//! go unnamed in reports and the driver-issue table (`DRIVER_ISSUES`, matched on the name
//! and driver) could not know SwiftShader underneath. `GPUAdapterInfo`'s vendor and
//! architecture ("google", "swiftshader") name it.

use wasm_bindgen::{JsCast, JsValue};

/// `info` with the browser's vendor in `driver`, its architecture in `driver_info`, and a
/// name from them where the description is empty. On any failure `info` comes back as it was:
/// the names only label the adapter.
pub(super) async fn adapter_info(mut info: wgpu::AdapterInfo) -> wgpu::AdapterInfo {
    if let Ok((vendor, architecture, description)) = browser_info().await {
        if info.name.is_empty() {
            info.name = match description.is_empty() {
                true => format!("{vendor} {architecture}").trim().to_string(),
                false => description,
            };
        }
        info.driver = vendor;
        info.driver_info = architecture;
    }
    info
}

/// (vendor, architecture, description) of `navigator.gpu.requestAdapter()`'s adapter, the
/// one wgpu requested (a page has one; the high-performance preference as wgpu asked).
async fn browser_info() -> Result<(String, String, String), JsValue> {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k));
    let gpu = get(&get(&js_sys::global().into(), "navigator")?, "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into()?;
    let options = js_sys::Object::new();
    js_sys::Reflect::set(
        &options,
        &"powerPreference".into(),
        &"high-performance".into(),
    )?;
    let promise: js_sys::Promise = request.call1(&gpu, &options)?.dyn_into()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await?;
    let info = get(&adapter, "info")?;
    let text = |k: &str| get(&info, k).map(|v| v.as_string().unwrap_or_default());
    Ok((text("vendor")?, text("architecture")?, text("description")?))
}
