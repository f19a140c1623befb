//! Writes the SPIR-V that naga (the compiler wgpu runs at pipeline creation) makes of one
//! built-in kernel with its override constants, for feeding a driver directly: the input of
//! a driver bug report's reproducer (tools/swiftshader_wgrad/).
//!
//! `cargo run --release --example spirv -- conv/wgrad OUT.spv N=1 C_IN=8 ...`

use vgg_wgpu::gpu::{builtin_wgsl, Precision, Shader};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, out, overrides @ ..] = args.as_slice() else {
        return Err("usage: spirv SHADER OUT.spv [NAME=VALUE ...]".into());
    };
    let path = format!("{}/shaders/{name}.wgsl", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let shader = Shader {
        name: Box::leak(name.clone().into_boxed_str()),
        source: Box::leak(source.into_boxed_str()),
        precision: Precision::F32,
    };
    let src = builtin_wgsl(&shader).map_err(|e| e.to_string())?;
    let module = naga::front::wgsl::parse_str(&src).map_err(|e| e.emit_to_string(&src))?;
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .map_err(|e| e.emit_to_string(&src))?;
    let mut constants = naga::back::PipelineConstants::default();
    for o in overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or(format!("'{o}' is not NAME=VALUE"))?;
        let v: f64 = v.parse().map_err(|_| format!("'{v}' is not a number"))?;
        constants.insert(k.to_string(), v);
    }
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
            .map_err(|e| e.to_string())?;
    // As wgpu's Vulkan backend writes it for this engine: SPIR-V 1.3 at most on Vulkan 1.1,
    // no runtime bounds checks (the engine's kernels are built unchecked).
    let mut opts = naga::back::spv::Options {
        lang_version: (1, 3),
        ..Default::default()
    };
    opts.bounds_check_policies = naga::proc::BoundsCheckPolicies {
        index: naga::proc::BoundsCheckPolicy::Unchecked,
        buffer: naga::proc::BoundsCheckPolicy::Unchecked,
        image_load: naga::proc::BoundsCheckPolicy::Unchecked,
        binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
    };
    let words =
        naga::back::spv::write_vec(&module, &info, &opts, None).map_err(|e| e.to_string())?;
    std::fs::write(out, bytemuck_words(&words)).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("wrote {out}: {} words", words.len());
    Ok(())
}

fn bytemuck_words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
