//! `megaqa`: extractive question answering with Megatron-BERT / BERT checkpoints.
//! Results go to stdout, progress and notes to stderr; errors are one line and a
//! non-zero exit.

mod args;
mod ask;
mod bench;
mod convert;
mod docs;
mod evaluate;
mod index;
mod parity;
mod predict;
mod shared;
mod train;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A panic is a bug, but the user still gets one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error: {msg} (please report this)");
    }));
    quiet_vulkan_loader();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // A usage error, in one line like every other error; `--help` has the rest.
            let text = e.render().to_string();
            let said: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see --help)", one_line(&said.join(" ")));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        args::Command::Ask(a) => ask::run(a),
        args::Command::Index(a) => index::run(a),
        args::Command::Predict(a) => predict::run(a),
        args::Command::Evaluate(a) => evaluate::run(a),
        args::Command::Parity(a) => parity::run(a),
        args::Command::Convert(a) => convert::run(a),
        args::Command::Bench(a) => bench::run(a),
        args::Command::Train(a) => train::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// An error message as one safe terminal line: control characters (newlines, escape
/// sequences, bells) from a hostile file's bytes are written escaped, and a message
/// quoting a lot of file content is cut.
fn one_line(message: &str) -> String {
    const MAX_CHARS: usize = 600;
    let mut out = String::new();
    for (i, c) in message.chars().enumerate() {
        if i == MAX_CHARS {
            out.push_str("… (cut)");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set" (once
/// per driver) when megaqa probes for a GPU in a container, an SSH session or CI.
/// Give them a private runtime directory, so the probe is quiet.
fn quiet_vulkan_loader() {
    let set =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if set {
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("megaqa-runtime-{user}"));
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
