//! GitHub Actions workflow commands (log groups, annotations, masks, outputs, job summary), with plain
//! logs outside Actions, and a last line of defence that redacts every masked value from our own output.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// Where log lines go: stdout in production, a buffer in tests.
pub(crate) type Sink = Arc<Mutex<dyn Write + Send>>;

/// Clones share the sink and the masks: a secret masked through one is redacted by all.
#[derive(Clone)]
pub(crate) struct Gha {
    in_actions: bool,
    sink: Sink,
    masks: Arc<Mutex<Vec<String>>>,
    output_file: Option<PathBuf>,
    summary_file: Option<PathBuf>,
}

impl Gha {
    /// Reads `GITHUB_ACTIONS`, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` through `var`; logs to stdout
    /// (where the runner reads workflow commands).
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        Self::new(
            var("GITHUB_ACTIONS").as_deref() == Some("true"),
            Arc::new(Mutex::new(io::stdout())),
            var("GITHUB_OUTPUT").filter(|p| !p.is_empty()).map(PathBuf::from),
            var("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()).map(PathBuf::from),
        )
    }

    pub(crate) fn new(
        in_actions: bool,
        sink: Sink,
        output_file: Option<PathBuf>,
        summary_file: Option<PathBuf>,
    ) -> Self {
        Gha { in_actions, sink, masks: Arc::new(Mutex::new(Vec::new())), output_file, summary_file }
    }

    /// Masks `secret` in the runner's log (every line, also other steps') and in everything we print.
    /// Call before the value could reach any output.
    pub(crate) fn mask(&self, secret: &str) {
        let secret = secret.trim();
        if secret.is_empty() {
            return;
        }
        {
            let mut masks = self.masks.lock().unwrap_or_else(PoisonError::into_inner);
            if masks.iter().any(|m| m == secret) {
                return;
            }
            masks.push(secret.to_string());
            // Longest first, so a secret that contains another is redacted whole.
            masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
        }
        if self.in_actions {
            // Multi-line values are masked line by line by the runner: register each line.
            for line in secret.lines().filter(|l| !l.trim().is_empty()) {
                self.raw(&format!("::add-mask::{}", escape_data(line)));
            }
        }
    }

    /// `text` with every masked value replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let masks = self.masks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = text.to_string();
        for m in masks.iter() {
            if text.contains(m.as_str()) {
                text = text.replace(m.as_str(), "***");
            }
        }
        text
    }

    fn raw(&self, line: &str) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        // A closed stdout must not take the deploy down with it.
        let _ = writeln!(sink, "{line}");
        let _ = sink.flush();
    }

    /// One line (or several) of plain log. A line that the runner would read as a workflow command
    /// (`::…` or `##[…`, which only text we do not control could hold: an ECS event, build output)
    /// is printed with commands stopped around it, so it shows and does nothing.
    pub(crate) fn info(&self, text: &str) {
        let text = self.redact(text);
        let (lines, commands) = runner_lines(&text);
        let _inert = commands.then(|| self.stop_commands());
        for line in lines {
            self.raw(line);
        }
    }

    /// Stops the runner from reading workflow commands in the log until the guard drops: for text
    /// we do not control (build output, container logs). The token is random, so the text cannot
    /// resume commands itself.
    pub(crate) fn stop_commands(&self) -> StopCommands<'_> {
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        if self.in_actions {
            self.raw(&format!("::stop-commands::{token}"));
        }
        StopCommands { gha: self, token }
    }

    pub(crate) fn warning(&self, text: &str) {
        self.annotate("warning", None, text);
    }

    pub(crate) fn error(&self, title: &str, text: &str) {
        self.annotate("error", Some(title), text);
    }

    /// A line for whoever debugs the run: `::debug::` in Actions (shown when the run is re-run with
    /// debug logging), nothing elsewhere.
    pub(crate) fn debug(&self, text: &str) {
        if self.in_actions {
            let text = self.redact(text);
            self.raw(&format!("::debug::{}", escape_data(&text)));
        }
    }

    /// A run's result, shown on the workflow run's summary page (`::notice`).
    pub(crate) fn notice(&self, title: &str, text: &str) {
        self.annotate("notice", Some(title), text);
    }

    fn annotate(&self, level: &str, title: Option<&str>, text: &str) {
        let text = self.redact(text);
        if self.in_actions {
            let props = title.map(|t| format!(" title={}", escape_property(&self.redact(t)))).unwrap_or_default();
            self.raw(&format!("::{level}{props}::{}", escape_data(&text)));
        } else {
            let mut lines = text.lines();
            let first = lines.next().unwrap_or_default();
            match title {
                Some(t) => self.raw(&format!("{level}: {}: {first}", self.redact(t))),
                None => self.raw(&format!("{level}: {first}")),
            }
            for line in lines {
                self.raw(&format!("  {line}"));
            }
        }
    }

    /// Opens a collapsible log group; it closes when the guard drops.
    pub(crate) fn group(&self, title: &str) -> Group<'_> {
        let title = self.redact(title);
        if self.in_actions {
            self.raw(&format!("::group::{}", escape_data(&title)));
        } else {
            self.raw(&format!("▸ {title}"));
        }
        Group { gha: self }
    }

    /// Sets a step output (`$GITHUB_OUTPUT`, multi-line safe); outside Actions, logs it.
    pub(crate) fn set_output(&self, name: &str, value: &str) -> io::Result<()> {
        let value = self.redact(value);
        match &self.output_file {
            Some(path) => {
                let entry = output_entry(name, &value);
                OpenOptions::new().create(true).append(true).open(path)?.write_all(entry.as_bytes())
            }
            None => {
                self.raw(&format!("output {name}={value}"));
                Ok(())
            }
        }
    }

    /// Appends markdown to the job summary (`$GITHUB_STEP_SUMMARY`); outside Actions there is none.
    pub(crate) fn append_summary(&self, markdown: &str) -> io::Result<()> {
        let Some(path) = &self.summary_file else { return Ok(()) };
        let mut text = self.redact(markdown);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        OpenOptions::new().create(true).append(true).open(path)?.write_all(text.as_bytes())
    }
}

pub(crate) struct StopCommands<'a> {
    gha: &'a Gha,
    token: String,
}

impl Drop for StopCommands<'_> {
    fn drop(&mut self) {
        if self.gha.in_actions {
            self.gha.raw(&format!("::{}::", self.token));
        }
    }
}

pub(crate) struct Group<'a> {
    gha: &'a Gha,
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        if self.gha.in_actions {
            self.gha.raw("::endgroup::");
        }
    }
}

/// `text` cut into the lines the runner reads (it ends a line at `\n`, `\r\n` and a bare `\r`
/// alike), and whether any of them is a workflow command: `::` at its start after spaces, or the
/// legacy `##[` form anywhere in it. Printing these lines one by one leaves no command hidden behind a
/// carriage return; with `true`, they must be printed between `::stop-commands::` and its token.
pub(crate) fn runner_lines(text: &str) -> (Vec<&str>, bool) {
    let lines: Vec<&str> = text.split("\r\n").flat_map(|l| l.split(['\n', '\r'])).collect();
    // A trailing newline is not a line of its own; empty lines within the text are kept.
    let lines = match lines.split_last() {
        Some((&"", rest)) => rest.to_vec(),
        _ => lines,
    };
    let commands = lines.iter().any(|l| l.trim_start().starts_with("::") || l.contains("##["));
    (lines, commands)
}

/// `name<<DELIM\nvalue\nDELIM\n`, the form that survives newlines in the value. The delimiter is
/// chosen so that it cannot occur in the value.
fn output_entry(name: &str, value: &str) -> String {
    let mut delimiter = String::from("ghadelimiter_ecs_deploy_action");
    let mut n = 0u32;
    while value.contains(&delimiter) {
        n += 1;
        delimiter.clear();
        let _ = write!(delimiter, "ghadelimiter_ecs_deploy_action_{n}");
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Captured {
        buf: Arc<Mutex<Vec<u8>>>,
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.buf.lock().unwrap().clone()).unwrap()
        }
    }

    fn gha(in_actions: bool) -> (Gha, Captured) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink: Sink = buf.clone();
        (Gha::new(in_actions, sink, None, None), Captured { buf })
    }

    #[test]
    fn masked_values_never_reach_a_line_except_add_mask() {
        let (gha, out) = gha(true);
        gha.mask("s3cr3t-value");
        gha.info("token is s3cr3t-value here");
        gha.warning("warn s3cr3t-value");
        gha.error("title s3cr3t-value", "err s3cr3t-value");
        let _g = gha.group("group s3cr3t-value");
        let text = out.text();
        let leaking: Vec<&str> =
            text.lines().filter(|l| l.contains("s3cr3t-value") && !l.starts_with("::add-mask::")).collect();
        assert!(leaking.is_empty(), "{leaking:?}");
        assert!(text.contains("::add-mask::s3cr3t-value"));
        assert!(text.contains("token is *** here"));
    }

    #[test]
    fn longer_secret_containing_a_shorter_one_is_redacted_whole() {
        let (gha, out) = gha(false);
        gha.mask("abc");
        gha.mask("xxabcxx");
        gha.info("v=xxabcxx");
        assert_eq!(out.text(), "v=***\n");
    }

    /// What the runner would run of `log`: its lines cut as the runner cuts them, outside any
    /// `::stop-commands::` block, that start with `::` or hold `##[`.
    fn runner_would_run(log: &str) -> Vec<String> {
        let mut stopped: Option<String> = None;
        let mut live = Vec::new();
        for line in log.split(['\n', '\r']) {
            let trimmed = line.trim_start();
            match &stopped {
                Some(token) if trimmed == format!("::{token}::") => stopped = None,
                Some(_) => {}
                None if trimmed.starts_with("::stop-commands::") => {
                    stopped = trimmed.strip_prefix("::stop-commands::").map(str::to_string)
                }
                None if trimmed.starts_with("::") || line.contains("##[") => live.push(line.to_string()),
                None => {}
            }
        }
        live
    }

    #[test]
    fn no_workflow_command_hides_behind_a_carriage_return_or_mid_line() {
        let hostile = [
            "task stopped\r::warning::pwned by a bare carriage return",
            "Essential container exited\r\n::error::pwned after CRLF",
            "exit code 1: see ##[warning]pwned in the middle of a line",
            "reason\r::add-mask::hunter2",
            "reason\r::stop-commands::attacker-token",
            "  ::set-output name=x::pwned after spaces",
        ];
        for text in hostile {
            let (gha, out) = gha(true);
            gha.info(text);
            let log = out.text();
            assert_eq!(runner_would_run(&log), Vec::<String>::new(), "{text:?} printed as {log:?}");
            assert!(!log.contains('\r'), "no carriage return reaches the log: {log:?}");
            assert!(log.contains("pwned") || log.contains("hunter2") || log.contains("attacker-token"), "{log:?}");
        }
        // Plain text stays plain: no stop-commands around it, and its lines as the runner reads them.
        let (gha, out) = gha(true);
        gha.info("step 1/2\rstep 2/2\n\nend\n");
        assert_eq!(out.text(), "step 1/2\nstep 2/2\n\nend\n");
    }

    #[test]
    fn annotations_escape_newlines_and_properties() {
        let (gha, out) = gha(true);
        gha.error("Invalid input: a,b", "line one\nline two 100%");
        assert_eq!(out.text(), "::error title=Invalid input%3A a%2Cb::line one%0Aline two 100%25\n");
    }

    #[test]
    fn outside_actions_logs_are_plain() {
        let (gha, out) = gha(false);
        gha.mask("tok");
        {
            let _g = gha.group("Plan");
            gha.warning("two\nlines");
        }
        assert_eq!(out.text(), "▸ Plan\nwarning: two\n  lines\n");
    }

    #[test]
    fn groups_close_when_dropped() {
        let (gha, out) = gha(true);
        {
            let _g = gha.group("Build");
            gha.info("step");
        }
        assert_eq!(out.text(), "::group::Build\nstep\n::endgroup::\n");
    }

    #[test]
    fn outputs_survive_multiline_values_and_delimiter_collisions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output");
        let (gha, _) = gha(true);
        let gha = Gha { output_file: Some(path.clone()), ..gha };
        gha.set_output("image-uri", "repo@sha256:abc").unwrap();
        gha.set_output("notes", "a\nghadelimiter_ecs_deploy_action\nb").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text,
            "image-uri<<ghadelimiter_ecs_deploy_action\nrepo@sha256:abc\nghadelimiter_ecs_deploy_action\n\
             notes<<ghadelimiter_ecs_deploy_action_1\na\nghadelimiter_ecs_deploy_action\nb\nghadelimiter_ecs_deploy_action_1\n"
        );
    }

    #[test]
    fn summary_is_appended_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        let (gha, _) = gha(true);
        let gha = Gha { summary_file: Some(path.clone()), ..gha };
        gha.mask("hunter2");
        gha.append_summary("# One hunter2").unwrap();
        gha.append_summary("two").unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "# One ***\ntwo\n");
    }
}
