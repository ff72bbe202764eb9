//! The yardstick of `bench_flags`: a bare axum server that answers every POST with a fixed
//! JSON body, so the benchmark can compare Greenlight's flags answers with what answering the
//! same bytes costs at all. Usage: `bare_axum BODY_FILE PORT` (runs until killed).

use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::Router;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let body_file = args.next().expect("usage: bare_axum BODY_FILE PORT");
    let port: u16 = args
        .next()
        .and_then(|port| port.parse().ok())
        .expect("usage: bare_axum BODY_FILE PORT");
    let answer = Bytes::from(std::fs::read(&body_file).expect("the body file"));
    let app = Router::new().fallback(post(move |_request: Bytes| {
        let answer = answer.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], answer) }
    }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
