//! The `wsdump` binary: flags in, a source and a printer chosen, the pipeline run, a status
//! out. The parts are in `cli/`.

mod cli;

use clap::Parser;
use cli::args::Args;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = Args::parse();
    // tcpdump's spellings of wsdump's flags.
    args.messages |= args.quiet;
    args.line_buffered |= args.packet_buffered;
    args.hex = args.hex_count > 0 || args.hex_only > 0;
    // tshark's -f is the capture filter the trailing words give.
    if let Some(f) = args.tshark_capture_filter.take() {
        args.expression
            .extend(f.split_whitespace().map(str::to_string));
    }
    match cli::run(&args) {
        Ok(code) => code,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsdump: {e}");
            ExitCode::from(2)
        }
    }
}
