//! Proof that a task definition file comes through whole: every key the user wrote must reach the
//! RegisterTaskDefinition request this action would send (the SDK's own serializer is the schema),
//! and a value of the wrong type is found by its JSON path. Errors name the path, the line and
//! column in the file, and for an unknown key the spelling it was probably meant to have.

use serde_json::Value;

/// Fields ECS reports but never takes back: read from a describe output, not registered.
pub(crate) const DESCRIBE_ONLY: [&str; 8] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// Where a key may appear (`.` the task definition, `containerDefinitions[]` a container), for
/// suggestions only: whether a key is known is decided by the round trip through the SDK.
const KNOWN: &[(&str, &str)] = &[
    (".", "family"),
    (".", "taskRoleArn"),
    (".", "executionRoleArn"),
    (".", "networkMode"),
    (".", "containerDefinitions"),
    (".", "volumes"),
    (".", "placementConstraints"),
    (".", "requiresCompatibilities"),
    (".", "cpu"),
    (".", "memory"),
    (".", "tags"),
    (".", "pidMode"),
    (".", "ipcMode"),
    (".", "proxyConfiguration"),
    (".", "ephemeralStorage"),
    (".", "runtimePlatform"),
    (".", "enableFaultInjection"),
    ("containerDefinitions[]", "name"),
    ("containerDefinitions[]", "image"),
    ("containerDefinitions[]", "repositoryCredentials"),
    ("containerDefinitions[]", "cpu"),
    ("containerDefinitions[]", "memory"),
    ("containerDefinitions[]", "memoryReservation"),
    ("containerDefinitions[]", "links"),
    ("containerDefinitions[]", "portMappings"),
    ("containerDefinitions[]", "essential"),
    ("containerDefinitions[]", "restartPolicy"),
    ("containerDefinitions[]", "entryPoint"),
    ("containerDefinitions[]", "command"),
    ("containerDefinitions[]", "environment"),
    ("containerDefinitions[]", "environmentFiles"),
    ("containerDefinitions[]", "mountPoints"),
    ("containerDefinitions[]", "volumesFrom"),
    ("containerDefinitions[]", "linuxParameters"),
    ("containerDefinitions[]", "secrets"),
    ("containerDefinitions[]", "dependsOn"),
    ("containerDefinitions[]", "startTimeout"),
    ("containerDefinitions[]", "stopTimeout"),
    ("containerDefinitions[]", "versionConsistency"),
    ("containerDefinitions[]", "hostname"),
    ("containerDefinitions[]", "user"),
    ("containerDefinitions[]", "workingDirectory"),
    ("containerDefinitions[]", "disableNetworking"),
    ("containerDefinitions[]", "privileged"),
    ("containerDefinitions[]", "readonlyRootFilesystem"),
    ("containerDefinitions[]", "dnsServers"),
    ("containerDefinitions[]", "dnsSearchDomains"),
    ("containerDefinitions[]", "extraHosts"),
    ("containerDefinitions[]", "dockerSecurityOptions"),
    ("containerDefinitions[]", "interactive"),
    ("containerDefinitions[]", "pseudoTerminal"),
    ("containerDefinitions[]", "dockerLabels"),
    ("containerDefinitions[]", "ulimits"),
    ("containerDefinitions[]", "logConfiguration"),
    ("containerDefinitions[]", "healthCheck"),
    ("containerDefinitions[]", "systemControls"),
    ("containerDefinitions[]", "resourceRequirements"),
    ("containerDefinitions[]", "firelensConfiguration"),
    ("containerDefinitions[]", "credentialSpecs"),
    ("portMappings[]", "containerPort"),
    ("portMappings[]", "hostPort"),
    ("portMappings[]", "protocol"),
    ("portMappings[]", "name"),
    ("portMappings[]", "appProtocol"),
    ("portMappings[]", "containerPortRange"),
    ("healthCheck", "command"),
    ("healthCheck", "interval"),
    ("healthCheck", "timeout"),
    ("healthCheck", "retries"),
    ("healthCheck", "startPeriod"),
    ("logConfiguration", "logDriver"),
    ("logConfiguration", "options"),
    ("logConfiguration", "secretOptions"),
    ("environment[]", "name"),
    ("environment[]", "value"),
    ("secrets[]", "name"),
    ("secrets[]", "valueFrom"),
];

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// `containerDefinitions[0].portMappings[0].containerPort`.
pub(crate) fn show(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() { "(the top level)".into() } else { out }
}

/// Keys of `written` (the file's task definition) that `sent` (the request body) does not carry,
/// by path; describe-only fields at the top are not counted.
pub(crate) fn lost_keys(written: &Value, sent: &Value) -> Vec<Vec<Step>> {
    let mut lost = Vec::new();
    walk(written, Some(sent), &mut Vec::new(), &mut lost, true);
    lost
}

fn walk(written: &Value, sent: Option<&Value>, path: &mut Vec<Step>, lost: &mut Vec<Vec<Step>>, top: bool) {
    match written {
        Value::Object(map) => {
            for (key, value) in map {
                if top && DESCRIBE_ONLY.contains(&key.as_str()) {
                    continue;
                }
                path.push(Step::Key(key.clone()));
                match sent.and_then(|s| s.get(key)) {
                    // A null is "not set", whatever the key: nothing is lost.
                    None if !value.is_null() => lost.push(path.clone()),
                    other => walk(value, other, path, lost, false),
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(value, sent.and_then(|s| s.get(i)), path, lost, false);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The key `key` at `path` was probably meant as: a known key at that level spelled alike, or the
/// level the key belongs to.
pub(crate) fn suggest(path: &[Step], key: &str) -> Option<String> {
    let level = match path.iter().rev().find_map(|s| match s {
        Step::Key(k) => Some(k.as_str()),
        Step::Index(_) => None,
    }) {
        None => ".".to_string(),
        Some(parent) if matches!(path.last(), Some(Step::Index(_))) => format!("{parent}[]"),
        Some(parent) => parent.to_string(),
    };
    let fold = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    let here = KNOWN.iter().filter(|(l, _)| *l == level).map(|(_, k)| *k);
    if let Some(close) =
        here.filter(|k| fold(k) == fold(key) || distance(&fold(k), &fold(key)) <= 2).min_by_key(|k| distance(k, key))
    {
        return Some(format!("did you mean `{close}`?"));
    }
    let elsewhere: Vec<&str> = KNOWN.iter().filter(|(l, k)| *k == key && *l != level).map(|(l, _)| *l).collect();
    match elsewhere.first().copied() {
        Some(".") => Some(format!("`{key}` is a field of the task definition itself, not of this object")),
        Some(l) => Some(format!("`{key}` belongs in `{}`", l.trim_end_matches("[]"))),
        None => None,
    }
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// `path` as a JSON pointer (`/containerDefinitions/0/image`), for serde_json's `pointer`.
fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// `document` without the value at `path` (a key removed, or an array element), for locating the
/// value the SDK cannot read.
pub(crate) fn without(document: &Value, path: &[Step]) -> Value {
    let mut copy = document.clone();
    let Some((last, parents)) = path.split_last() else { return Value::Null };
    match (last, copy.pointer_mut(&pointer(parents))) {
        (Step::Key(k), Some(Value::Object(m))) => {
            m.remove(k);
        }
        (Step::Index(i), Some(Value::Array(a))) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
    copy
}

/// The children of the value at `path`, as paths.
pub(crate) fn children(document: &Value, path: &[Step]) -> Vec<Vec<Step>> {
    let extend = |s: Step| {
        let mut p = path.to_vec();
        p.push(s);
        p
    };
    match document.pointer(&pointer(path)) {
        Some(Value::Object(m)) => m.keys().map(|k| extend(Step::Key(k.clone()))).collect(),
        Some(Value::Array(a)) => (0..a.len()).map(|i| extend(Step::Index(i))).collect(),
        _ => Vec::new(),
    }
}

/// Line and column (1-based) where the value at `path` starts in the JSON `text` (for an object
/// key, where the key is written).
pub(crate) fn position(text: &str, path: &[Step]) -> Option<(usize, usize)> {
    let offset = Scanner { text: text.as_bytes(), at: 0 }.find(path)?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// A minimal JSON reader that finds where a path starts (the file already parsed as JSON).
struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn find(mut self, path: &[Step]) -> Option<usize> {
        self.space();
        let mut result = None;
        self.value(path, &mut result);
        result
    }

    fn space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn string(&mut self) -> String {
        let start = self.at + 1;
        self.at += 1;
        while self.at < self.text.len() && self.text[self.at] != b'"' {
            self.at += if self.text[self.at] == b'\\' { 2 } else { 1 };
        }
        let raw = String::from_utf8_lossy(&self.text[start..self.at.min(self.text.len())]).into_owned();
        self.at += 1;
        serde_json::from_str::<String>(&format!("\"{raw}\"")).unwrap_or(raw)
    }

    /// Reads one value; when `path` is empty, this value is the one looked for (already noted by the caller).
    fn value(&mut self, path: &[Step], found: &mut Option<usize>) {
        self.space();
        match self.text.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                loop {
                    self.space();
                    match self.text.get(self.at) {
                        Some(b'}') => {
                            self.at += 1;
                            return;
                        }
                        Some(b',') => self.at += 1,
                        Some(b'"') => {
                            let key_at = self.at;
                            let key = self.string();
                            self.space();
                            self.at += 1; // ':'
                            match path.split_first() {
                                Some((Step::Key(k), rest)) if *k == key && found.is_none() => {
                                    if rest.is_empty() {
                                        *found = Some(key_at);
                                    }
                                    self.value(rest, found);
                                }
                                _ => self.value(&[], &mut Some(0)),
                            }
                        }
                        _ => return,
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut index = 0;
                loop {
                    self.space();
                    match self.text.get(self.at) {
                        Some(b']') => {
                            self.at += 1;
                            return;
                        }
                        Some(b',') => {
                            self.at += 1;
                            index += 1;
                        }
                        Some(_) => match path.split_first() {
                            Some((Step::Index(i), rest)) if *i == index && found.is_none() => {
                                if rest.is_empty() {
                                    *found = Some(self.at);
                                }
                                self.value(rest, found);
                            }
                            _ => self.value(&[], &mut Some(0)),
                        },
                        None => return,
                    }
                }
            }
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while self.at < self.text.len() && !matches!(self.text[self.at], b',' | b'}' | b']') {
                    self.at += 1;
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> Vec<Step> {
        s.iter().map(|p| p.parse::<usize>().map(Step::Index).unwrap_or_else(|_| Step::Key(p.to_string()))).collect()
    }

    #[test]
    fn a_key_the_request_does_not_carry_is_lost_with_its_path() {
        let written: Value = serde_json::from_str(
            r#"{"family": "web", "revision": 3, "containerDefinitions": [{"name": "web", "portMapings": [], "cpu": null}]}"#,
        )
        .unwrap();
        let sent: Value =
            serde_json::from_str(r#"{"family": "web", "containerDefinitions": [{"name": "web"}]}"#).unwrap();
        let lost = lost_keys(&written, &sent);
        assert_eq!(lost, [path(&["containerDefinitions", "0", "portMapings"])]);
        assert_eq!(show(&lost[0]), "containerDefinitions[0].portMapings");
    }

    #[test]
    fn suggestions_name_the_spelling_or_the_place() {
        let container = path(&["containerDefinitions", "0"]);
        assert_eq!(suggest(&container, "portMapings").as_deref(), Some("did you mean `portMappings`?"));
        assert_eq!(suggest(&container, "memory_reservation").as_deref(), Some("did you mean `memoryReservation`?"));
        assert_eq!(suggest(&[], "containerPort").as_deref(), Some("`containerPort` belongs in `portMappings`"));
        assert_eq!(
            suggest(&container, "executionRoleArn").as_deref(),
            Some("`executionRoleArn` is a field of the task definition itself, not of this object")
        );
        assert_eq!(suggest(&[], "zzz"), None);
    }

    #[test]
    fn positions_are_where_the_path_is_written() {
        let text = "{\n  \"family\": \"web\",\n  \"containerDefinitions\": [\n    {\"name\": \"web\", \"portMappings\": [{\"containerPort\": \"8080\"}]}\n  ]\n}";
        assert_eq!(position(text, &path(&["family"])), Some((2, 3)));
        let port = path(&["containerDefinitions", "0", "portMappings", "0", "containerPort"]);
        assert_eq!(position(text, &port), Some((4, 39)));
        assert_eq!(position(text, &path(&["nope"])), None);
    }
}
