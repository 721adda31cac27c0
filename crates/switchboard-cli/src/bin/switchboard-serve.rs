//! `switchboard-serve`: `switchboard serve` without the rest of the CLI.
//!
//! `switchboard serve ...` becomes this program when it is installed beside `switchboard` (see
//! `switchboard_cli::serve`). It links the server kit, the three servers and their storage,
//! and none of the host side, so an idle server holds a fraction of the memory. A command line
//! it does not take goes back to `switchboard serve`, which answers it in-process.

use std::process::ExitCode;

use clap::Parser as _;
use switchboard_cli::serve::{ServeCommand, back_to_cli, init_logs, serve};

fn main() -> ExitCode {
    let command = match ServeCommand::try_parse() {
        Ok(command) => command,
        Err(error) => {
            // A global flag of the CLI, --help, or a mistake: the CLI's own answer.
            back_to_cli(std::env::args_os().skip(1));
            error.exit()
        }
    };
    init_logs(command.verbose);
    // A stdio server is one connection: a single-threaded runtime avoids cross-thread
    // wake-ups on every message.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return report(&format!("cannot start the async runtime: {error}"), 1),
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = serve(command.args) => outcome.map_err(|e| (e.to_string(), e.exit_code())),
            _ = tokio::signal::ctrl_c() => Err(("interrupted".to_owned(), switchboard_cli::exit::INTERRUPTED)),
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => report(&message, code),
    }
}

/// Errors go to stderr, as `switchboard`'s do: stdout belongs to the protocol.
fn report(message: &str, code: u8) -> ExitCode {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "switchboard: {message}");
    ExitCode::from(code)
}
