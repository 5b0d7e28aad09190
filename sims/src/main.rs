//! The `faultline` command line over the built-in scenarios (see
//! `faultline_sims::cli`; `faultline --help` lists the commands, exit
//! codes, environment variables and files).

fn main() -> std::process::ExitCode {
    faultline_sims::cli::main_with(faultline_sims::registry())
}
