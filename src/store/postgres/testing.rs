//! A real PostgreSQL for tests: Debian's server binaries, one cluster per test process in a
//! temporary directory, reachable only through a Unix socket there, and gone with the process
//! (the server gets SIGQUIT, PostgreSQL's immediate shutdown, when the process ends). Each
//! caller gets a database of its own. Without PostgreSQL installed the tests that need it say
//! so and skip, except under `CI`, where they fail.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PORT: u16 = 5432;

struct Cluster {
    socket_dir: PathBuf,
    /// The port in the socket's name (and TCP's, for the TLS cluster).
    port: u16,
    /// The TLS cluster's TCP port, and its CA.
    tls: Option<(u16, PathBuf)>,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static TLS_CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The connection string of a new, empty database, or `None` (with a note) when this machine
/// has no PostgreSQL.
pub fn database() -> Option<String> {
    // On a thread of its own: callers may be inside an async runtime, and this blocks.
    std::thread::spawn(|| {
        let cluster = CLUSTER.get_or_init(|| start(false)).as_ref()?;
        Some(url(cluster, &create_database(cluster)))
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A database on a second cluster that takes TCP connections on 127.0.0.1 over TLS only, with
/// a certificate for `localhost` from a CA of its own.
pub struct TlsDatabase {
    pub port: u16,
    pub name: String,
    /// The CA's certificate (PEM).
    pub ca: PathBuf,
}

impl TlsDatabase {
    /// A connection string to it through `host`, with these TLS settings.
    pub fn url(&self, host: &str, settings: &str) -> String {
        format!(
            "host={host} port={} user=rayo dbname={} {settings}",
            self.port, self.name
        )
    }
}

pub fn tls_database() -> Option<TlsDatabase> {
    std::thread::spawn(|| {
        let cluster = TLS_CLUSTER.get_or_init(|| start(true)).as_ref()?;
        let (port, ca) = cluster.tls.clone()?;
        Some(TlsDatabase {
            port,
            name: create_database(cluster),
            ca,
        })
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Ends every other session on the database at `url`, as a restart or a failover would.
pub fn drop_connections(url: &str) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        run(
            &url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .expect("terminating sessions")
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The connection string of a role with no rights on any table, on the database at `url`:
/// what any other tenant of the database server has by PostgreSQL's defaults.
pub fn intruder(url: &str) -> String {
    let admin = url.to_owned();
    std::thread::spawn(move || {
        run(
            &admin,
            "DO $$ BEGIN CREATE ROLE intruder LOGIN;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .expect("creating the intruder role")
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    url.replace("user=rayo", "user=intruder")
}

fn create_database(cluster: &Cluster) -> String {
    let name = format!("test_{}", DATABASES.fetch_add(1, Ordering::SeqCst));
    run(
        &url(cluster, "postgres"),
        &format!("CREATE DATABASE {name}"),
    )
    .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    name
}

/// A CA, and a server certificate for `localhost` it signed, made with openssl.
fn certificates(dir: &Path, user: Option<(u32, u32)>) -> PathBuf {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=rayo test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if let Some((uid, gid)) = user {
        for file in ["server.key", "server.crt"] {
            std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid)).unwrap();
        }
    }
    dir.join("ca.pem")
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn url(cluster: &Cluster, database: &str) -> String {
    format!(
        "host={} port={} user=rayo dbname={database}",
        cluster.socket_dir.display(),
        cluster.port
    )
}

/// Runs `sql` on a connection of its own, made and closed here.
fn run(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        client.batch_execute(sql).await?;
        drop(client);
        let _ = connection.await;
        Ok(())
    })
}

fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("postgres").exists())
        .collect();
    found.sort();
    found.pop()
}

/// The service user the server runs as when tests run as root (PostgreSQL refuses root).
fn service_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id postgres");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("the postgres user (Debian's postgresql package creates it)")
    };
    Some((id("-u"), id("-g")))
}

fn as_service_user(command: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
}

fn start(tls: bool) -> Option<Cluster> {
    let Some(bin) = bin_dir() else {
        if std::env::var_os("CI").is_some() {
            panic!("PostgreSQL is required under CI: .ci/run installs Debian's postgresql");
        }
        eprintln!("PostgreSQL is not installed: skipping the tests that need it");
        return None;
    };
    forget_old_clusters();
    let dir = std::env::temp_dir().join(format!(
        "rayo-pg-{}{}",
        std::process::id(),
        if tls { "-tls" } else { "" }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let user = service_user();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .args(["-A", "trust", "-U", "rayo", "-E", "UTF8", "--no-sync", "-D"])
        .arg(&data)
        .current_dir(&dir);
    as_service_user(&mut initdb, user);
    let output = initdb.output().unwrap();
    assert!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut settings = vec!["listen_addresses=".to_owned(), "fsync=off".to_owned()];
    let mut tls_setup = None;
    if tls {
        let ca = certificates(&dir, user);
        let port = free_tcp_port();
        // Over TCP, TLS only: a client that does not ask for it finds no entry.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        settings = vec![
            "listen_addresses=127.0.0.1".to_owned(),
            "fsync=off".to_owned(),
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", dir.join("server.crt").display()),
            format!("ssl_key_file={}", dir.join("server.key").display()),
        ];
        tls_setup = Some((port, ca));
    }
    let tcp_port = tls_setup.as_ref().map_or(PORT, |(port, _)| *port);
    // Spawned from a thread that lives as long as the process: the death signal is tied to
    // the thread that started the server.
    let (bin_for_thread, dir_for_thread) = (bin.clone(), dir.clone());
    std::thread::spawn(move || {
        let mut postgres = Command::new(bin_for_thread.join("postgres"));
        postgres
            .arg("-D")
            .arg(dir_for_thread.join("data"))
            .arg("-k")
            .arg(&dir_for_thread)
            .args(["-p", &tcp_port.to_string()])
            .args(settings.iter().flat_map(|setting| ["-c", setting]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        as_service_user(&mut postgres, user);
        // SAFETY: prctl is async-signal-safe and touches only this process.
        unsafe {
            postgres.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        // Waited on for as long as the process lives: the server ends with it.
        let _ = postgres.spawn().expect("starting postgres").wait();
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let socket = dir.join(format!(".s.PGSQL.{tcp_port}"));
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "postgres did not start in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The socket appears a moment before the server takes connections.
    let admin = format!(
        "host={} port={tcp_port} user=rayo dbname=postgres",
        dir.display()
    );
    while run(&admin, "SELECT 1").is_err() {
        assert!(
            Instant::now() < deadline,
            "postgres did not accept connections"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Cluster {
        socket_dir: dir,
        port: tcp_port,
        tls: tls_setup,
    })
}

/// Clusters left by test processes that are gone.
fn forget_old_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("rayo-pg-") else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
