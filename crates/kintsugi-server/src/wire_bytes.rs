//! Counts the bytes each accepted connection reads and writes (TLS and HTTP/2 framing
//! included: what crosses the wire), for the `kintsugi_wire_*_bytes_total` metrics.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The counters every connection adds to.
#[derive(Debug, Clone, Default)]
pub(crate) struct WireCounters {
    pub(crate) received: Counter,
    pub(crate) sent: Counter,
}

/// An accepted connection whose traffic is counted.
#[derive(Debug)]
pub(crate) struct CountedStream {
    inner: TcpStream,
    counters: WireCounters,
}

impl CountedStream {
    pub(crate) fn new(inner: TcpStream, counters: WireCounters) -> Self {
        Self { inner, counters }
    }
}

impl Connected for CountedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.counters.received.inc_by(read as u64);
        polled
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.counters.sent.inc_by(*written as u64);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = &polled {
            self.counters.sent.inc_by(*written as u64);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn what_a_connection_reads_and_writes_is_counted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.expect("connect");
            stream.write_all(b"hello").await.expect("write");
            let mut reply = [0u8; 3];
            stream.read_exact(&mut reply).await.expect("read");
        });
        let (accepted, _) = listener.accept().await.expect("accept");
        let counters = WireCounters::default();
        let mut counted = CountedStream::new(accepted, counters.clone());
        let mut hello = [0u8; 5];
        counted.read_exact(&mut hello).await.expect("read");
        counted.write_all(b"hi!").await.expect("write");
        client.await.expect("client");
        assert_eq!((counters.received.get(), counters.sent.get()), (5, 3));
    }
}
