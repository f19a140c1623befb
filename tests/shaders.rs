//! Kernels that no CI adapter can run (cooperative matrices need a GPU with tensor cores)
//! still parse, validate and compile to SPIR-V here, with the capabilities they need,
//! through naga: the compiler wgpu runs on them at pipeline creation.

use vgg_wgpu::gpu::{builtin_wgsl, Precision, Shader};

fn check(shader: Shader, overrides: &[(&str, f64)]) {
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    let src = builtin_wgsl(&shader).unwrap();
    let module = naga::front::wgsl::parse_str(&src)
        .unwrap_or_else(|e| panic!("{}: {}", shader.name, e.emit_to_string(&src)));
    let caps = Capabilities::COOPERATIVE_MATRIX
        | Capabilities::SHADER_FLOAT16
        | Capabilities::SUBGROUP
        | Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", shader.name, e.emit_to_string(&src)));
    let constants: naga::back::PipelineConstants =
        overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
            .unwrap_or_else(|e| panic!("{}: {e}", shader.name));
    let opts = naga::back::spv::Options::default();
    naga::back::spv::write_vec(&module, &info, &opts, None)
        .unwrap_or_else(|e| panic!("{}: {e}", shader.name));
}

#[test]
fn cooperative_matrix_kernels_validate_and_compile() {
    let shader = Shader {
        name: "conv/forward/coop",
        source: include_str!("../shaders/conv/forward/coop.wgsl"),
        precision: Precision::F32,
    };
    let consts = [
        ("N", 2.0),
        ("C_IN", 3.0),
        ("C_OUT", 64.0),
        ("H", 9.0),
        ("W", 7.0),
        ("K_PAD", 32.0),
        ("WG", 128.0),
    ];
    for p in [Precision::F32, Precision::F16] {
        check(shader.with_precision(p), &consts);
    }
    let fc = Shader {
        name: "linear/coop",
        source: include_str!("../shaders/linear/coop.wgsl"),
        precision: Precision::F32,
    };
    let consts = [
        ("M", 33.0),
        ("K", 70.0),
        ("N_OUT", 90.0),
        ("ROW0", 0.0),
        ("ROWS", 90.0),
        ("WG", 128.0),
    ];
    for p in [Precision::F32, Precision::F16] {
        check(fc.with_precision(p), &consts);
    }
    // f16 training's weight gradient (f32 tensors), split in chunks and not.
    let wgrad = Shader {
        name: "conv/backward_weight/coop",
        source: include_str!("../shaders/conv/backward_weight/coop.wgsl"),
        precision: Precision::F32,
    };
    for (chunks, accumulate) in [(3.0, 0.0), (1.0, 1.0)] {
        let consts = [
            ("N", 2.0),
            ("C_IN", 3.0),
            ("C_OUT", 70.0),
            ("H", 9.0),
            ("W", 7.0),
            ("CHUNKS", chunks),
            ("QC", 48.0),
            ("ACCUMULATE", accumulate),
            ("WG", 128.0),
        ];
        check(wgrad, &consts);
    }
}
