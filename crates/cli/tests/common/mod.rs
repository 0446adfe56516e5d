//! The harness the `scimgw` process tests share: a working directory with a config, a tenant file
//! and a store ([`Gw`]), the `serve` child process ([`Proc`]), and polling ([`until`]).
#![allow(dead_code, reason = "each test file uses a part of the harness")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vendor_sim::Sim;

/// A working directory with a config, a tenant file and a store.
pub struct Gw {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub port: u16,
}

impl Gw {
    pub fn new(store_url: &str, sim: &Sim, target_extra: &str) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
        std::fs::write(dir.path().join("crm.token"), sim.token()).unwrap();
        std::fs::write(
            dir.path().join("tenants/acme.toml"),
            format!(
                "[[targets]]\nname = \"crm\"\nkind = \"scim\"\nbase_url = \"{}\"\ntoken_file = \"{}\"\n\
                 backoff_base_ms = 50\nbackoff_max_ms = 300\n{target_extra}\n",
                sim.base_url(),
                dir.path().join("crm.token").display()
            ),
        )
        .unwrap();
        Gw { dir, url: store_url.to_owned(), port }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_scimgw"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("SCIMGW_CONFIG")
            .env("SCIMGW_STORE__URL", &self.url)
            .env("SCIMGW_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SCIMGW_TENANTS_DIR", self.dir.path().join("tenants"))
            .env("SCIMGW_DISPATCHER__LEASE_SECS", "2")
            .env("SCIMGW_DISPATCHER__POLL_MS", "50");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "scimgw {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Starts `scimgw serve` and waits until it answers.
    pub async fn serve(&self) -> Proc {
        self.serve_at(self.port, &self.log(), &[]).await
    }

    /// Starts another `scimgw serve` of the same store and tenants on `port`, logging to `log`,
    /// with `env` added to its environment.
    pub async fn serve_at(&self, port: u16, log: &std::path::Path, env: &[(&str, &str)]) -> Proc {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = self.cmd(&["serve"]);
        cmd.env("SCIMGW_LISTEN", format!("127.0.0.1:{port}")).envs(env.iter().copied());
        let child = Proc(cmd.stdout(Stdio::null()).stderr(Stdio::from(log)).spawn().unwrap());
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = client.get(format!("http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig")).send().await;
            if r.is_ok() {
                return child;
            }
            assert!(Instant::now() < deadline, "serve did not come up: {}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A free loopback port.
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    pub fn token(&self) -> String {
        self.ok(&["tenant", "add", "acme"]);
        let issued: Value = serde_json::from_str(&self.ok(&["key", "issue", "--tenant", "acme", "--json"])).unwrap();
        issued["token"].as_str().unwrap().to_owned()
    }

    /// One SCIM request with `token` and a JSON body; the answer, after checking its status.
    pub async fn scim(&self, method: reqwest::Method, path: &str, token: &str, body: Value, status: u16) -> Value {
        let r = reqwest::Client::new()
            .request(method, format!("http://127.0.0.1:{}/scim/v2{path}", self.port))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        r.json().await.unwrap_or(Value::Null)
    }

    /// `PATCH replace active false`, as Entra disables a user.
    pub async fn disable(&self, token: &str, id: &str) {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]});
        self.scim(reqwest::Method::PATCH, &format!("/Users/{id}"), token, body, 200).await;
    }

    pub async fn create(&self, token: &str, name: &str) -> String {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true});
        let v = self.scim(reqwest::Method::POST, "/Users", token, body, 201).await;
        v["id"].as_str().unwrap().to_owned()
    }
}

/// A child process that is killed and reaped when dropped, so a failed assertion never leaves a
/// gateway running.
pub struct Proc(pub Child);

impl Proc {
    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn until(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// The self-signed test certificate and key (`tests/fixtures/tls`).
pub fn tls_fixtures() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

/// Starts `gw` serving HTTPS with the self-signed test certificate; waits until it answers.
pub async fn serve_tls(gw: &Gw) -> Proc {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(gw.log()).unwrap();
    let child = Proc(
        gw.cmd(&["serve"])
            .env("SCIMGW_TLS__CERT", tls_fixtures().join("cert.pem"))
            .env("SCIMGW_TLS__KEY", tls_fixtures().join("key.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if client.get(format!("https://127.0.0.1:{}/healthz", gw.port)).send().await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the TLS gateway did not come up: {}", gw.log_text());
}
