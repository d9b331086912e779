//! The action's entry point: run it with the process's arguments and environment, exit with its status.

fn main() -> std::process::ExitCode {
    ecs_deploy_action::main()
}
