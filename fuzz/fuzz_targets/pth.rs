//! PyTorch `torch.save` files (zip and legacy): the pickle machine and the storage reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = vgg_wgpu::io::pth::read_pth(data, Path::new("fuzz.pth"));
});
