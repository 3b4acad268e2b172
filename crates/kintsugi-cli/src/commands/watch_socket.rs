//! Editing beside a running `sync --watch`: the watcher holds the device's store, so it serves
//! the everyday commands of other `kintsugi` processes on the same home over a Unix socket
//! there, running them on its own open device (their edits go out live at once).
//!
//! One JSON line each way: the request is the command line, the answer what the command
//! printed and whether it failed. The socket is the owner's only (mode 0600, in the owner-only
//! home), so it lets in no one who could not already open the home itself.

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kintsugi_core::{CoreError, Device};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::cli::{Cli, Command, JournalCommand};
use crate::output::{CAPTURE, Captured, Output, report_error};

/// The socket's name in the home folder.
const SOCKET: &str = "watch.sock";
/// The longest request or answer line: a journal entry of a few MB fits.
const MAX_LINE: u64 = 32 << 20;
/// How long a connected process may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A command failed and what it printed (its error included) has been printed already.
#[derive(Debug)]
pub struct AlreadyReported;

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the command failed")
    }
}

impl std::error::Error for AlreadyReported {}

#[derive(Serialize, Deserialize)]
struct Request {
    args: Vec<String>,
    /// The caller's folder, which a relative file name (`--chart`, `--out`) is relative to.
    cwd: PathBuf,
    /// The caller's stdin, for a command that reads it (`journal write -`).
    stdin: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    printed: Captured,
    failed: bool,
}

/// Whether `command` may run on a watcher's device: the everyday reads and edits, and a sync.
/// Commands that would ask a question (on the watcher's terminal, not the caller's) or end the
/// device (leave) do not: they need the watcher stopped.
pub fn may_forward(command: &Command) -> bool {
    match command {
        Command::Boundary(_)
        | Command::Journal(_)
        | Command::Shared(_)
        | Command::Checkin(_)
        | Command::Therapy(_)
        | Command::Progress { .. }
        | Command::History { .. }
        | Command::Devices
        | Command::Invite(_)
        | Command::Export { .. }
        | Command::Sync { watch: false } => true,
        Command::Verify { confirm, yes } => !confirm || *yes,
        Command::Revoke { yes, .. } => *yes,
        _ => false,
    }
}

/// Whether `command` reads this process's stdin.
fn reads_stdin(command: &Command) -> bool {
    matches!(
        command,
        Command::Journal(JournalCommand::Write { text: Some(text), .. }) if text == "-"
    )
}

/// Makes `command` read what the caller gave: file names absolute against its folder, and its
/// stdin for `-`.
fn resolve_inputs(command: &mut Command, request: &mut Request) {
    if reads_stdin(command)
        && let Command::Journal(JournalCommand::Write { text, .. }) = command
    {
        *text = Some(request.stdin.take().unwrap_or_default());
    }
    let file = match command {
        Command::Progress { chart } => chart,
        Command::Export { out, .. } => out,
        Command::Journal(JournalCommand::Write { file, .. }) => file,
        _ => return,
    };
    let cwd = &request.cwd;
    if let Some(path) = file.as_mut().filter(|path| path.is_relative()) {
        *path = cwd.join(&*path);
    }
}

/// Runs this process's command on the device a watcher holds in `home`. Without a watcher
/// listening there, the store is busy for another reason: that error, as it was.
pub async fn forward(home: &Path, command: &Command, busy: PathBuf) -> anyhow::Result<()> {
    let Ok(mut stream) = UnixStream::connect(home.join(SOCKET)).await else {
        return Err(CoreError::Busy(busy).into());
    };
    let args = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let cwd = std::env::current_dir().context("cannot tell this folder; run from another one")?;
    let stdin = match reads_stdin(command) {
        true => Some(super::journal::read_stdin()?),
        false => None,
    };
    write_line(&mut stream, &Request { args, cwd, stdin }).await?;
    let answer: Answer = read_line(&mut BufReader::new(stream)).await.context(
        "the running `sync --watch` stopped before answering, so the command may or may not \
             have run: look (a `list` command) before running it again",
    )?;
    print!("{}", answer.printed.stdout);
    eprint!("{}", answer.printed.stderr);
    match answer.failed {
        true => Err(AlreadyReported.into()),
        false => Ok(()),
    }
}

/// The watcher's side: listens in `home` until the returned future is dropped. A home whose
/// socket cannot be made (a path too long for one) only loses editing beside the watcher.
pub async fn serve(home: &Path, device: &Device, out: Output) {
    let path = home.join(SOCKET);
    let listener = match listen(&path) {
        Ok(listener) => listener,
        Err(error) => {
            out.note(format!(
                "note: other kintsugi commands on this home must wait until this stops ({error:#})"
            ));
            return std::future::pending().await;
        }
    };
    let _remove = RemoveOnDrop(path);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // One at a time: each command takes milliseconds, and the device is one store.
        if let Err(error) = answer(stream, device).await {
            tracing::warn!("a command from another process could not be answered: {error:#}");
        }
    }
}

fn listen(path: &Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    // This process holds the store's lock, so a socket left here is a dead watcher's.
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error)?,
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn answer(stream: UnixStream, device: &Device) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let request: Request =
        tokio::time::timeout(REQUEST_TIMEOUT, read_line(&mut BufReader::new(read)))
            .await
            .context("no request in time")??;
    let printed = RefCell::new(Captured::default());
    let (printed, failed) = CAPTURE
        .scope(printed, async {
            let failed = run(request, device).await;
            (
                CAPTURE.with(|c| std::mem::take(&mut *c.borrow_mut())),
                failed,
            )
        })
        .await;
    write_line(&mut write, &Answer { printed, failed }).await
}

/// Runs one forwarded command line; true when it failed (its error is printed into the capture).
async fn run(mut request: Request, device: &Device) -> bool {
    let args = std::iter::once("kintsugi".to_string()).chain(std::mem::take(&mut request.args));
    let mut cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            report_error(
                &anyhow::anyhow!("{}", error.render().to_string().trim()),
                false,
            );
            return true;
        }
    };
    let out = Output { json: cli.json };
    resolve_inputs(&mut cli.command, &mut request);
    let result = if may_forward(&cli.command) {
        // Boxed: this future is inside `sync --watch`'s, which `run_on_device` runs.
        let work: Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>> =
            Box::pin(super::run_on_device(device, cli.command, out));
        work.await
    } else {
        Err(CoreError::Busy(PathBuf::from("this home")).into())
    };
    match result {
        Ok(()) => false,
        Err(error) => {
            report_error(&error, out.json);
            true
        }
    }
}

async fn write_line<T: Serialize>(
    stream: &mut (impl AsyncWriteExt + Unpin),
    value: &T,
) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    Ok(stream.flush().await?)
}

async fn read_line<T: for<'de> Deserialize<'de>>(
    reader: &mut BufReader<impl AsyncRead + Unpin>,
) -> anyhow::Result<T> {
    let mut line = String::new();
    let read = reader.take(MAX_LINE).read_line(&mut line).await?;
    anyhow::ensure!(read > 0, "the connection closed");
    Ok(serde_json::from_str(&line)?)
}

/// Removes the socket when the watcher stops, so no one connects to a dead one.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
