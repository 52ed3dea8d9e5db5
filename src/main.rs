use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = pe::cli::Cli::parse();
    std::process::ExitCode::from(pe::run(cli))
}
