//! The flags of the subcommands (`setup`, `previews prune`): `--flag value`, `--flag=value` and
//! switches, read in one pass with every problem collected, so a command says all of them at once.

use std::ffi::OsString;

/// What a command line gave.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    given: Vec<(String, String)>,
    switches: Vec<String>,
    /// `--help` or `-h` was given.
    pub(crate) help: bool,
    /// Unknown flags and flags without their value.
    pub(crate) errors: Vec<String>,
}

/// Reads `args`: `valued` flags take a value, `switches` none; anything else is an error naming
/// `command`'s help.
pub(crate) fn scan(args: &[OsString], valued: &[&str], switches: &[&str], command: &str) -> Flags {
    let mut flags = Flags::default();
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            "--help" | "-h" => flags.help = true,
            f if switches.contains(&f) => flags.switches.push(flag),
            f if valued.contains(&f) => match inline.or_else(|| it.next()) {
                Some(value) => flags.given.push((flag, value.trim().to_string())),
                None => flags.errors.push(format!("{flag} needs a value")),
            },
            _ => flags.errors.push(format!("unknown flag `{flag}`: see `ecs-deploy-action {command} --help`")),
        }
    }
    flags
}

impl Flags {
    /// The last value given for `name`, unless blank.
    pub(crate) fn value(&self, name: &str) -> Option<String> {
        self.given.iter().rev().find(|(f, _)| f == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    }

    pub(crate) fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_inline_or_next_the_last_wins_and_problems_are_collected() {
        let args: Vec<OsString> =
            ["--a", "1", "--a=2", "--on", "--b", " ", "--nope", "--a"].iter().map(OsString::from).collect();
        let f = scan(&args, &["--a", "--b"], &["--on"], "cmd");
        assert_eq!((f.value("--a"), f.value("--b"), f.switch("--on"), f.help), (Some("2".into()), None, true, false));
        assert_eq!(f.errors, ["unknown flag `--nope`: see `ecs-deploy-action cmd --help`", "--a needs a value"]);
    }
}
