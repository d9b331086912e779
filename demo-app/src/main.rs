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
    if let Some(code) = settings.crash_on_start {
        // What a release that cannot start looks like: a few lines of its own, then an exit.
        println!("demo-app {} starting", settings.version);
        println!("demo-app: connecting to the database");
        eprintln!("demo-app: fatal: CRASH_ON_START={code}, exiting with code {code}");
        return ExitCode::from(code);
    }
    match rocket::execute(demo_app::rocket(settings).launch()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo-app: {error}");
            ExitCode::FAILURE
        }
    }
}
