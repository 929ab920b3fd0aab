//! The coordinator's HTTP side: `/metrics` and the live fleet page, checked in a real
//! headless Chromium (from the system packages, driven by the pinned `playwright-core`
//! through `tests/fleet-page/check.mjs`) against the core's own ledger.
//!
//! The fleet is brought to a state that stays put while the browser looks: op-a's agent holds
//! a task (stake active), op-b's agent delivered an invalid proof (stake slashed) and its
//! task waits for stake no operator has.

use crate::support::cluster::{test_policy, Cluster, ClusterSpec};
use crate::support::scripted::{tamper_output, ScriptOptions, ScriptedAgent};
use crate::support::wait::TaskWatch;
use crate::support::STEP_TIMEOUT;
use proofrack_common::protocol::{DeliveryOutcome, TaskState};
use proofrack_coordinator::Policy;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOKEN: &str = "0123456789abcdef0123456789abcdef-fleet-test";

/// One GET over plain TCP; returns (status, body).
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the HTTP server");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the response");
    let status = out[9..12].parse().expect("a status code");
    let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Runs the browser script; returns its JSON output.
fn browse(url: &str, token: Option<&str>, screenshot: &Path) -> serde_json::Value {
    let root = repo_root();
    let chromium = std::env::var("PROOFRACK_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && root.join("node_modules/playwright-core").exists(),
        "this test needs Chromium at {chromium} and node_modules/playwright-core: run ./scripts/setup-tools.sh --node and ./scripts/setup-test-tools.sh"
    );
    let out = Command::new("node")
        .arg(root.join("tests/fleet-page/check.mjs"))
        .arg(url)
        .arg(token.unwrap_or("-"))
        .arg(screenshot)
        .arg("2")
        .current_dir(&root)
        .output()
        .expect("run node (install Node.js 20)");
    assert!(
        out.status.success(),
        "the browser script failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the browser script printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Submits mimc-6 with a deadline beyond the wide margin of this test's policy.
async fn submit_far(
    client: &crate::support::cluster::Client,
    x: u64,
    collateral: u128,
) -> proofrack_common::TaskId {
    match client
        .submit_raw(
            "mimc-6",
            &format!(r#"{{"x":"{x}"}}"#),
            collateral,
            1_200_000,
        )
        .await
    {
        proofrack_common::protocol::ClientResponse::Submitted { task } => task,
        other => panic!("submission refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_page_shows_the_ledger_and_is_never_open() {
    // Due times far out, so no deadline slash changes the ledger while the browser reads it.
    let policy = Policy {
        deadline_margin_ms: 600_000,
        max_deadline_ms: 1_200_000,
        withdrawal_delay_ms: 1_200_001,
        ..test_policy()
    };
    let cluster = Cluster::start(
        "fleet-page",
        ClusterSpec {
            policy,
            ..ClusterSpec::default()
        },
    )
    .await;
    let server = proofrack_coordinator::start_http(
        "127.0.0.1:0".parse().unwrap(),
        Some(TOKEN.to_string()),
        cluster.shared(),
    )
    .await
    .expect("the HTTP server starts");
    let addr = server.local_addr;
    let client = cluster.client("alice").await;

    let mut holder =
        ScriptedAgent::connect(&cluster, "op-a", "holder", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "holder").await;
    let held = submit_far(&client, 1, 40).await;
    let mut watch = TaskWatch::start(&client, held);
    holder.next_offer().await;
    holder.accept(held).await;
    watch
        .until("proving by the holder", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. })
        })
        .await;

    let mut liar = ScriptedAgent::connect(&cluster, "op-b", "liar", ScriptOptions::default()).await;
    client.wait_agent_ready("op-b", "liar").await;
    // 70 > op-a's 60 free: only op-b's agent fits.
    let lied = submit_far(&client, 2, 70).await;
    let offer = liar.next_offer().await;
    assert_eq!(offer.task, lied);
    liar.accept(lied).await;
    let mut bad = liar.prove(&offer).await;
    tamper_output(&mut bad);
    assert!(matches!(
        liar.deliver(&bad).await.expect("a verdict"),
        DeliveryOutcome::Rejected { .. }
    ));

    // Stake on its way out and a drained agent (each by its operator's admin): the page shows
    // both as such.
    let ops_a = cluster
        .connect_as(&"operator/op-a/admin/ops".parse().expect("identity"))
        .await;
    let ops_b = cluster
        .connect_as(&"operator/op-b/admin/ops".parse().expect("identity"))
        .await;
    let withdrawn = ops_a
        .request(proofrack_common::protocol::ClientRequest::Withdraw {
            request_id: 1,
            operator: "op-a".parse().unwrap(),
            amount: proofrack_common::StakeUnits(10),
        })
        .await;
    assert!(
        matches!(
            withdrawn,
            proofrack_common::protocol::ClientResponse::Admin { ok: true, .. }
        ),
        "{withdrawn:?}"
    );
    let drained = ops_b
        .request(proofrack_common::protocol::ClientRequest::Drain {
            request_id: 2,
            agent: "op-b/liar".parse().unwrap(),
            drain: true,
        })
        .await;
    assert!(
        matches!(
            drained,
            proofrack_common::protocol::ClientResponse::Admin { ok: true, .. }
        ),
        "{drained:?}"
    );

    // Without the token, or with a wrong one, the API refuses; /metrics is served.
    let (status, _) = get(addr, "/api/fleet", None);
    assert_eq!(status, 401);
    let (status, _) = get(
        addr,
        "/api/fleet",
        Some("wrong-token-of-some-length-000000000"),
    );
    assert_eq!(status, 401);
    let (status, body) = get(addr, &format!("/api/tasks/{held}"), Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("StakeBound"), "the task's record: {body}");

    let (status, body) = get(addr, &format!("/api/tasks/{lied}/explain"), Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let explained: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let text = explained["text"].as_str().expect("text");
    assert!(text.contains("offered to op-b/liar"), "{text}");
    assert!(
        text.contains("rejected op-a/holder"),
        "the fit admission rejected: {text}"
    );
    assert!(text.contains("invalid proof on op-b/liar"), "{text}");
    assert_eq!(
        explained["explanation"]["failures"][0]["cause"],
        "InvalidProof"
    );

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let url = format!("http://{addr}/");
    let seen = tokio::task::spawn_blocking({
        let url = url.clone();
        let shot = shots.join("fleet-page.png");
        move || browse(&url, Some(TOKEN), &shot)
    })
    .await
    .unwrap();
    let ledger = cluster.shared().read(|core, _| core.ledger_rows());
    let (_, metrics) = get(addr, "/metrics", None);
    eprintln!("fleet page: {seen}\nscreenshot in {}", shots.display());

    assert_eq!(seen["state"], "ready");
    assert_eq!(
        seen["token_in_url"], false,
        "the page drops the token from the URL"
    );
    assert_eq!(seen["errors"].as_array().map(Vec::len), Some(0), "{seen}");
    assert_eq!(ledger.len(), 2);
    for row in &ledger {
        let shown = &seen["operators"][row.operator.as_str()];
        for (field, value) in [
            ("delegated", row.delegated),
            ("active", row.active),
            ("withdrawing", row.withdrawing),
            ("free", row.free),
            ("slashed", row.slashed),
        ] {
            assert_eq!(
                shown[field].as_str(),
                Some(value.get().to_string().as_str()),
                "{} {field} on the page vs the ledger {row:?}",
                row.operator
            );
            let metric = format!(
                "proofrack_operator_stake_{field}_units{}{{operator=\"{}\"}} {}",
                if field == "slashed" { "_total" } else { "" },
                row.operator,
                value.get()
            );
            assert!(
                metrics.lines().any(|l| l == metric),
                "missing {metric}:\n{metrics}"
            );
        }
    }
    // The state the test built, so the comparison above cannot pass on an empty ledger.
    assert_eq!(seen["operators"]["op-a"]["active"], "40");
    assert_eq!(seen["operators"]["op-a"]["withdrawing"], "10");
    assert_eq!(seen["operators"]["op-b"]["slashed"], "35");
    let agents = seen["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 2, "{seen}");
    let state_of = |name: &str| {
        agents
            .iter()
            .find(|a| a["agent"] == name)
            .map(|a| a["state"].clone())
    };
    assert_eq!(state_of("op-a/holder"), Some("up".into()), "{seen}");
    assert_eq!(state_of("op-b/liar"), Some("up, drained".into()), "{seen}");
    // Times as people read them, never epoch milliseconds.
    let status = seen["status"].as_str().expect("status line");
    assert!(status.contains(" UTC"), "{status}");
    let slashes = seen["slashes"].as_array().expect("slashes");
    assert_eq!(slashes.len(), 1, "{seen}");
    assert_eq!(slashes[0]["task"], lied.to_string());
    assert_eq!(slashes[0]["slashed"], "35");
    assert_eq!(slashes[0]["reason"], "invalid proof");
    let when = slashes[0]["when"].as_str().expect("when");
    assert!(
        when.contains(" ago, at ") && when.ends_with(" UTC"),
        "{when}"
    );
    for line in [
        "proofrack_agents_connected 2",
        "proofrack_proof_verification_seconds_count 1",
        "proofrack_admission_decisions_total{outcome=\"offered\",reason=\"fit\"} 2",
        "proofrack_tasks{state=\"proving\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }

    let refused = tokio::task::spawn_blocking(move || {
        browse(&url, None, &shots.join("fleet-page-refused.png"))
    })
    .await
    .unwrap();
    assert_eq!(refused["state"], "refused");
    assert_eq!(refused["numbers_shown"], 0);

    holder.close().await;
    liar.close().await;
    server.shutdown().await;
    cluster.shutdown().await;
}
