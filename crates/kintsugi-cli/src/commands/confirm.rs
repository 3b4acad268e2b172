//! Asking before a command that cannot be undone: on a terminal the user answers y or n; a
//! script (no terminal) must say `--yes`, so nothing destructive happens by accident.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;

/// Goes on when `yes` was given, or the user answers yes to `question` on a terminal; otherwise
/// fails with a line that says how to confirm (`command` is the command to run with --yes).
pub fn confirm(question: &str, yes: bool, command: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        bail!("{question} Nothing was done: confirm with `{command} --yes`");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if is_yes(&answer) {
        Ok(())
    } else {
        bail!("nothing was done")
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_yes_confirms() {
        for yes in ["y", "Y", "yes", " YES\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "n", "no", "yess", "\n"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn given_yes_goes_on_without_asking() {
        assert!(confirm("Erase?", true, "kintsugi wipe").is_ok());
    }
}
