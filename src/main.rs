//! `vgg`: the command-line front end. Parses, dispatches to the command's module under
//! src/cli/, prints the error.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::output::default_sigpipe();
    cli::output::runtime_dir();
    let code = match cli::Cli::parse().command.run() {
        Ok(code) => code,
        Err(e) => {
            cli::output::stderr(format_args!("error: {e}"), true);
            ExitCode::FAILURE
        }
    };
    let failed = code != ExitCode::SUCCESS || cli::output::stderr_failed();
    if vgg_wgpu::gpu::any_device_hung() {
        // A device whose queue never drains: the driver's teardown at exit could wait on
        // it forever. Everything is reported; leave without it.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: _exit ends the process at once; nothing after it runs.
        unsafe { libc::_exit(i32::from(failed)) }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
