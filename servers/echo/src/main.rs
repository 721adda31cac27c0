//! `switchboard-echo`: the echo server on stdio, as a binary of its own.
//!
//! `switchboard serve echo` serves the same [`switchboard_echo::server`] from the full CLI,
//! whose binary also carries the whole host side (HTTP clients, TLS, storage, the agent); this
//! one links only the server kit. The benchmark measures both (issue 10's idle RSS target).

use std::process::ExitCode;

fn main() -> ExitCode {
    // One thread, like `switchboard serve`: a stdio server answers one client.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report(&format!("could not start the runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(switchboard_server::serve_stdio(switchboard_echo::server())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&format!("stdio failed: {error}"));
            ExitCode::FAILURE
        }
    }
}

/// Stdout belongs to the protocol, so errors go to stderr.
fn report(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "switchboard-echo: {message}");
}
