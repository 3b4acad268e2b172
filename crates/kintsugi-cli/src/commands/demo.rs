//! `kintsugi demo`: the whole idea in one command.
//!
//! It starts a real sync server on a free loopback port and two phones in temporary folders,
//! pairs them, has both partners edit the same boundary while the server is down, brings the
//! server back, syncs, and prints the merged agreement and what the server could see.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use kintsugi_core::{BoundaryView, CodeKind, Device, Enrolment, system_clock};
use kintsugi_server::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::output::Output;

/// A server the demo can stop and start again on the same address and data.
struct DemoServer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), kintsugi_server::ServerError>>,
}

async fn start_server(addr: SocketAddr, data: &Path) -> anyhow::Result<(DemoServer, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let task = tokio::spawn(kintsugi_server::run(listener, Config::new(data), shutdown));
    Ok((DemoServer { stop, task }, addr))
}

impl DemoServer {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("server task")??;
        Ok(())
    }
}

pub async fn run(out: Output) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("cannot make a temporary folder")?;
    let data = tmp.path().join("server");
    if out.json {
        anyhow::bail!("the demo prints a story for people; run it without --json");
    }

    let (server, addr) = start_server("127.0.0.1:0".parse()?, &data).await?;
    let url = format!("http://{addr}");
    say(&format!(
        "1. A private sync server is running at {url}. It stores only ciphertext."
    ));

    let (alice, bob) = pair(tmp.path(), &url).await?;
    let id = alice.add_boundary("No contact with X", "contact")?;
    alice.sync().await?;
    bob.sync().await?;
    say("3. Alice proposed a boundary and both phones synced:");
    show("   ", &bob.boundaries()?);

    server.stop().await?;
    say("4. The server is down. Both partners edit the same boundary offline:");
    edit_offline(&alice, &bob, &id).await?;

    let (server, _) = start_server(addr, &data).await?;
    say("5. The server is back. Both phones sync:");
    let same = sync_and_compare(&alice, &bob).await?;
    server.stop().await?;
    let (files, leaks) = scan_for_plaintext(&data, &["contact with X", "scared"])?;
    say(&format!(
        "7. The server's data folder: {files} files, {leaks} containing any of the text."
    ));
    anyhow::ensure!(
        same && leaks == 0,
        "the demo did not converge or the server saw plaintext"
    );
    Ok(())
}

/// Prints one line of the story.
fn say(text: &str) {
    println!("{text}");
}

/// Alice makes a space on her phone under `tmp` and invites Bob, who joins on his (step 2).
async fn pair(tmp: &Path, url: &str) -> anyhow::Result<(Device, Device)> {
    let (alice_home, bob_home) = (tmp.join("alice"), tmp.join("bob"));
    let enrol = |name: &'static str, dir| Enrolment {
        dir,
        server_url: url,
        member_name: name,
        device_name: "phone",
        ca_cert_pem: None,
        clock: system_clock(),
    };
    let alice = Device::init(enrol("Alice", &alice_home)).await?;
    let code = alice.invite(CodeKind::Partner).await?.encode();
    let bob = Device::join(enrol("Bob", &bob_home), &code).await?;
    say(&format!(
        "2. Alice made a space and invited Bob with a one-time code ({}...). Bob joined.",
        &code[..12]
    ));
    Ok((alice, bob))
}

/// Both partners edit boundary `id` while the server is down, and Bob's sync fails (step 4).
async fn edit_offline(alice: &Device, bob: &Device, id: &str) -> anyhow::Result<()> {
    alice.edit_boundary(id, "No contact with X, including social media")?;
    say("   Alice: \"No contact with X, including social media\"");
    bob.edit_boundary(id, "Absolutely no contact with X")?;
    say("   Bob:   \"Absolutely no contact with X\"");
    bob.write_journal(
        "I am scared this will not work, but I want it to.",
        Some(2),
        &[],
    )?;
    say("   Bob also wrote in his private journal.");
    match bob.sync().await {
        Err(e) => say(&format!("   Bob tried to sync: {e}")),
        Ok(_) => anyhow::bail!("sync succeeded while the server was down"),
    }
    Ok(())
}

/// Syncs both phones twice, prints the merged agreement, and whether both see the same (steps
/// 5 and 6).
async fn sync_and_compare(alice: &Device, bob: &Device) -> anyhow::Result<bool> {
    for device in [alice, bob, alice, bob] {
        let report = device.sync().await?;
        say(&format!(
            "   {} pushed {} and received {} change(s)",
            device.identity().member_name,
            report.pushed,
            report.pulled
        ));
    }
    let (a, b) = (alice.boundaries()?, bob.boundaries()?);
    say("6. The merged agreement, character by character, on both phones:");
    show("   Alice sees: ", &a);
    show("   Bob sees:   ", &b);
    let same = a.iter().map(|x| &x.text).eq(b.iter().map(|x| &x.text));
    say(&format!(
        "   Same on both phones: {}",
        if same { "yes" } else { "NO" }
    ));
    say(&format!(
        "   Alice's journal holds {} entries: Bob's private journal never reached her.",
        alice.journal()?.len()
    ));
    Ok(same)
}

fn show(prefix: &str, list: &[BoundaryView]) {
    for b in list {
        println!("{prefix}\"{}\" ({})", b.text, b.status.as_str());
    }
}

/// Counts the files under `dir` and how many contain any of `needles`.
fn scan_for_plaintext(dir: &Path, needles: &[&str]) -> anyhow::Result<(usize, usize)> {
    let (mut files, mut leaks) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
                continue;
            }
            files += 1;
            let bytes = std::fs::read(entry.path())?;
            if needles
                .iter()
                .any(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
            {
                leaks += 1;
            }
        }
    }
    Ok((files, leaks))
}
