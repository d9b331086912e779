//! The action's entry point: run it with the process's arguments and environment, exit with its status.

use std::process::ExitCode;

use ecs_deploy_action::gha::Gha;

fn main() -> ExitCode {
    let var = |name: &str| std::env::var(name).ok();
    let gha = Gha::from_env(var);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            gha.error("Could not start", &format!("cannot create the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let status = runtime.block_on(ecs_deploy_action::run(std::env::args_os().collect(), var, &gha));
    ExitCode::from(status as u8)
}
