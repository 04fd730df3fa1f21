//! A real nginx in front of several rayo instances, as a load balancer would be: an upstream
//! of them, and a request that cannot reach one (refused, cut off) is tried on the next.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::binary::{reserve_port, wait_until_healthy};

pub struct Nginx {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

/// nginx on this machine, or `None` (with a note; CI must have it).
fn binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists());
    if found.is_none() {
        super::skip_unless_ci(
            "no nginx here (.ci/run installs nginx-light): the test behind a load balancer needs it",
        );
    }
    found
}

impl Nginx {
    /// Balances over rayo instances on `upstreams` (ports on 127.0.0.1).
    pub fn start(upstreams: &[u16]) -> Option<Self> {
        let binary = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let port = reserve_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("server 127.0.0.1:{p} max_fails=0;\n"))
            .collect();
        let root = dir.path().display();
        // As root, nginx's workers would otherwise run as nobody, who cannot use the temp
        // directories here.
        // SAFETY: geteuid only reads the process's credentials.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;"
        } else {
            ""
        };
        let config = format!(
            "{user}
            daemon off;
            worker_processes 1;
            pid {root}/nginx.pid;
            error_log {root}/error.log warn;
            events {{ worker_connections 1024; }}
            http {{
                access_log off;
                client_body_temp_path {root}/body;
                proxy_temp_path {root}/proxy;
                fastcgi_temp_path {root}/fastcgi;
                uwsgi_temp_path {root}/uwsgi;
                scgi_temp_path {root}/scgi;
                upstream rayo {{ {servers} }}
                server {{
                    listen 127.0.0.1:{port};
                    location / {{
                        proxy_pass http://rayo;
                        proxy_next_upstream error timeout;
                        proxy_next_upstream_tries {tries};
                        proxy_connect_timeout 2s;
                    }}
                }}
            }}",
            tries = upstreams.len()
        );
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config).unwrap();
        super::binary::release_for_reuse(port);
        let child = Command::new(binary)
            .arg("-c")
            .arg(&file)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until_healthy(port);
        Some(Self {
            port,
            child,
            _dir: dir,
        })
    }
}

impl Drop for Nginx {
    /// SIGTERM, which nginx's master passes on to its workers (SIGKILL would leave them
    /// running, orphaned).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
