//! End-to-end tests against a local axum server on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::*;

#[derive(Clone, Default)]
struct Hits {
    ok: Arc<AtomicUsize>,
    followed: Arc<AtomicUsize>,
}

async fn start_server() -> (SocketAddr, Hits) {
    let hits = Hits::default();
    let app = Router::new()
        .route(
            "/ok",
            get(|State(h): State<Hits>| async move {
                h.ok.fetch_add(1, Ordering::SeqCst);
                "hello"
            }),
        )
        .route(
            "/redirect-metadata",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")],
                )
            }),
        )
        .route(
            "/redirect-self",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/followed")]) }),
        )
        .route(
            "/followed",
            get(|State(h): State<Hits>| async move {
                h.followed.fetch_add(1, Ordering::SeqCst);
                "you followed a redirect"
            }),
        )
        .route(
            "/big",
            get(|| async { vec![b'x'; 1024 * 1024].into_response() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, hits)
}

fn dev() -> OutboundPolicy {
    OutboundPolicy::development()
}

async fn get_url(policy: &OutboundPolicy, url: &str) -> Result<OutboundResponse, OutboundError> {
    let target = TargetUrl::parse(url, policy)?;
    send(policy, Method::GET, &target, HeaderMap::new(), Vec::new()).await
}

#[tokio::test]
async fn local_server_is_refused_before_connecting_under_strict_policy() {
    // A bare listener that only counts TCP connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let strict = OutboundPolicy {
        allowed_ports: vec![443, port],
        ..OutboundPolicy::strict()
    };
    for url in [
        format!("https://127.0.0.1:{port}/"),
        format!("https://[::ffff:127.0.0.1]:{port}/"),
        format!("https://2130706433:{port}/"),
    ] {
        assert_eq!(
            get_url(&strict, &url).await.unwrap_err(),
            OutboundError::ForbiddenAddress,
            "{url}"
        );
    }
    assert_eq!(
        get_url(&strict, &format!("https://localhost:{port}/"))
            .await
            .unwrap_err(),
        OutboundError::ForbiddenHost
    );
    assert_eq!(
        get_url(&strict, &format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err(),
        OutboundError::ForbiddenScheme
    );

    // A target parsed under the development policy is checked again by `send`.
    let smuggled = TargetUrl::parse(&format!("https://127.0.0.1:{port}/"), &dev()).unwrap();
    let err = send(
        &strict,
        Method::GET,
        &smuggled,
        HeaderMap::new(),
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err, OutboundError::ForbiddenAddress);

    // A name that resolves to loopback is refused after resolution, before connecting.
    let pinned = TargetUrl::parse(&format!("https://rebind.example.com:{port}/"), &strict).unwrap();
    let loopback = FixedResolver::new(vec!["127.0.0.1:0".parse().unwrap()]);
    let err = send_with_resolver(
        &loopback,
        &strict,
        Method::GET,
        &pinned,
        HeaderMap::new(),
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err, OutboundError::ForbiddenAddress);

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
}

#[tokio::test]
async fn development_policy_reaches_local_server() {
    let (addr, hits) = start_server().await;
    let response = get_url(&dev(), &format!("http://{addr}/ok")).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body_truncated, b"hello");
    assert!(!response.truncated);
    assert_eq!(hits.ok.load(Ordering::SeqCst), 1);

    // And through a real name lookup (`localhost` via the system resolver).
    let response = get_url(&dev(), &format!("http://localhost:{}/ok", addr.port()))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let (addr, hits) = start_server().await;
    let response = get_url(&dev(), &format!("http://{addr}/redirect-metadata"))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(
        response.headers.get(header::LOCATION).unwrap(),
        "http://169.254.169.254/latest/meta-data/"
    );

    let response = get_url(&dev(), &format!("http://{addr}/redirect-self"))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(hits.followed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn large_bodies_are_truncated() {
    let (addr, _) = start_server().await;
    let policy = OutboundPolicy {
        max_response_bytes: 1000,
        ..dev()
    };
    let response = get_url(&policy, &format!("http://{addr}/big"))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body_truncated.len(), 1000);
    assert!(response.truncated);

    let policy = OutboundPolicy {
        max_response_bytes: 5,
        ..dev()
    };
    let exact = get_url(&policy, &format!("http://{addr}/ok"))
        .await
        .unwrap();
    assert_eq!(exact.body_truncated, b"hello");
    assert!(!exact.truncated);
}

#[tokio::test]
async fn slow_servers_time_out() {
    let (addr, _) = start_server().await;
    let policy = OutboundPolicy {
        total_timeout: Duration::from_millis(300),
        ..dev()
    };
    let started = Instant::now();
    let err = get_url(&policy, &format!("http://{addr}/slow"))
        .await
        .unwrap_err();
    assert_eq!(err, OutboundError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn oversized_request_bodies_are_refused() {
    let (addr, hits) = start_server().await;
    let policy = OutboundPolicy {
        max_request_bytes: 10,
        ..dev()
    };
    let target = TargetUrl::parse(&format!("http://{addr}/ok"), &policy).unwrap();
    let err = send(
        &policy,
        Method::POST,
        &target,
        HeaderMap::new(),
        vec![0; 11],
    )
    .await
    .unwrap_err();
    assert_eq!(err, OutboundError::TooLarge);
    assert_eq!(hits.ok.load(Ordering::SeqCst), 0);
}

/// A resolver with canned answers that counts its calls; `then` (if set) is what it answers
/// from the second call on, as a TTL-0 rebinding server would.
struct FixedResolver {
    first: Vec<SocketAddr>,
    then: Option<Vec<SocketAddr>>,
    calls: AtomicUsize,
}

impl FixedResolver {
    fn new(first: Vec<SocketAddr>) -> Self {
        FixedResolver {
            first,
            then: None,
            calls: AtomicUsize::new(0),
        }
    }

    fn rebinding(first: Vec<SocketAddr>, then: Vec<SocketAddr>) -> Self {
        FixedResolver {
            then: Some(then),
            ..Self::new(first)
        }
    }
}

impl HostResolver for FixedResolver {
    async fn lookup(&self, _host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        match (&self.then, call) {
            (Some(then), 1..) => Ok(then.clone()),
            _ => Ok(self.first.clone()),
        }
    }
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

#[tokio::test]
async fn system_resolver_answer_for_localhost_is_refused() {
    // `localhost` is refused by name in TargetUrl::parse; here the DNS answer check on its own.
    let strict = OutboundPolicy::strict();
    let err = resolve_checked(&SystemResolver, "localhost", 443, &strict)
        .await
        .unwrap_err();
    assert_eq!(err, OutboundError::ForbiddenAddress);
    let allowed = resolve_checked(&SystemResolver, "localhost", 443, &dev())
        .await
        .unwrap();
    assert!(allowed
        .iter()
        .all(|a| a.ip().is_loopback() && a.port() == 443));
}

#[tokio::test]
async fn any_forbidden_answer_refuses_the_name() {
    let strict = OutboundPolicy::strict();
    let cases = [
        vec!["127.0.0.1:0"],
        vec!["93.184.215.14:0", "10.0.0.7:0"],
        vec!["[::ffff:169.254.169.254]:0"],
        vec!["[64:ff9b::a9fe:a9fe]:0"],
        vec!["[2002:7f00:1::1]:0"],
        vec!["[fd00::1]:0", "[2606:4700::1]:0"],
        vec!["0.0.0.0:0"],
    ];
    for answers in cases {
        let resolver = FixedResolver::new(addrs(&answers));
        assert_eq!(
            resolve_checked(&resolver, "hooks.example.com", 443, &strict)
                .await
                .unwrap_err(),
            OutboundError::ForbiddenAddress,
            "{answers:?}"
        );
    }

    let resolver = FixedResolver::new(vec![]);
    assert_eq!(
        resolve_checked(&resolver, "hooks.example.com", 443, &strict)
            .await
            .unwrap_err(),
        OutboundError::DnsFailure
    );

    let resolver = FixedResolver::new(addrs(&[
        "93.184.215.14:0",
        "[::ffff:93.184.215.14]:0",
        "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8080",
    ]));
    let ok = resolve_checked(&resolver, "hooks.example.com", 443, &strict)
        .await
        .unwrap();
    assert_eq!(
        ok,
        addrs(&[
            "93.184.215.14:443",
            "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443"
        ])
    );
}

#[tokio::test]
async fn pinned_resolution_is_used_once() {
    // First answer: our server. Every later answer: an address nothing listens on. If the HTTP
    // client resolved again (as a rebinding attack needs), the request would fail.
    let (addr, hits) = start_server().await;
    let resolver = FixedResolver::rebinding(
        vec![SocketAddr::new(addr.ip(), 0)],
        addrs(&["10.255.255.1:0"]),
    );
    let policy = dev();
    let target =
        TargetUrl::parse(&format!("http://rebind.test:{}/ok", addr.port()), &policy).unwrap();
    let response = send_with_resolver(
        &resolver,
        &policy,
        Method::GET,
        &target,
        HeaderMap::new(),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(hits.ok.load(Ordering::SeqCst), 1);
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn errors_carry_no_details() {
    for err in [
        OutboundError::ForbiddenAddress,
        OutboundError::DnsFailure,
        OutboundError::Timeout,
        OutboundError::Connect,
        OutboundError::Transport,
        OutboundError::InvalidUrl(UrlProblem::Syntax),
    ] {
        let text = err.to_string();
        assert!(
            !text.contains("127.") && !text.contains("169.254"),
            "{text}"
        );
        assert!(!err.code().is_empty());
    }
    assert!(OutboundError::ForbiddenAddress.is_refusal());
    assert!(!OutboundError::Timeout.is_refusal());
}

#[tokio::test]
async fn https_handshake_failure_is_a_clean_error() {
    // Exercises the TLS stack: a listener that speaks no TLS must give an error, not a panic.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let err = get_url(&dev(), &format!("https://{addr}/"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OutboundError::Connect | OutboundError::Transport),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_pinned_client_refuses_forbidden_answers_and_never_resolves_again() {
    // Strict policy: a name answering with a private address is refused before any request.
    let strict = OutboundPolicy::strict();
    let target = TargetUrl::parse("https://hooks.example.com/x", &strict).unwrap();
    let resolver = FixedResolver::new(addrs(&["10.0.0.7:0"]));
    let err = PinnedClient::with_resolver(&resolver, &strict, &target)
        .await
        .err()
        .unwrap();
    assert_eq!(err, OutboundError::ForbiddenAddress);

    // Resolved once: later requests reach the pinned address even if the name now answers
    // elsewhere (a rebinding server), and the resolver is not asked again.
    let (addr, hits) = start_server().await;
    let resolver = FixedResolver::rebinding(
        vec![SocketAddr::new(addr.ip(), 0)],
        addrs(&["10.255.255.1:0"]),
    );
    let policy = dev();
    let target =
        TargetUrl::parse(&format!("http://rebind.test:{}/ok", addr.port()), &policy).unwrap();
    let client = PinnedClient::with_resolver(&resolver, &policy, &target)
        .await
        .unwrap();
    for _ in 0..3 {
        let r = client
            .send(Method::GET, HeaderMap::new(), Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1);
    assert_eq!(hits.ok.load(Ordering::SeqCst), 3);
}
