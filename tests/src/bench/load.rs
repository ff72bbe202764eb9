//! The load generator of the benchmark programs: requests are built (and signed) before the
//! timed window, so the timed loop only writes bytes over keep-alive HTTP/1.1 connections and
//! reads the answers. It runs on the caller's runtime; the programs use a single-threaded one,
//! so the generator takes at most one of the machine's cores from the server it measures.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};

/// One request, ready to send: the timed loop clones it (reference counts only).
#[derive(Clone)]
pub struct Prepared {
    pub method: Method,
    pub uri: http::Uri,
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
    pub body: Bytes,
}

impl Prepared {
    pub fn post(path: &str, headers: Vec<(&'static str, String)>, body: Bytes) -> Self {
        let headers: Vec<(HeaderName, HeaderValue)> = headers
            .into_iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).expect("a valid header value"),
                )
            })
            .collect();
        Self {
            method: Method::POST,
            uri: path.parse().expect("a valid path"),
            headers: headers.into(),
            body,
        }
    }

    fn to_request(&self, host: &HeaderValue) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(http::header::HOST, host.clone());
        for (name, value) in self.headers.iter() {
            headers.append(name.clone(), value.clone());
        }
        request
    }
}

/// What one timed run saw.
pub struct Outcome {
    /// Latencies of the answers below 300.
    pub latencies: Vec<Duration>,
    /// Answers of 300 and above, and failed sends.
    pub errors: u64,
    /// The first error answers' statuses (a few, to say what went wrong).
    pub error_statuses: Vec<u16>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn ok(&self) -> usize {
        self.latencies.len()
    }

    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let n = sorted.len();
        sorted
            .get(((n as f64 * q) as usize).min(n.saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    /// One line: throughput, latency percentiles and errors.
    pub fn summary(&self) -> String {
        format!(
            "{:.0} req/s ({} ok, {} errors{} in {:.1} s), latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.rate(),
            self.ok(),
            self.errors,
            if self.error_statuses.is_empty() {
                String::new()
            } else {
                format!(" e.g. {:?}", self.error_statuses)
            },
            self.elapsed.as_secs_f64(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
        )
    }
}

/// Sends `requests` in order from `concurrency` connections to `address` until `seconds` have
/// passed or every request was sent once (each is sent at most once: they carry unique ids).
pub async fn run(
    address: SocketAddr,
    requests: Arc<Vec<Prepared>>,
    seconds: f64,
    concurrency: usize,
) -> Outcome {
    let host = HeaderValue::from_str(&address.to_string()).expect("host header");
    let next = Arc::new(AtomicUsize::new(0));
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        connections.push(connect(address).await);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let workers = connections.into_iter().map(|mut sender| {
        let (requests, next, host) = (requests.clone(), next.clone(), host.clone());
        async move {
            let mut latencies = Vec::with_capacity(requests.len() / concurrency + 1);
            let (mut errors, mut statuses) = (0u64, Vec::new());
            while Instant::now() < deadline {
                let Some(prepared) = requests.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let request = prepared.to_request(&host);
                let sent = Instant::now();
                let status = match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        // Read the whole answer, so the connection is ready for the next one.
                        let read = response.into_body().collect().await.is_ok();
                        if read {
                            status
                        } else {
                            0
                        }
                    }
                    Err(_) => 0,
                };
                if (200..300).contains(&status) {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                    if statuses.len() < 3 {
                        statuses.push(status);
                    }
                    if status == 0 {
                        sender = connect(address).await;
                    }
                }
            }
            (latencies, errors, statuses)
        }
    });
    let results = futures::future::join_all(workers).await;
    let mut outcome = Outcome {
        latencies: Vec::new(),
        errors: 0,
        error_statuses: Vec::new(),
        elapsed: started.elapsed(),
    };
    for (latencies, errors, statuses) in results {
        outcome.latencies.extend(latencies);
        outcome.errors += errors;
        if outcome.error_statuses.len() < 3 {
            outcome.error_statuses.extend(statuses);
        }
    }
    outcome
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection, driven by a task of the current runtime.
async fn connect(address: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|error| panic!("connect to {address}: {error}"));
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}
