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
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The connection string of a new, empty database, or `None` (with a note) when this machine
/// has no PostgreSQL.
pub fn database() -> Option<String> {
    // On a thread of its own: callers may be inside an async runtime, and this blocks.
    std::thread::spawn(|| {
        let cluster = CLUSTER.get_or_init(start).as_ref()?;
        let name = format!("test_{}", DATABASES.fetch_add(1, Ordering::SeqCst));
        run(
            &url(&cluster.socket_dir, "postgres"),
            &format!("CREATE DATABASE {name}"),
        )
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        Some(url(&cluster.socket_dir, &name))
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn url(socket_dir: &Path, database: &str) -> String {
    format!(
        "host={} port={PORT} user=rayo dbname={database}",
        socket_dir.display()
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

fn start() -> Option<Cluster> {
    let Some(bin) = bin_dir() else {
        if std::env::var_os("CI").is_some() {
            panic!("PostgreSQL is required under CI: .ci/run installs Debian's postgresql");
        }
        eprintln!("PostgreSQL is not installed: skipping the tests that need it");
        return None;
    };
    forget_old_clusters();
    let dir = std::env::temp_dir().join(format!("rayo-pg-{}", std::process::id()));
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
            .args([
                "-p",
                &PORT.to_string(),
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
            ])
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
    let socket = dir.join(format!(".s.PGSQL.{PORT}"));
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "postgres did not start in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The socket appears a moment before the server takes connections.
    while run(&url(&dir, "postgres"), "SELECT 1").is_err() {
        assert!(
            Instant::now() < deadline,
            "postgres did not accept connections"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Cluster { socket_dir: dir })
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
