//! Progress on stderr for the long commands (infer over many files, train, bench, check):
//! a bar where stderr is a terminal and the output is not JSON on stdout; elsewhere (a
//! pipe, a log file, CI) nothing but the plain lines, which then go straight to stderr.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct Progress {
    bar: Option<ProgressBar>,
}

fn shown(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

impl Progress {
    /// A bar over `len` items named `unit`; `quiet` (JSON output) hides it.
    pub fn bar(len: u64, unit: &str, quiet: bool) -> Progress {
        if !shown(quiet) {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new(len);
        let template = format!("{{bar:30}} {{pos}}/{{len}} {unit}, {{eta}} left {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        Progress { bar: Some(bar) }
    }

    /// A spinner with the time spent, for work of unknown length (a compile, a benchmark
    /// whose rows are not counted ahead). Without a terminal the message is one line.
    pub fn spinner(message: &str, quiet: bool) -> Progress {
        if !shown(quiet) {
            if !quiet {
                errln!("{message} ...");
            }
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Sets both the count done and the count in all (known only once work starts).
    pub fn set_counts(&self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(done);
        }
    }

    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    pub fn set_message(&self, message: String) {
        if let Some(b) = &self.bar {
            b.set_message(message);
        }
    }

    /// Runs `f` (which prints) with the bar taken off the screen, so lines never tear it.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    /// A line on stderr, above the bar.
    pub fn line(&self, text: &str) {
        self.suspend(|| errln!("{text}"));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error return leaves no bar half drawn above the message.
        self.finish();
    }
}
