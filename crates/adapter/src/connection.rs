//! The connection test: what Entra ID's "Test Connection" does against a vendor, step by step —
//! resolve the host, connect, the TLS handshake, an authenticated query for a user nobody has, and
//! the URL flags the vendor needs — each step with what was found or, when it failed, what to do.
//!
//! Invariants: the only secret read is the tested target's own token, and no step's detail ever
//! holds it (the vendor's words are scrubbed of it). The query goes through [`ScimClient`], so
//! its URL (the base URL's query string kept), headers and TLS settings are the deliveries' own.
//! The handshake is done on its own, with the rustls provider and platform verifier reqwest uses,
//! so that a certificate problem is told apart from a refused token.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::client::{ExchangeError, MAX_RESPONSE_BYTES, ScimClient, error_chain, parse_base_url, vendor_message};
use crate::generic::filter_literal;
use crate::target::TargetConfig;

/// The schema of a SCIM list answer (RFC 7644 §3.4.2).
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A query flag a vendor needs on its base URL (Entra's `aadOptscim062020` and the like), with
/// what goes wrong without it. A vendor crate declares its flags once; its constructor refuses a
/// target without them and the connection test reports each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlFlag {
    /// The query parameter, without `?`.
    pub flag: &'static str,
    /// What the vendor does without it, completing "without it …".
    pub without_it: &'static str,
}

impl UrlFlag {
    /// Whether `base_url`'s query string carries the flag (alone, with a value, or among others).
    pub fn is_on(&self, base_url: &str) -> bool {
        base_url.split_once('?').is_some_and(|(_, q)| q.split('&').any(|p| p.split('=').next() == Some(self.flag)))
    }
}

/// The steps of a connection test, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// `base_url` is an http(s) URL with a host.
    Url,
    /// The host resolves.
    Dns,
    /// A TCP connection opens.
    Connect,
    /// The TLS handshake succeeds (https only).
    Tls,
    /// The authenticated `GET /Users?filter=userName eq "<random GUID>"` answers an empty list.
    Auth,
    /// A flag the vendor needs is on the base URL.
    UrlFlag,
}

impl StepName {
    /// The name as printed and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Url => "url",
            StepName::Dns => "dns",
            StepName::Connect => "connect",
            StepName::Tls => "tls",
            StepName::Auth => "auth",
            StepName::UrlFlag => "url_flag",
        }
    }
}

/// One step: whether it passed, and what was found or what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Which step.
    pub name: StepName,
    /// Whether it passed.
    pub ok: bool,
    /// What was found; on a failure, what went wrong and what to do. Never a secret.
    pub detail: String,
}

impl Step {
    fn ok(name: StepName, detail: impl Into<String>) -> Step {
        Step { name, ok: true, detail: detail.into() }
    }

    fn failed(name: StepName, detail: impl Into<String>) -> Step {
        Step { name, ok: false, detail: detail.into() }
    }
}

/// The result of testing one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    /// The base URL as it may be shown: scheme, host, port and path, without credentials or
    /// query string.
    pub url: String,
    /// The steps run, in order. A network step that fails ends the network steps (the later
    /// ones could not run); a missing token and the URL flags are reported anyway.
    pub steps: Vec<Step>,
}

impl ConnectionReport {
    /// Whether every step passed.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }
}

/// Tests the connection to `target` as Entra ID's "Test Connection" would, and checks the
/// `url_flags` its kind needs. Reads the target's own token and nothing else.
pub async fn connection_test(target: &TargetConfig, url_flags: &[UrlFlag]) -> ConnectionReport {
    let mut steps = Vec::new();
    let (url, reached_query) = match parse_base_url(&target.base_url) {
        Ok(url) => (shown_url(&url), network_steps(target, &url, &mut steps).await),
        Err(e) => {
            steps.push(Step::failed(StepName::Url, format!("{e}: give the vendor's SCIM base URL")));
            (String::new(), Err(StepName::Url))
        }
    };
    if let Err(last) = reached_query {
        // The query could not run; a missing token is still worth knowing now.
        if let Err(e) = target.resolve_secret() {
            let detail = format!("not tried (the {} step failed first), and: {e}", last.as_str());
            steps.push(Step::failed(StepName::Auth, detail));
        }
    }
    for flag in url_flags {
        steps.push(if flag.is_on(&target.base_url) {
            Step::ok(StepName::UrlFlag, format!("base_url carries ?{}", flag.flag))
        } else {
            Step::failed(
                StepName::UrlFlag,
                format!("base_url lacks ?{f}: without it {}; add ?{f} to base_url", flag.without_it, f = flag.flag),
            )
        });
    }
    ConnectionReport { url, steps }
}

/// DNS, connect, TLS and the query; `Err(step)` names the network step that failed (and ended
/// them) before the query.
async fn network_steps(target: &TargetConfig, url: &Url, steps: &mut Vec<Step>) -> Result<(), StepName> {
    let options = target.client_options();
    let (Some(host), Some(port)) = (host_of(url), url.port_or_known_default()) else {
        steps.push(Step::failed(StepName::Url, "base_url has no host or port"));
        return Err(StepName::Url);
    };
    let addrs = match resolve(host, port, options.connect_timeout).await {
        Ok((addrs, detail)) => {
            steps.push(Step::ok(StepName::Dns, detail));
            addrs
        }
        Err(detail) => {
            steps.push(Step::failed(StepName::Dns, detail));
            return Err(StepName::Dns);
        }
    };
    let stream = match connect(&addrs, options.connect_timeout).await {
        Ok((stream, addr)) => {
            steps.push(Step::ok(StepName::Connect, format!("connected to {addr}")));
            stream
        }
        Err(detail) => {
            steps.push(Step::failed(StepName::Connect, detail));
            return Err(StepName::Connect);
        }
    };
    if url.scheme() == "https" {
        let step = handshake(stream, host, target.tls_skip_verify, options.connect_timeout).await;
        let ok = step.ok;
        steps.push(step);
        if !ok {
            return Err(StepName::Tls);
        }
    }
    steps.push(query(target).await);
    Ok(())
}

/// The host of a URL: an address, or a name to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

fn host_of(url: &Url) -> Option<Host<'_>> {
    let host = url.host_str()?;
    // An IPv6 literal is written in brackets (`http://[::1]:8080`).
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => Some(Host::Ip(ip)),
        Err(_) => Some(Host::Name(host)),
    }
}

/// The base URL without userinfo or query string, for messages.
fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The addresses of `host`, and the step's detail; or what to do.
async fn resolve(host: Host<'_>, port: u16, timeout: Duration) -> Result<(Vec<SocketAddr>, String), String> {
    let name = match host {
        Host::Ip(ip) => {
            return Ok((vec![SocketAddr::new(ip, port)], format!("{ip} is an address: nothing to resolve")));
        }
        Host::Name(name) => name,
    };
    let found = match tokio::time::timeout(timeout, tokio::net::lookup_host((name, port))).await {
        Err(_) => {
            return Err(format!("no answer for {name} within {}: check this machine's DNS resolver", secs(timeout)));
        }
        Ok(Err(e)) => {
            return Err(format!(
                "{name} does not resolve ({e}): check the host name in base_url, and this machine's DNS"
            ));
        }
        Ok(Ok(found)) => found,
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in found {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(format!("{name} resolves to no address: check the host name in base_url"));
    }
    let listed: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    Ok((addrs.clone(), format!("{name} resolves to {}", listed.join(", "))))
}

/// A TCP connection to the first of `addrs` that accepts one; or what to do.
async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<(TcpStream, SocketAddr), String> {
    let mut failures = Vec::new();
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok((stream, *addr)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => failures.push(format!(
                "{addr} refused the connection: nothing listens there; is the app up, and is the port in base_url right?"
            )),
            Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
            Err(_) => failures.push(format!(
                "{addr} did not answer within {}: a firewall dropping the packets, or the wrong host?",
                secs(timeout)
            )),
        }
    }
    Err(failures.join("; "))
}

/// The TLS handshake on `stream`, verified as the target's deliveries verify it.
async fn handshake(stream: TcpStream, host: Host<'_>, skip_verify: bool, timeout: Duration) -> Step {
    let server_name = match host {
        Host::Name(name) => match ServerName::try_from(name.to_owned()) {
            Ok(n) => n,
            Err(e) => return Step::failed(StepName::Tls, format!("{name} cannot be a TLS server name: {e}")),
        },
        Host::Ip(ip) => ServerName::from(ip),
    };
    let config = match tls_config(skip_verify) {
        Ok(c) => c,
        Err(e) => return Step::failed(StepName::Tls, format!("cannot set up TLS on this machine: {e}")),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = match tokio::time::timeout(timeout, connector.connect(server_name, stream)).await {
        Err(_) => {
            return Step::failed(
                StepName::Tls,
                format!("no TLS handshake within {}: does the port speak TLS (base_url says https)?", secs(timeout)),
            );
        }
        Ok(Err(e)) => return Step::failed(StepName::Tls, tls_failure(&e)),
        Ok(Ok(tls)) => tls,
    };
    let version = match tls.get_ref().1.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS",
    };
    if skip_verify {
        Step::ok(
            StepName::Tls,
            format!(
                "{version}; the certificate was NOT verified (tls_skip_verify = true): anyone in between could \
                 read the token and the users"
            ),
        )
    } else {
        Step::ok(StepName::Tls, format!("{version}, certificate verified"))
    }
}

/// What a failed handshake means, and what to do.
fn tls_failure(e: &std::io::Error) -> String {
    let certificate_advice = "the vendor's certificate must be publicly trusted (Entra ID requires that too); for a \
                              test instance with a self-signed one, tls_skip_verify = true";
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => {
            format!("the app's certificate was refused ({e}): {certificate_advice}")
        }
        Some(rustls::Error::InvalidMessage(_)) => {
            format!(
                "the port did not answer in TLS ({e}): does it serve plain http? check the scheme and port in base_url"
            )
        }
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "the app ended the handshake with the alert {alert:?}: it refuses this client's TLS versions or ciphers \
             (TLS 1.2 or 1.3, as Entra ID uses)"
        ),
        Some(_) => format!("the TLS handshake failed: {e}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("the app closed the connection during the handshake ({e}): does the port speak TLS?")
        }
        None => format!("the TLS handshake failed: {e}"),
    }
}

/// The client side of TLS as reqwest sets it up for the deliveries: the process's default
/// rustls provider (aws-lc-rs otherwise), the platform's verifier unless the target skips it.
fn tls_config(skip_verify: bool) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier: Arc<dyn ServerCertVerifier> = if skip_verify {
        Arc::new(AnyCertificate(Arc::clone(&provider)))
    } else {
        Arc::new(rustls_platform_verifier::Verifier::new(Arc::clone(&provider))?)
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `tls_skip_verify`: any certificate is accepted, but the handshake's signatures are still
/// checked (the server holds the key of the certificate it sent).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Entra's query: `GET {base}/Users?filter=userName eq "<random GUID>"` with the target's token.
async fn query(target: &TargetConfig) -> Step {
    let token = match target.resolve_secret() {
        Ok(t) => t,
        Err(e) => return Step::failed(StepName::Auth, format!("{e}: the query needs the vendor's token")),
    };
    let client = match ScimClient::new(&target.base_url, token, target.client_options()) {
        Ok(c) => c,
        Err(e) => return Step::failed(StepName::Auth, e),
    };
    let guid = uuid::Uuid::new_v4().to_string();
    let filter = format!("userName eq {}", filter_literal(&guid));
    let what = format!("GET Users?filter={filter}");
    match client.exchange(&Method::GET, "Users", &[("filter", &filter)], None).await {
        Ok(answer) => judge(&what, answer.status, &client.scrub(answer.text)),
        Err(ExchangeError::TooLarge { status }) => Step::failed(
            StepName::Auth,
            format!(
                "{what} → {}: an answer larger than {MAX_RESPONSE_BYTES} bytes (MAX_RESPONSE_BYTES) to a query \
                 that finds nobody: check base_url",
                status.as_u16()
            ),
        ),
        Err(ExchangeError::Transport(e)) if e.is_timeout() => Step::failed(
            StepName::Auth,
            format!(
                "{what}: no answer within {} (request_timeout_ms = {}): the app is slow or something holds the \
                 request; try again, or raise request_timeout_ms",
                secs(Duration::from_millis(target.request_timeout_ms)),
                target.request_timeout_ms
            ),
        ),
        Err(ExchangeError::Transport(e)) if e.is_connect() => {
            Step::failed(StepName::Auth, format!("{what}: could not connect ({}); try again", error_chain(&e)))
        }
        Err(ExchangeError::Transport(e)) => Step::failed(StepName::Auth, format!("{what} failed: {}", error_chain(&e))),
    }
}

/// Entra's verdict on the answer to its query: `200` with a ListResponse whose `totalResults` is 0.
/// `body` is already scrubbed of the token.
fn judge(what: &str, status: StatusCode, body: &str) -> Step {
    let code = status.as_u16();
    let said = || vendor_message(body);
    let advice = match code {
        200 => return judge_list(what, body),
        401 => "the token was refused: check token_env/token_file and that the vendor's key is current".to_owned(),
        403 => {
            "the key lacks the role or permission to read users: give it the role the vendor's guide names".to_owned()
        }
        404 => "no SCIM endpoint at that URL: check base_url (a missing /scim/v2, or a wrong path?)".to_owned(),
        405 => "that URL does not take GET: check base_url, it should be the app's SCIM base".to_owned(),
        400 => "the app refused the query: Entra ID sends exactly this filter, so the app must take it".to_owned(),
        408 | 504 => "the app or a proxy timed out: try again".to_owned(),
        429 => "the app is rate limiting: try again later".to_owned(),
        s if s >= 500 => "the app failed: try again later, or ask the vendor".to_owned(),
        s if (300..400).contains(&s) => "a redirect that was not followed: check base_url".to_owned(),
        _ => "expected 200 with an empty ListResponse".to_owned(),
    };
    Step::failed(StepName::Auth, format!("{what} → {code} ({}): {advice}", said()))
}

/// A `200`'s body: a ListResponse with `totalResults` 0, as Entra expects.
fn judge_list(what: &str, body: &str) -> Step {
    let not_scim = "is base_url the app's SCIM base URL (not its web page or another API)?";
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Step::failed(StepName::Auth, format!("{what} → 200 with a body that is not JSON: {not_scim}"));
    };
    let is_list = value
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str().is_some_and(|v| v.eq_ignore_ascii_case(LIST_RESPONSE))));
    if !is_list {
        return Step::failed(
            StepName::Auth,
            format!(
                "{what} → 200 with JSON that is not a SCIM ListResponse (no {LIST_RESPONSE} in schemas): {not_scim}"
            ),
        );
    }
    match value.get("totalResults").and_then(Value::as_u64) {
        Some(0) => Step::ok(StepName::Auth, format!("{what} → 200, an empty ListResponse: the token is accepted")),
        Some(n) => Step::failed(
            StepName::Auth,
            format!(
                "{what} → 200 with totalResults {n} for a random GUID nobody has: the app ignores or mishandles \
                 the filter, and looking accounts up by userName would adopt the wrong ones; ask the vendor"
            ),
        ),
        None => Step::failed(
            StepName::Auth,
            format!("{what} → 200, a ListResponse without a numeric totalResults: Entra ID needs totalResults 0"),
        ),
    }
}

/// `5 s`, `0.5 s`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s} s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHAT: &str = "GET Users?filter=userName eq \"x\"";

    #[test]
    fn url_flags_are_found_alone_with_a_value_or_among_others() {
        let f = UrlFlag { flag: "aadOptscim062020", without_it: "only creates work" };
        assert!(f.is_on("https://d.example/scim/v2/?aadOptscim062020"));
        assert!(f.is_on("https://d.example/scim/v2?x=1&aadOptscim062020=1"));
        assert!(!f.is_on("https://d.example/scim/v2"));
        assert!(!f.is_on("https://d.example/scim/v2?aadOptscim0620201"));
    }

    #[test]
    fn an_empty_list_response_passes_and_anything_else_is_named() {
        let empty =
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}"#;
        assert!(judge(WHAT, StatusCode::OK, empty).ok);
        let one = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1}"#;
        assert!(judge(WHAT, StatusCode::OK, one).detail.contains("totalResults 1"));
        let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"}"#;
        assert!(judge(WHAT, StatusCode::OK, user).detail.contains("not a SCIM ListResponse"));
        assert!(judge(WHAT, StatusCode::OK, "<html>sign in</html>").detail.contains("not JSON"));
        let no_total = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}"#;
        assert!(!judge(WHAT, StatusCode::OK, no_total).ok);
    }

    #[test]
    fn each_status_gets_its_advice() {
        for (status, needle) in [
            (401, "token was refused"),
            (403, "lacks the role"),
            (404, "missing /scim/v2"),
            (400, "refused the query"),
            (429, "rate limiting"),
            (500, "the app failed"),
            (204, "expected 200"),
        ] {
            let step = judge(WHAT, StatusCode::from_u16(status).unwrap(), r#"{"detail":"nope"}"#);
            assert!(!step.ok && step.name == StepName::Auth, "{status}");
            assert!(step.detail.contains(needle) && step.detail.contains("nope"), "{status}: {}", step.detail);
            assert!(step.detail.contains(&format!("→ {status}")), "{}", step.detail);
        }
    }

    #[test]
    fn shown_urls_lose_credentials_and_query() {
        let url = Url::parse("https://u:p@d.example:8443/scim/v2/?aadOptscim062020&k=v").unwrap();
        assert_eq!(shown_url(&url), "https://d.example:8443/scim/v2/");
    }

    #[tokio::test]
    async fn a_target_without_a_url_or_a_token_fails_with_reasons_and_never_a_secret() {
        let t: TargetConfig = serde_json::from_value(serde_json::json!({
            "name": "a", "kind": "scim", "base_url": "ftp://x/scim", "token_env": "SCIMGW_TEST_SURELY_UNSET_VAR_2",
        }))
        .unwrap();
        let flag = UrlFlag { flag: "aadOptscim062020", without_it: "only creates work" };
        let report = connection_test(&t, &[flag]).await;
        let names: Vec<(StepName, bool)> = report.steps.iter().map(|s| (s.name, s.ok)).collect();
        assert_eq!(names, [(StepName::Url, false), (StepName::Auth, false), (StepName::UrlFlag, false)]);
        assert!(report.steps[1].detail.contains("not tried (the url step failed first)"), "{:?}", report.steps[1]);
        assert!(report.steps[2].detail.contains("only creates work"));

        // A port nobody listens on: connect fails, and the missing token is named.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let t = TargetConfig { base_url: format!("http://127.0.0.1:{port}/scim/v2"), ..t };
        let report = connection_test(&t, &[]).await;
        let names: Vec<(StepName, bool)> = report.steps.iter().map(|s| (s.name, s.ok)).collect();
        assert_eq!(names, [(StepName::Dns, true), (StepName::Connect, false), (StepName::Auth, false)]);
        assert!(report.steps[2].detail.contains("SCIMGW_TEST_SURELY_UNSET_VAR_2"), "{:?}", report.steps[2]);
        assert!(!report.ok());
    }
}
