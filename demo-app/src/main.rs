//! The demo app's entry point: read the knobs from the environment, then serve until SIGTERM.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("migrate") {
        return migrate(&args[1..]);
    }
    let settings = match demo_app::Settings::from_env(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("demo-app: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(code) = settings.crash_on_start {
        // What a release that cannot start looks like: a few lines of its own, then an exit. All on
        // stderr: the engine copies stdout and stderr separately, so lines split across the two
        // can reach the log out of order (the fatal line before the ones it followed).
        eprintln!("demo-app {} starting", settings.version);
        eprintln!("demo-app: connecting to the database");
        if std::env::var("PRINT_ENV_ON_CRASH").is_ok_and(|v| !v.is_empty()) {
            // What a careless app does when it dies: prints its whole configuration, secrets too.
            let mut all: Vec<(String, String)> = std::env::vars().collect();
            all.sort();
            for (name, value) in all {
                eprintln!("demo-app: config {name}={value}");
            }
        }
        eprintln!("demo-app: fatal: CRASH_ON_START={code}, exiting with code {code}");
        return ExitCode::from(code);
    }
    // Written, not only reserved: the pages count against the container's memory at once.
    let held = vec![1u8; settings.allocate_mb * 1024 * 1024];
    if !held.is_empty() {
        println!("demo-app: holding {} MiB", settings.allocate_mb);
    }
    match rocket::execute(demo_app::rocket(settings).launch()) {
        Ok(_) => {
            drop(held);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("demo-app: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `demo-app migrate [--exit N] [--sleep SECONDS] [--graceful]`: what a database migration run
/// before a deploy looks like (a few lines, a pause, an exit code), for the pre-deploy task's examples
/// and tests. `--graceful`: SIGTERM during the pause ends it with exit 0, as many tools do when asked
/// to stop, although the migration did not finish.
fn migrate(args: &[String]) -> ExitCode {
    let value = |flag: &str| {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|v| v.parse::<u64>().ok())
    };
    let code = value("--exit").unwrap_or(0).min(255) as u8;
    println!("demo-app migrate: applying 2 migrations");
    let pause = std::time::Duration::from_secs(value("--sleep").unwrap_or(0));
    if args.iter().any(|a| a == "--graceful") {
        if paused_until_sigterm(pause) {
            println!("demo-app migrate: SIGTERM, stopping before 0001_init finished");
            return ExitCode::SUCCESS;
        }
    } else {
        std::thread::sleep(pause);
    }
    println!("demo-app migrate: applied 0001_init");
    if code == 0 {
        println!("demo-app migrate: applied 0002_orders; done");
    } else {
        eprintln!("demo-app migrate: 0002_orders failed: relation \"orders\" already exists (exit {code})");
    }
    ExitCode::from(code)
}

/// Sleeps `pause`; true when SIGTERM came first.
fn paused_until_sigterm(pause: std::time::Duration) -> bool {
    use rocket::tokio;
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        std::thread::sleep(pause);
        return false;
    };
    runtime.block_on(async {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            tokio::time::sleep(pause).await;
            return false;
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => false,
            _ = term.recv() => true,
        }
    })
}
