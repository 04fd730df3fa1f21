use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Everything rayo writes (the store, tokens, backups) is for the service user alone.
    rayo::data_dir::restrict_umask();
    // `.env` fills in what the real environment does not set.
    let _ = dotenvy::dotenv();
    let cli = rayo::cli::Cli::parse();
    match actix_web::rt::System::new().block_on(rayo::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rayo: {}", rayo::cli::printable(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
