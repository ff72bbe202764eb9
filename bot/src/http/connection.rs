//! The clock of one connection: request headers must arrive within `header_read_timeout` and
//! a kept-alive connection may wait `idle_timeout` for its next request. hyper has a single
//! timer for both, so the connection's stream keeps its own: it sees bytes arrive, the service
//! marks when a request is being served and when its response is done.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for (the rest of) a request's headers, since then.
    Head(Instant),
    /// A request is in the service; its handler has its own deadlines.
    Serving,
    /// The last response is done; waiting for the next request, since then.
    Idle(Instant),
}

struct State {
    phase: Phase,
    /// The connection's last pending read: woken when the response is done, so the idle
    /// timer starts.
    reader: Option<Waker>,
}

/// Shared by a connection's stream and the responses its service produces.
#[derive(Clone)]
pub struct ConnectionClock {
    state: Arc<Mutex<State>>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

impl ConnectionClock {
    /// A new connection waits for its first request's headers.
    pub fn new(header_read_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                phase: Phase::Head(Instant::now()),
                reader: None,
            })),
            header_read_timeout,
            idle_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The service was called: the request's headers are complete.
    pub fn serving(&self) {
        self.lock().phase = Phase::Serving;
    }

    /// The response is done: the connection waits for its next request.
    fn idle(&self) {
        let reader = {
            let mut state = self.lock();
            state.phase = Phase::Idle(Instant::now());
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// Bytes arrived: on an idle connection they start the next request's headers.
    fn bytes_arrived(&self) {
        let mut state = self.lock();
        if let Phase::Idle(_) = state.phase {
            state.phase = Phase::Head(Instant::now());
        }
    }

    /// The current deadline (none while serving). `waker` is kept to be woken when the
    /// response is done: hyper need not read again by itself before the next request's bytes
    /// arrive, and the idle timer must start then.
    fn deadline(&self, waker: Option<&Waker>) -> Option<Instant> {
        let mut state = self.lock();
        if let Some(waker) = waker {
            if !state
                .reader
                .as_ref()
                .is_some_and(|kept| kept.will_wake(waker))
            {
                state.reader = Some(waker.clone());
            }
        }
        match state.phase {
            Phase::Head(since) => Some(since + self.header_read_timeout),
            Phase::Serving => None,
            Phase::Idle(since) => Some(since + self.idle_timeout),
        }
    }

    /// Wraps a response body so the connection turns idle once hyper is done with it.
    pub fn watch_response(&self, body: Body) -> Body {
        Body::new(ResponseBody {
            inner: body,
            clock: self.clone(),
        })
    }
}

/// A connection's TCP stream that fails its reads once the current phase's deadline passed
/// with nothing arriving; hyper then closes the connection.
pub struct TimedStream {
    inner: TcpStream,
    clock: ConnectionClock,
    timer: Pin<Box<Sleep>>,
}

impl TimedStream {
    pub fn new(inner: TcpStream, clock: ConnectionClock) -> Self {
        let first = clock.deadline(None).unwrap_or_else(Instant::now);
        Self {
            inner,
            clock,
            timer: Box::pin(tokio::time::sleep_until(first)),
        }
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let Some(deadline) = this.clock.deadline(Some(cx.waker())) else {
                    return Poll::Pending;
                };
                if this.timer.deadline() != deadline {
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request (or not all of its headers) within the connection's timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

/// A response body; hyper drops it once written, which starts the idle wait.
struct ResponseBody {
    inner: Body,
    clock: ConnectionClock,
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.clock.idle();
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
