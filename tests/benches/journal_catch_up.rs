//! A two-year journal (730 entries of about 1 KB) caught up by a new device of the same member,
//! once from the whole log and once from a snapshot after the server pruned the log behind it;
//! then one CLI command (`journal list`, `boundary add`) on that journal. Prints the figures.
//!
//! `cargo bench -p kintsugi-tests --bench journal_catch_up`. The CLI commands are timed when
//! the `kintsugi` binary is found: `KINTSUGI_BIN`, else the release build beside this bench
//! (`cargo build --release -p kintsugi-cli` first). With `KINTSUGI_BENCH_KEEP` set, the world's
//! folder is kept, to profile a command on it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kintsugi_core::{CodeKind, Device, DocKind};
use kintsugi_proto::v1::PullRequest;
use kintsugi_server::{ManualClock, UnixSeconds};
use kintsugi_tests::World;

const ENTRIES: usize = 730;
const ENTRY_BYTES: usize = 1000;
/// Past the server's default retention window, so the snapshot's log is pruned.
const A_MONTH: Duration = Duration::from_secs(31 * 24 * 60 * 60);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let result = runtime.block_on(async {
        let whole_log = catch_up(false).await?;
        let from_snapshot = catch_up(true).await?;
        Ok::<_, String>((whole_log, from_snapshot))
    });
    match result {
        Ok(((log_took, _), (snapshot_took, home))) => {
            println!("catch-up on {ENTRIES} entries of {ENTRY_BYTES} B, whole log: {log_took:?}");
            println!(
                "catch-up on {ENTRIES} entries of {ENTRY_BYTES} B, from a snapshot: {snapshot_took:?}"
            );
            time_cli_commands(&home.path().join("alice-tablet"));
            if std::env::var_os("KINTSUGI_BENCH_KEEP").is_some() {
                println!("the tablet's folder is kept in {}", home.keep().display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the journal on Alice's phone, optionally lets the server prune it behind an endorsed
/// snapshot, and times her new tablet's first sync. Returns the time and the world's folder
/// (kept, for the CLI commands).
async fn catch_up(with_snapshot: bool) -> Result<(Duration, tempfile::TempDir), String> {
    let clock = Arc::new(ManualClock::new(UnixSeconds::from_secs(1_800_000_000)));
    let mut world = World::with_clock(clock.clone()).await;
    let alice = world.init("Alice").await.with_snapshot_every(500);
    let entry = "a day of honest words. ".repeat(ENTRY_BYTES / 23);
    for day in 0..ENTRIES {
        alice
            .write_journal(&format!("day {day}: {entry}"), Some(3), &[])
            .map_err(|e| e.to_string())?;
    }
    alice.sync().await.map_err(|e| e.to_string())?;
    if with_snapshot {
        prune_behind_snapshot(&mut world, &alice, &clock).await?;
    }
    let tablet = world
        .join(&alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    let started = Instant::now();
    tablet.sync().await.map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let caught_up = tablet.journal().map_err(|e| e.to_string())?.len();
    if caught_up != ENTRIES {
        return Err(format!("the tablet holds {caught_up} of {ENTRIES} entries"));
    }
    drop((alice, tablet));
    Ok((took, world.root))
}

/// Has Alice's phone audit its snapshot, moves the server's clock past the retention window and
/// restarts it, then waits (bounded) for the sweep to prune the journal's log.
async fn prune_behind_snapshot(
    world: &mut World,
    alice: &Device,
    clock: &ManualClock,
) -> Result<(), String> {
    alice.sync().await.map_err(|e| e.to_string())?;
    clock.advance(A_MONTH);
    world.server.start_again().await;
    let mut conn = alice.connect().await.map_err(|e| e.to_string())?;
    let doc_id = alice.doc_id(DocKind::Journal).as_bytes().to_vec();
    for _ in 0..200 {
        let request = PullRequest {
            doc_id: doc_id.clone(),
            after_seq: 0,
            limit: 1,
            with_candidate: false,
        };
        let page = conn.sync.pull(request).await.map_err(|e| e.to_string())?;
        if page.into_inner().snapshot.is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the server did not prune the journal behind its snapshot".into())
}

/// Times `journal list` and `boundary add` on the caught-up tablet, best of five each.
fn time_cli_commands(home: &Path) {
    let Some(binary) = kintsugi_binary() else {
        println!(
            "CLI commands not timed: set KINTSUGI_BIN or `cargo build --release -p kintsugi-cli`"
        );
        return;
    };
    let commands: [&[&str]; 2] = [
        &["journal", "list"],
        &["boundary", "add", "we say where we are"],
    ];
    for args in commands {
        let best = (0..5).filter_map(|_| run_timed(&binary, home, args)).min();
        match best {
            Some(took) => println!("kintsugi {} (best of 5): {took:?}", args.join(" ")),
            None => println!(
                "kintsugi {} failed; run it by hand to see why",
                args.join(" ")
            ),
        }
    }
}

/// One run of the CLI on `home`; `None` when it failed.
fn run_timed(binary: &Path, home: &Path, args: &[&str]) -> Option<Duration> {
    let started = Instant::now();
    let output = Command::new(binary)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .ok()?;
    let took = started.elapsed();
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr).trim());
        return None;
    }
    Some(took)
}

/// `KINTSUGI_BIN`, else the release `kintsugi` in this bench's target folder.
fn kintsugi_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KINTSUGI_BIN") {
        return Some(PathBuf::from(path));
    }
    let bench = std::env::current_exe().ok()?;
    let beside = bench.parent()?.parent()?.join("kintsugi");
    beside.exists().then_some(beside)
}
