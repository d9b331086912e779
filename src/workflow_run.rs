//! Where this run is on GitHub, from the runner's environment: the repository, the commit it runs
//! for and the one it built, the event, the run's URL. The report comments and the lease names its
//! holder from it.

#[derive(Debug, Clone, Default)]
pub(crate) struct GitHubContext {
    pub(crate) api_url: String,
    pub(crate) repository: Option<String>,
    pub(crate) sha: Option<String>,
    /// The commit the run built and deploys (`config::git::built_commit`): on `issue_comment` and
    /// `workflow_dispatch` runs it is not `GITHUB_SHA`, the default branch's head.
    pub(crate) built: Option<String>,
    pub(crate) event_name: Option<String>,
    pub(crate) event_path: Option<String>,
    pub(crate) run_url: Option<String>,
}

impl GitHubContext {
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let v = |k: &str| var(k).filter(|s| !s.is_empty());
        let run_url = match (v("GITHUB_SERVER_URL"), v("GITHUB_REPOSITORY"), v("GITHUB_RUN_ID")) {
            (Some(server), Some(repo), Some(id)) => Some(match v("GITHUB_RUN_ATTEMPT") {
                Some(attempt) if attempt != "1" => format!("{server}/{repo}/actions/runs/{id}/attempts/{attempt}"),
                _ => format!("{server}/{repo}/actions/runs/{id}"),
            }),
            _ => None,
        };
        GitHubContext {
            api_url: v("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            repository: v("GITHUB_REPOSITORY"),
            sha: v("GITHUB_SHA"),
            built: crate::config::git::built_commit(&var),
            event_name: v("GITHUB_EVENT_NAME"),
            event_path: v("GITHUB_EVENT_PATH"),
            run_url,
        }
    }
}
