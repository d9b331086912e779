//! The demo app's entry point: read the knobs from the environment, then serve until SIGTERM.

use std::process::ExitCode;

fn main() -> ExitCode {
    let settings = match demo_app::Settings::from_env(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("demo-app: {message}");
            return ExitCode::from(2);
        }
    };
    match rocket::execute(demo_app::rocket(settings).launch()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo-app: {error}");
            ExitCode::FAILURE
        }
    }
}
