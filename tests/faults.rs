//! Faults surface as errors naming the op, never as panics or hangs: a kernel that does not
//! compile, a lost device, a wait that passes the timeout, an adapter without compute.

mod common;
use common::{gpu, on_each_gpu, seed};
use pollster::block_on;
use std::time::Duration;
use vgg_wgpu::kernels::conv::ConvShape;
use vgg_wgpu::{check, Gpu, GpuOptions};

fn reopen(opts: GpuOptions) -> Gpu {
    Gpu::open(gpu().adapter().clone(), &opts).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_kernel_that_does_not_compile_is_an_error_naming_it() {
    on_each_gpu(|| {
        let dir = std::env::temp_dir().join(format!("vgg-faults-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pool")).unwrap();
        std::fs::write(dir.join("pool/forward.wgsl"), "this is not WGSL").unwrap();
        let g = reopen(GpuOptions {
            shader_dir: Some(dir.clone()),
            ..Default::default()
        });
        let e = match block_on(check::pool::forward(&g, (1, 2, 4, 4), false, seed())) {
            Ok(o) => panic!("a broken kernel ran: {o}"),
            Err(e) => e.to_string(),
        };
        eprintln!("{e}");
        assert!(e.contains("pool/forward"), "{e}");
        assert_eq!(g.shader_overrides_used(), vec!["pool/forward".to_string()]);
        // The device is still usable for other kernels.
        let o = block_on(check::softmax::forward(&g, 2, 10, seed())).unwrap();
        assert!(o.passed(), "{o}");
        std::fs::remove_dir_all(&dir).ok();
    });
}

#[test]
fn a_lost_device_is_an_error_naming_the_op() {
    on_each_gpu(|| {
        let g = reopen(GpuOptions::default());
        g.device.destroy();
        let e = match block_on(check::softmax::forward(&g, 2, 10, seed())) {
            Ok(o) => panic!("ran on a destroyed device: {o}"),
            Err(e) => e.to_string(),
        };
        eprintln!("{e}");
        assert!(e.contains("GPU error in ") || e.contains("lost"), "{e}");
    });
}

#[test]
fn a_wait_past_the_timeout_is_an_error_not_a_hang() {
    on_each_gpu(|| {
        // A convolution of ~2 GFLOP takes far more than a microsecond on any adapter.
        let g = reopen(GpuOptions {
            timeout: Some(Duration::from_micros(1)),
            ..Default::default()
        });
        let s = ConvShape::new(4, 64, 64, 56, 56, 3);
        match block_on(check::conv::forward(&g, s, true, None, seed())) {
            Err(e) => {
                let e = e.to_string();
                eprintln!("{e}");
                assert!(e.contains("did not finish within"), "{e}");
            }
            // llvmpipe's OpenGL runs the work before the submit returns: there is no
            // wait to time out.
            Ok(o) if g.info().backend == wgpu::Backend::Gl => {
                eprintln!("{}: the work was done at submit: {o}", g.describe())
            }
            Ok(o) => panic!("a 1 us timeout did not fire: {o}"),
        }
    });
}

#[test]
fn every_adapter_either_opens_or_says_why_not() {
    for a in vgg_wgpu::gpu::enumerate(wgpu::Backends::all()) {
        match Gpu::open(a, &GpuOptions::default()) {
            Ok(g) => eprintln!("opens: {}", g.describe()),
            Err(vgg_wgpu::Error::Unsupported(m)) => eprintln!("unsupported: {m}"),
            Err(e) => panic!("{e}"),
        }
    }
}
