//! Accounts end to end: `crmbet account create` (generated or piped passwords, refusals),
//! logging in over REST, the role table and refresh-token reuse on the real server, and the
//! demo's admin password printed once.

use std::process::Command;

use crate::server::{RunningServer, create_account};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn created_accounts_log_in_and_get_what_their_role_allows() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let short = create_account(&database_url, "ops", "service", Some("too short"));
    assert!(!short.status.success());
    assert!(stderr(&short).contains("at least 12"), "{}", stderr(&short));

    let generated = create_account(&database_url, "ops", "service", None);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let printed = stdout(&generated);
    let password = printed
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no generated password in {printed:?}"))
        .to_owned();
    assert!(password.len() >= 12, "{password}");

    let duplicate = create_account(&database_url, "ops", "admin", Some("another long password"));
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(
        stderr(&duplicate).contains("exists already"),
        "{}",
        stderr(&duplicate)
    );

    let server = RunningServer::serve(&database_url);
    let url = server.url();
    let client = reqwest::Client::new();
    let anonymous = client
        .get(format!("{url}/api/v1/user/p-1/segment"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let anonymous: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(anonymous["code"], "UNAUTHENTICATED");

    let wrong = server.login("ops", "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    let login = server.login("ops", &password).await;
    assert_eq!(login.status(), 200);
    let login: serde_json::Value = login.json().await.unwrap();
    assert_eq!(login["role"], "ROLE_SERVICE", "{login}");
    assert_eq!(login["token_type"], "Bearer");
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();

    let segment = client
        .get(format!("{url}/api/v1/user/p-1/segment"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let segment_status = segment.status();
    let segment: serde_json::Value = segment.json().await.unwrap();
    assert!(
        ![401, 403].contains(&segment_status.as_u16()),
        "a service may ask for a segment (there is no model, so no answer): {segment_status} {segment}"
    );
    let search = client
        .get(format!("{url}/api/v1/users/search"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 403);
    let search: serde_json::Value = search.json().await.unwrap();
    assert_eq!(search["code"], "PERMISSION_DENIED");
    let me: serde_json::Value = client
        .get(format!("{url}/api/v1/auth/whoami"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "ops", "{me}");

    let refresh_with = |token: String| {
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(format!("{url}/api/v1/auth/refresh"))
                .json(&serde_json::json!({ "refresh_token": token }))
                .send()
                .await
                .unwrap()
        }
    };
    let rotated = refresh_with(refresh.clone()).await;
    assert_eq!(rotated.status(), 200);
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    let sibling = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        refresh_with(refresh).await.status(),
        401,
        "reuse is refused"
    );
    assert_eq!(
        refresh_with(sibling).await.status(),
        401,
        "reuse revoked the whole family"
    );
}

#[tokio::test]
async fn demo_prints_the_admin_password_once() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let run_demo = || {
        Command::new(env!("CARGO_BIN_EXE_crmbet"))
            .args([
                "demo",
                "--no-serve",
                "--players",
                "50",
                "--transactions",
                "2000",
            ])
            .env("DATABASE_URL", &database_url)
            .env("CRMBET_WAREHOUSE_DIR", directory.path().join("warehouse"))
            .env("CRMBET_LOG", "warn")
            .output()
            .unwrap()
    };
    let first = run_demo();
    assert!(first.status.success(), "{}", stderr(&first));
    let first_output = stdout(&first);
    let printed: Vec<&str> = first_output
        .lines()
        .filter(|line| line.starts_with("admin password: "))
        .collect();
    assert_eq!(printed.len(), 1, "{first_output}");

    let second = run_demo();
    assert!(second.status.success(), "{}", stderr(&second));
    let second_output = stdout(&second);
    assert!(!second_output.contains("password: "), "{second_output}");
    assert!(second_output.contains("exists already"), "{second_output}");
}
