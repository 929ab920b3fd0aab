//! Output on stdout that survives its reader going away: `proofrack agents --json | head`
//! ends the command quietly, as a closed pipe ends any Unix tool, instead of with a panic.

use std::io::Write;

/// Exit status of a command whose reader closed the pipe: 128 + SIGPIPE, as the shell reports
/// a tool killed by it.
const BROKEN_PIPE_STATUS: i32 = 141;

/// Writes `text` to stdout.
pub fn print(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = write!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE_STATUS);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Writes `text` and a newline to stdout.
pub fn line(text: impl std::fmt::Display) {
    print(format_args!("{text}\n"));
}
