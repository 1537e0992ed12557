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
    let cli = args::Cli::parse();
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
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
