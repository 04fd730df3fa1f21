//! The console on PostgreSQL with two instances: either one's overview shows both, and which
//! instance leads which job.

use crate::accounts::{between, no_redirects};
use crate::pages::browser_tools;
use crate::support::binary::release_for_reuse;

use super::*;

/// The instances table of an overview: each row's instance id and what it leads.
fn instances(page: &str) -> Vec<(String, String)> {
    let table = between(page, "<table id=\"instances\">", "</table>");
    table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split("<td>").skip(1).collect();
            let id = between(cells[0], "<code>", "</code>").to_owned();
            let leads = cells[3].split("</td>").next().unwrap().trim().to_owned();
            (id, leads)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_instances_overview_shows_both_and_who_leads_what() {
    let Some((database, _)) = database_and_wallet() else {
        return;
    };
    let Some(tools) = browser_tools() else {
        return;
    };
    // Each instance has an admin address of its own; operators open a's console.
    let consoles: Vec<u16> = (0..2).map(|_| reserve_port()).collect();
    let mut servers = Vec::new();
    for port in &consoles {
        release_for_reuse(*port);
        let bind = format!("127.0.0.1:{port}");
        let url = format!("http://localhost:{port}");
        servers.push(Instance::start(
            &database,
            &[
                ("RAYO_ADMIN_BIND", bind.as_str()),
                ("RAYO_CONSOLE_URL", url.as_str()),
            ],
        ));
    }
    let console_a = format!("http://localhost:{}", consoles[0]);
    let console_b = format!("http://localhost:{}", consoles[1]);

    // The first operator, by an invite the CLI makes on the database itself.
    let dir = tempfile::tempdir().unwrap();
    let mut command = on(&database, rayo(dir.path(), reserve_port()));
    command.env("RAYO_CONSOLE_URL", &console_a);
    let invite = json(command, &["operator", "invite"]);
    let mut node = std::process::Command::new("node");
    node.current_dir(&tools)
        .arg("console.mjs")
        .arg(&console_a)
        .arg(servers[0].base())
        .arg("unused")
        .arg(std::env::temp_dir())
        .arg(invite["url"].as_str().unwrap())
        .arg("http://127.0.0.1:9")
        .arg("join");
    let output = tokio::task::spawn_blocking(move || node.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    let cookie = format!(
        "rayo_console={}",
        seen["consoleCookie"]["value"].as_str().unwrap()
    );

    // The session lives in the database: b's console opens with it too, and each overview
    // lists both instances, with every lease held by one of them.
    let leases: Vec<String> = cli(&database, &["db", "status"])["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap().to_owned())
        .collect();
    assert!(!leases.is_empty(), "the instances lead jobs");
    let mut listed = Vec::new();
    for base in [&console_a, &console_b] {
        let page = no_redirects()
            .get(format!("{base}/admin/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{base}");
        let page = page.text().await.unwrap();
        assert!(page.contains("(this one)"));
        let rows = instances(&page);
        assert_eq!(rows.len(), 2, "both instances on {base}: {rows:?}");
        let led: Vec<&str> = rows
            .iter()
            .flat_map(|(_, leads)| leads.split(", ").filter(|l| !l.is_empty()))
            .collect();
        for role in &leases {
            assert!(led.contains(&role.as_str()), "{role} in {rows:?}");
        }
        listed.push(rows);
    }
    let ids =
        |rows: &Vec<(String, String)>| rows.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&listed[0]),
        ids(&listed[1]),
        "the same two, seen from either"
    );
    eprintln!("instances and leases: {:?}", listed[0]);
    drop(servers);
}
