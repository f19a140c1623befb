//! `vgg`: the command-line front end. Parses, dispatches to the command's module under
//! src/cli/, prints the error.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::output::default_sigpipe();
    let code = match cli::Cli::parse().command.run() {
        Ok(code) => code,
        Err(e) => {
            cli::output::stderr(format_args!("error: {e}"), true);
            ExitCode::FAILURE
        }
    };
    if cli::output::stderr_failed() {
        return ExitCode::FAILURE;
    }
    code
}
