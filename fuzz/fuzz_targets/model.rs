//! The model-string parser and the shape arithmetic behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = vgg_wgpu::Model::parse(&String::from_utf8_lossy(data)) {
        let _ = (m.params(), m.macs(), m.with_input(3, 64, 64));
    }
});
