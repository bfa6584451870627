//! A source check for test suites that start the project's binaries: every program they start
//! goes through [`isolated_command`](crate::isolated_command) (Rust) or gets an explicit
//! environment (`os.execve`, in the Python scripts they run through
//! [`Python::run`](crate::Python::run)), so no setting of the developer's leaks in.

use std::path::Path;

/// The system tools a test may start with a bare `Command::new` to set itself up: they are
/// not the project's binaries and read no project setting.
const SETUP_TOOLS: [&str; 3] = ["\"mkfifo\")", "\"mount\")", "\"umount\")"];

/// Python calls that start a program with the script's own environment (or a shell): only
/// `os.execve`, which takes the environment as an argument, is allowed.
const PYTHON_STARTERS: [&str; 6] =
    ["os.exec", "subprocess", "os.system(", "os.popen(", "os.spawn", "os.posix_spawn"];

/// A test that may start its own test binary (`Command::new(std::env::current_exe()...)`) to
/// run a probe with settings in its environment: the file's name and the test function's.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    /// The file's name, e.g. `"output_and_process.rs"`.
    pub file: &'a str,
    /// The function's name.
    pub function: &'a str,
}

/// Every `.rs` file under `folder`, sub-folders included, checked with [`unisolated_starts`];
/// each finding as `path:line: text`.
pub fn unisolated_starts_under(folder: &Path, probes: &[Probe<'_>]) -> Vec<String> {
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("read {}: {e}", folder.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            found.extend(unisolated_starts_under(&path, probes));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            for (line, text) in unisolated_starts(name, &source, probes) {
                found.push(format!("{}:{line}: {text}", path.display()));
            }
        }
    }
    found
}

/// The lines of `source` (a Rust file named `file`) that start a program without an isolated
/// environment, as (line number, trimmed line). Caught:
/// - every `Command::new` on a line, under any name the file gives `Command` (`use
///   std::process::Command as Cmd`), or as a function value (`.map(Command::new)`), except
///   the setup tools `mkfifo`, `mount` and `umount` and, in a [`Probe`]'s function only,
///   `Command::new(std::env::current_exe()`;
/// - in any line, so in the Python scripts a test keeps in string constants: `os.exec*`
///   other than `os.execve`, `subprocess`, `os.system`, `os.popen`, `os.spawn*` and
///   `os.posix_spawn*`.
///
/// Whole-line `//` comments are skipped; anything else is read as code (a false alarm is
/// fixed by rewording, a miss would let a setting leak).
pub fn unisolated_starts(file: &str, source: &str, probes: &[Probe<'_>]) -> Vec<(usize, String)> {
    let mut names = vec!["Command".to_owned()];
    for (at, _) in source.match_indices("Command as ") {
        let alias: String = source[at + "Command as ".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !alias.is_empty() && !names.contains(&alias) {
            names.push(alias);
        }
    }
    let mut function = "";
    let mut found = Vec::new();
    for (index, line) in source.lines().enumerate() {
        if let Some(name) = top_level_function(line) {
            function = name;
        }
        if line.trim_start().starts_with("//") {
            continue;
        }
        let in_probe = probes.iter().any(|p| p.file == file && p.function == function);
        let rust = names.iter().any(|name| {
            let call = format!("{name}::new");
            line.match_indices(&call).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + call.len()..].chars().next();
                let whole_name = !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
                let rest = line[at + call.len()..].strip_prefix('(').unwrap_or("");
                let setup = SETUP_TOOLS.iter().any(|tool| rest.starts_with(tool));
                let probe = in_probe && rest.starts_with("std::env::current_exe()");
                whole_name && !setup && !probe
            })
        });
        let python = PYTHON_STARTERS.iter().any(|starter| {
            line.match_indices(starter)
                .any(|(at, _)| *starter != "os.exec" || !line[at..].starts_with("os.execve("))
        });
        if rust || python {
            found.push((index + 1, line.trim().to_owned()));
        }
    }
    found
}

/// The name of the function a line declares at the top level of a file (`fn name(` or `pub
/// fn name(` without indentation).
fn top_level_function(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("fn ")
        .or_else(|| line.strip_prefix("pub fn "))
        .or_else(|| line.strip_prefix("async fn "))?;
    rest.split(['(', '<']).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: Probe<'static> = Probe { file: "probe.rs", function: "the_probe" };

    fn lines(file: &str, source: &str) -> Vec<usize> {
        unisolated_starts(file, source, &[PROBE]).into_iter().map(|(line, _)| line).collect()
    }

    #[test]
    fn a_bare_command_is_caught_and_setup_tools_are_not() {
        let source = "let a = Command::new(APP);\n\
                      let b = std::process::Command::new(\"mkfifo\").arg(&f);\n\
                      // Command::new(APP) in a comment\n\
                      let c = globo_testkit::isolated_command(APP, dir);\n\
                      let d = MyCommand::new(1);\n";
        assert_eq!(lines("x.rs", source), [1]);
    }

    #[test]
    fn an_alias_of_command_is_caught() {
        let source = "use std::process::Command as Cmd;\nlet a = Cmd::new(APP);\n";
        assert_eq!(lines("x.rs", source), [2]);
        let source = "use std::process::{Command as Run, Stdio};\nlet a = Run::new(APP);\n";
        assert_eq!(lines("x.rs", source), [2]);
    }

    #[test]
    fn every_call_on_a_line_is_checked() {
        let source = "let (a, b) = (Command::new(\"mount\"), Command::new(APP));\n";
        assert_eq!(lines("x.rs", source), [1]);
        let source = "let all: Vec<_> = [APP].iter().map(Command::new).collect();\n";
        assert_eq!(lines("x.rs", source), [1]);
    }

    #[test]
    fn current_exe_is_allowed_only_in_the_probe() {
        let source = "fn the_probe() {\n    let p = Command::new(std::env::current_exe().unwrap());\n}\n\
                      fn another() {\n    let p = Command::new(std::env::current_exe().unwrap());\n}\n";
        assert_eq!(lines("probe.rs", source), [5]);
        assert_eq!(lines("other.rs", source), [2, 5]);
    }

    #[test]
    fn python_that_starts_a_program_with_its_own_environment_is_caught() {
        let source = "const S: &str = r#\"\nimport os, subprocess\n\
                      os.execv(app, [app])\n\
                      os.execve(app, [app], {\"PATH\": path})\n\
                      os.execvp(\"app\", [\"app\"])\n\
                      subprocess.run([app])\n\
                      os.system(app)\n\
                      os.posix_spawn(app, [app], {})\n\"#;\n";
        assert_eq!(lines("x.rs", source), [2, 3, 5, 6, 7, 8]);
    }

    #[test]
    fn sub_folders_are_searched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("common")).unwrap();
        std::fs::write(dir.path().join("fine.rs"), "let a = isolated_command(APP, d);\n").unwrap();
        std::fs::write(dir.path().join("common/mod.rs"), "\nlet a = Command::new(APP);\n").unwrap();
        std::fs::write(dir.path().join("common/notes.txt"), "Command::new(APP)\n").unwrap();
        let found = unisolated_starts_under(dir.path(), &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with("common/mod.rs:2: let a = Command::new(APP);"), "{found:?}");
    }
}
