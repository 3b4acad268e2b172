//! A TCP proxy that cuts connections at random points, driven by a seed: real network faults
//! between a client core and the server. A cut request may or may not have reached the server,
//! and a cut reply loses an acknowledgement, so clients retry, pushes arrive twice, and pulls
//! stop half-way, exactly as on a phone losing its signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy in front of `upstream`.
#[derive(Debug)]
pub struct FlakyProxy {
    pub addr: SocketAddr,
    cutting: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyProxy {
    /// Starts a proxy; while cutting, each connection is cut after a random number of bytes
    /// (up to `max_bytes`) with probability `cut_chance`.
    pub async fn start(
        upstream: SocketAddr,
        seed: u64,
        cut_chance: f64,
        max_bytes: usize,
    ) -> FlakyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cutting = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (flag, counter) = (cutting.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            while let Ok((client, _)) = listener.accept().await {
                let cut_after = (flag.load(Ordering::SeqCst) && rng.gen_bool(cut_chance))
                    .then(|| rng.gen_range(1..max_bytes));
                let counter = counter.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await
                        && relay(client, server, cut_after).await
                    {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        FlakyProxy {
            addr,
            cutting,
            cuts,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Turns the faults on or off (off while pairing devices, and for the final sync).
    pub fn set_cutting(&self, on: bool) {
        self.cutting.store(on, Ordering::SeqCst);
    }

    /// How many connections were cut so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes, or until `cut_after` bytes went through in
/// total; returns whether the connection was cut.
async fn relay(client: TcpStream, server: TcpStream, cut_after: Option<usize>) -> bool {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let budget = Arc::new(AtomicU64::new(cut_after.map_or(u64::MAX, |b| b as u64)));
    let up = pump(&mut client_read, &mut server_write, budget.clone());
    let down = pump(&mut server_read, &mut client_write, budget.clone());
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    budget.load(Ordering::SeqCst) == 0
}

async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    budget: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 8192];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let left = budget.load(Ordering::SeqCst);
        let allowed = (n as u64).min(left) as usize;
        budget.fetch_sub(allowed as u64, Ordering::SeqCst);
        if to.write_all(&buf[..allowed]).await.is_err() || allowed < n {
            return;
        }
    }
}
