//! Every `proofrack …` command written in the README, docs/*.md and deploy/ goes through
//! the real argument parser ([`crate::command_line::Cli`]), so documented syntax cannot
//! drift from the CLI again.
//!
//! What counts as a documented command:
//! - in a fenced shell block of a Markdown file (```sh, ```bash, ```console or no language):
//!   every command that starts with `proofrack` (or a path ending in `/proofrack`) at a
//!   command position: the start of a line (after `$ `, `sudo [-u USER] `, `VAR=value `
//!   prefixes) or after `&&`, `||`, `;`, `|`, `do`, `then`, `$(`; `\` continues a line. It must
//!   parse completely;
//! - `ExecStart=` lines of the systemd units: parse completely;
//! - `proofrack …` in backticks anywhere else (prose, comments of any block or file): the
//!   subcommands and flags must exist and their values parse, but a mention may leave out
//!   required arguments ("`proofrack drain` stops new offers").
//!
//! Nothing is executed.

use crate::command_line::Cli;
use clap::error::ErrorKind;
use clap::Parser;
use std::path::{Path, PathBuf};

/// One command found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Found {
    file: String,
    line: usize,
    args: Vec<String>,
    /// A full command (a code block or a unit) or a mention (backticks in prose).
    complete: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the repository")
        .to_path_buf()
}

/// The files whose commands are checked: README.md, docs/*.md (not the GPU run logs under
/// docs/gpu-runs, which record what ran) and everything in deploy/.
fn documented_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "deploy", "deploy/systemd"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| dir != "docs" || p.extension().is_some_and(|e| e == "md"))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// Splits a shell line into words, honouring single and double quotes (no expansion);
/// unquoted `;`, `|`, `||`, `&` and `&&` are words of their own.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    let end_word = |cur: &mut String, has: &mut bool, words: &mut Vec<String>| {
        if *has || !cur.is_empty() {
            words.push(std::mem::take(cur));
            *has = false;
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                has = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    has = true;
                }
            }
            (None, c) if c.is_whitespace() => end_word(&mut cur, &mut has, &mut words),
            // `2>&1` stays one word (a redirection), `a && b` and `x;` do not.
            (None, ';' | '|' | '&') if !cur.ends_with('>') => {
                end_word(&mut cur, &mut has, &mut words);
                let mut op = c.to_string();
                if matches!(c, '|' | '&') && chars.peek() == Some(&c) {
                    op.push(c);
                    chars.next();
                }
                words.push(op);
            }
            (None, c) => {
                cur.push(c);
                has = true;
            }
        }
    }
    end_word(&mut cur, &mut has, &mut words);
    words
}

/// The part of a shell line before its comment (a `#` at the start of a word, outside
/// quotes), and the comment.
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if prev_space => return (&line[..i], &line[i..]),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    (line, "")
}

/// Is `word` the proofrack binary (`proofrack`, `/usr/local/bin/proofrack`,
/// `./target/release/proofrack`)?
fn is_binary(word: &str) -> bool {
    word == "proofrack" || word.ends_with("/proofrack")
}

/// Commands at command positions of one (joined) shell line.
fn commands_in_shell_line(code: &str) -> Vec<Vec<String>> {
    let words = shell_words(code);
    let mut out = Vec::new();
    let mut i = 0;
    let mut at_command = true;
    while i < words.len() {
        let w = words[i].as_str();
        if matches!(
            w,
            "&&" | "||" | ";" | "|" | "do" | "then" | "else" | "(" | "{"
        ) {
            at_command = true;
            i += 1;
            continue;
        }
        // `$(proofrack …)` and `x=$(proofrack …)`
        if let Some(pos) = w.find("$(") {
            let inner = &w[pos + 2..];
            if is_binary(inner) {
                let mut args = Vec::new();
                i += 1;
                while i < words.len() && !words[i].ends_with(')') {
                    args.push(words[i].clone());
                    i += 1;
                }
                if i < words.len() {
                    args.push(words[i].trim_end_matches(')').to_string());
                    i += 1;
                }
                args.retain(|a| !a.is_empty());
                out.push(args);
                at_command = false;
                continue;
            }
        }
        if at_command {
            // Prefixes that keep the command position.
            if w == "$" || w == "sudo" || w == "exec" || w == "time" || w == "env" {
                i += 1;
                if w == "sudo" && words.get(i).is_some_and(|x| x == "-u") {
                    i += 2;
                }
                continue;
            }
            if w.contains('=') && !w.starts_with('-') && !w.starts_with('=') {
                i += 1; // VAR=value
                continue;
            }
            if is_binary(w) {
                let mut args = Vec::new();
                i += 1;
                while i < words.len() {
                    let a = words[i].as_str();
                    if matches!(a, "&&" | "||" | ";" | "|" | "&")
                        || a.starts_with('>')
                        || a.starts_with("2>")
                        || a.starts_with('<')
                    {
                        break;
                    }
                    args.push(a.to_string());
                    i += 1;
                }
                out.push(args);
                at_command = false;
                continue;
            }
        }
        at_command = false;
        i += 1;
    }
    out
}

/// `proofrack …` inside backticks (a mention in prose or a comment).
fn mentions(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let words = shell_words(span);
            if words.first().is_some_and(|w| is_binary(w)) {
                out.push(words[1..].to_vec());
            }
        }
    }
    out
}

/// Every command documented in one file's text.
fn extract(file: &str, text: &str) -> Vec<Found> {
    let markdown = file.ends_with(".md");
    let unit = file.ends_with(".service");
    let mut found = Vec::new();
    let mut push = |line: usize, args: Vec<String>, complete: bool| {
        found.push(Found {
            file: file.to_string(),
            line,
            args,
            complete,
        })
    };
    // Markdown: Some(shell?) inside a fenced block. Other files: never in a block, every
    // line is "comment or config".
    let mut block: Option<bool> = None;
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let trimmed = raw.trim_start();
        if markdown && trimmed.starts_with("```") {
            block = match block {
                Some(_) => None,
                None => {
                    let lang = trimmed.trim_start_matches('`').trim();
                    Some(matches!(lang, "" | "sh" | "bash" | "console" | "shell"))
                }
            };
            pending = None;
            continue;
        }
        match block {
            Some(true) => {
                let (start, mut joined) = pending.take().unwrap_or((line_no, String::new()));
                let (code, comment) = split_comment(raw);
                for args in mentions(comment) {
                    push(line_no, args, false);
                }
                if let Some(cont) = code.trim_end().strip_suffix('\\') {
                    joined.push_str(cont);
                    joined.push(' ');
                    pending = Some((start, joined));
                    continue;
                }
                joined.push_str(code);
                for args in commands_in_shell_line(&joined) {
                    push(start, args, true);
                }
            }
            Some(false) => {
                // TOML, output or other: only backticked mentions (in comments).
                for args in mentions(raw) {
                    push(line_no, args, false);
                }
            }
            None if unit && trimmed.starts_with("ExecStart=") => {
                let cmd = trimmed.trim_start_matches("ExecStart=");
                let cmd = cmd.trim_start_matches(['-', '@', '+', '!', ':']);
                for args in commands_in_shell_line(cmd) {
                    push(line_no, args, true);
                }
            }
            None => {
                for args in mentions(raw) {
                    push(line_no, args, false);
                }
            }
        }
    }
    found
}

/// Parses one found command; `Err` says what is wrong.
fn check(f: &Found) -> Result<(), String> {
    let argv = std::iter::once("proofrack".to_string()).chain(f.args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        // `--help` and `--version` are documented on purpose.
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Ok(()),
        Err(e)
            if !f.complete
                && matches!(
                    e.kind(),
                    ErrorKind::MissingRequiredArgument
                        | ErrorKind::MissingSubcommand
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!(
            "{}:{}: `proofrack {}`: {}",
            f.file,
            f.line,
            f.args.join(" "),
            e.render().to_string().lines().next().unwrap_or_default()
        )),
    }
}

#[test]
fn every_documented_command_parses() {
    let root = repo_root();
    let mut all = Vec::new();
    for path in documented_files() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let name = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        all.extend(extract(&name, &text));
    }
    let errors: Vec<String> = all.iter().filter_map(|f| check(f).err()).collect();
    assert!(
        errors.is_empty(),
        "{} of {} documented commands do not parse:\n{}",
        errors.len(),
        all.len(),
        errors.join("\n")
    );
    // The docs are not empty of commands: the check above cannot pass on nothing.
    let complete = all.iter().filter(|f| f.complete).count();
    assert!(complete >= 30, "only {complete} complete commands found");
    for needed in [
        "README.md",
        "docs/deploy-rack.md",
        "deploy/systemd/proofrack-agent.service",
    ] {
        assert!(
            all.iter().any(|f| f.file == needed && f.complete),
            "no command found in {needed}"
        );
    }
}

#[test]
fn a_wrong_flag_or_value_in_a_document_is_caught() {
    let doc = "Prose with `proofrack drain` and `proofrack ledger --jsn`.\n\
               ```sh\n\
               proofrack certs --dir certs issue coordinator --host 10.0.0.5\n\
               sudo -u proofrack proofrack submit --circuit mimc-12 --input x.json \\\n\
                   --deadline 30 --collateral 40   # 30: no unit\n\
               for b in gpu-01 gpu-02; do proofrack certs issue agent --operator op-a --nam $b; done\n\
               proofrack status   # `proofrack agents --wide`\n\
               ```\n\
               ```toml\n\
               cert = \"x\"   # from `proofrack certs issue client --name cli`\n\
               ```\n";
    let found = extract("doc.md", doc);
    let args: Vec<(usize, String, bool)> = found
        .iter()
        .map(|f| (f.line, f.args.join(" "), f.complete))
        .collect();
    assert_eq!(
        args,
        vec![
            (1, "drain".to_string(), false),
            (1, "ledger --jsn".to_string(), false),
            (
                3,
                "certs --dir certs issue coordinator --host 10.0.0.5".to_string(),
                true
            ),
            (
                4,
                "submit --circuit mimc-12 --input x.json --deadline 30 --collateral 40".to_string(),
                true
            ),
            (
                6,
                "certs issue agent --operator op-a --nam $b".to_string(),
                true
            ),
            (7, "agents --wide".to_string(), false),
            (7, "status".to_string(), true),
            (10, "certs issue client --name cli".to_string(), false),
        ]
    );
    let verdicts: Vec<bool> = found.iter().map(|f| check(f).is_ok()).collect();
    // a mention may leave out the agent; a misspelt flag, a deadline without its unit, a
    // misspelt --name, an unknown flag in a comment and a status without its task are caught
    assert_eq!(
        verdicts,
        vec![true, false, true, false, false, false, false, true]
    );
    let e = check(&found[3]).unwrap_err();
    assert!(e.starts_with("doc.md:4: `proofrack submit"), "{e}");
    assert!(e.contains("30"), "{e}");
}

#[test]
fn unit_exec_lines_are_commands() {
    let found = extract(
        "x.service",
        "[Service]\nExecStart=/usr/local/bin/proofrack agent --config /etc/proofrack/agent.toml\n# see `proofrack agent --print-config`\nUser=proofrack\n",
    );
    assert_eq!(found.len(), 2);
    assert!(found[0].complete && check(&found[0]).is_ok());
    assert_eq!(found[1].args, vec!["agent", "--print-config"]);
    let bad = extract(
        "y.service",
        "ExecStart=/usr/bin/proofrack agnet --config x\n",
    );
    assert!(check(&bad[0]).is_err());
}

/// The units' `Documentation=` points at a file the guide's install steps put there.
#[test]
fn the_units_documentation_is_installed_by_the_guide() {
    let root = repo_root();
    let guide = std::fs::read_to_string(root.join("docs/deploy-rack.md")).expect("the guide");
    for unit in ["proofrack-coordinator.service", "proofrack-agent.service"] {
        let text = std::fs::read_to_string(root.join("deploy/systemd").join(unit)).unwrap();
        let docs: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Documentation="))
            .flat_map(str::split_whitespace)
            .collect();
        assert!(!docs.is_empty(), "{unit} has no Documentation=");
        for d in docs {
            let path = d
                .strip_prefix("file://")
                .unwrap_or_else(|| panic!("{unit}: {d} is not a file:// path"));
            let installed = guide
                .lines()
                .any(|l| l.contains("install ") && l.trim_end().ends_with(path));
            assert!(
                installed,
                "{unit}: Documentation={d}, but no install step of docs/deploy-rack.md puts a file there"
            );
            let source = Path::new(path).file_name().unwrap();
            assert!(
                root.join("docs").join(source).exists(),
                "{unit}: {d} is installed from docs/{}",
                source.to_string_lossy()
            );
        }
    }
}
